//! Accounts and their secrets.
//!
//! An account and the secrets that came with its settings are written in
//! one transaction, so a failed Update leaves neither half-changed
//! (ARCHITECTURE.md "The D-Bus API"). Ids are `a<counter>`: short, `[a-z0-9]`, usable as a
//! D-Bus object path element, and never reused.

use redb::{ReadableTable, WriteTransaction};

use super::account_row::{account_in, from_json, no_account, to_json};
use super::schema::{self, ACCOUNTS, SECRETS, SYNC};
use super::secret::{SecretKey, KEY_FILE};
use super::{Secret, SecretKind, Store};
use crate::account::{Account, SecretChanges};
use crate::error::Context;
use crate::error::{Error, Result};

/// Creation order: ids are `a` + a decimal counter, so shorter ids are older
/// and equal lengths compare like the numbers.
fn creation_order(a: &Account, b: &Account) -> std::cmp::Ordering {
    (a.id.len(), &a.id).cmp(&(b.id.len(), &b.id))
}

impl Store {
    /// Allocate an id, build the account with it, and store account and
    /// secrets in one transaction. Nothing is written if `build` fails.
    pub fn create_account(
        &self,
        build: impl FnOnce(String) -> Result<(Account, SecretChanges)>,
    ) -> Result<Account> {
        self.call("create an account", || {
            let tx = self.write()?;
            let id = format!("a{}", schema::next_counter(&tx, schema::KEY_NEXT_ACCOUNT)?);
            let (mut account, secrets) = build(id.clone())?;
            // The id is ours, whatever the closure did with it.
            account.id = id;
            self.put_account(&tx, &account, &secrets)?;
            tx.commit().context("commit new account")?;
            Ok(account)
        })
    }

    /// Change an account through `change`; nothing is written if it fails.
    /// A new private owner re-files the account's unassigned mail in the
    /// same transaction, so visibility follows the owner at once.
    pub fn update_account(
        &self,
        id: &str,
        change: impl FnOnce(&Account) -> Result<(Account, SecretChanges)>,
    ) -> Result<Account> {
        self.call("update an account", || {
            let tx = self.write()?;
            let current = account_in(&tx, id)?.ok_or_else(|| no_account(id))?;
            let (mut next, secrets) = change(&current)?;
            next.id = current.id.clone();
            super::views::owner_changed(&tx, &current, &next)?;
            self.put_account(&tx, &next, &secrets)?;
            tx.commit().context("commit account update")?;
            Ok(next)
        })
    }

    fn put_account(&self, tx: &WriteTransaction, a: &Account, s: &SecretChanges) -> Result<()> {
        let json = to_json(a)?;
        tx.open_table(ACCOUNTS)
            .context("open accounts")?
            .insert(a.id.as_str(), json.as_slice())
            .context("write account")?;
        let changes = [
            (SecretKind::Password, &s.password),
            (SecretKind::SmtpPassword, &s.smtp_password),
        ];
        for (kind, value) in changes {
            if let Some(v) = value {
                self.put_secret(tx, &a.id, kind, Some(v.as_str()).filter(|v| !v.is_empty()))?;
            }
        }
        Ok(())
    }

    pub fn account(&self, id: &str) -> Result<Option<Account>> {
        self.call("read an account", || {
            let tx = self.read()?;
            let t = tx.open_table(ACCOUNTS).context("open accounts")?;
            let v = t.get(id).context("read account")?;
            v.map(|g| from_json(g.value())).transpose()
        })
    }

    /// Every account, oldest first.
    pub fn accounts(&self) -> Result<Vec<Account>> {
        self.call("list the accounts", || {
            let tx = self.read()?;
            let t = tx.open_table(ACCOUNTS).context("open accounts")?;
            let mut out = Vec::new();
            for row in t.iter().context("read accounts")? {
                let (_, v) = row.context("read accounts")?;
                out.push(from_json(v.value())?);
            }
            out.sort_by(creation_order);
            Ok(out)
        })
    }

    /// Set (`Some`) or remove (`None`) one secret of an existing account.
    pub fn set_secret(&self, account: &str, kind: SecretKind, value: Option<&str>) -> Result<()> {
        self.call("store a secret", || {
            let tx = self.write()?;
            if account_in(&tx, account)?.is_none() {
                return Err(no_account(account));
            }
            self.put_secret(&tx, account, kind, value)?;
            tx.commit().context("commit secret")
        })
    }

    fn put_secret(
        &self,
        tx: &WriteTransaction,
        account: &str,
        kind: SecretKind,
        value: Option<&str>,
    ) -> Result<()> {
        let mut t = tx.open_table(SECRETS).context("open secrets")?;
        match value {
            None => {
                t.remove((account, kind.code())).context("remove secret")?;
            }
            Some(clear) => {
                let mut key = self.key.lock().map_err(|_| poisoned())?;
                if key.is_none() {
                    // The old key is gone; a new one seals new secrets.
                    *key = Some(SecretKey::create(&self.dir.join(KEY_FILE))?);
                }
                let sealed = match key.as_ref() {
                    Some(k) => k.seal(account, kind, clear)?,
                    None => return Err(poisoned()),
                };
                t.insert((account, kind.code()), sealed.as_slice())
                    .context("write secret")?;
            }
        }
        Ok(())
    }

    /// Whether a secret is stored that this installation's key sealed;
    /// what `HasPassword` shows. A secret under a key that is missing or
    /// was replaced (a store moved without its key) counts as none: it
    /// must be entered again, and a fetch says so.
    pub fn has_secret(&self, account: &str, kind: SecretKind) -> Result<bool> {
        self.call("look up a secret", || {
            let tx = self.read()?;
            let t = tx.open_table(SECRETS).context("open secrets")?;
            let Some(sealed) = t.get((account, kind.code())).context("read secret")? else {
                return Ok(false);
            };
            let key = self.key.lock().map_err(|_| poisoned())?;
            Ok(key.as_ref().is_some_and(|k| k.sealed_by_me(sealed.value())))
        })
    }

    /// The secret in clear, for a login. Err(Storage) if the key file is
    /// missing or was replaced.
    pub fn secret(&self, account: &str, kind: SecretKind) -> Result<Option<Secret>> {
        self.call("read a secret", || {
            let tx = self.read()?;
            let t = tx.open_table(SECRETS).context("open secrets")?;
            let Some(sealed) = t.get((account, kind.code())).context("read secret")? else {
                return Ok(None);
            };
            let key = self.key.lock().map_err(|_| poisoned())?;
            match key.as_ref() {
                Some(k) => k.open(account, kind, sealed.value()).map(Some),
                None => Err(Error::storage_msg(format!(
                    "the secret key {} is missing, so the stored {kind:?} of account {account} \
                 cannot be read; set it again",
                    self.dir.join(KEY_FILE).display()
                ))),
            }
        })
    }

    /// Remove everything the account owns except messages assigned to a
    /// contact (see `purge`). One transaction.
    pub fn delete_account(&self, id: &str) -> Result<()> {
        self.call("delete an account", || {
            let tx = self.write()?;
            let account = account_in(&tx, id)?.ok_or_else(|| no_account(id))?;
            tx.open_table(ACCOUNTS)
                .context("open accounts")?
                .remove(id)
                .context("remove account")?;
            {
                let mut t = tx.open_table(SECRETS).context("open secrets")?;
                for kind in SecretKind::ALL {
                    t.remove((id, kind.code())).context("remove secret")?;
                }
            }
            {
                let mut t = tx.open_table(SYNC).context("open sync state")?;
                let mut keys = Vec::new();
                for row in t.range((id, "")..).context("read sync state")? {
                    let (k, _) = row.context("read sync state")?;
                    let (acct, key) = k.value();
                    if acct != id {
                        break;
                    }
                    keys.push(key.to_string());
                }
                for k in &keys {
                    t.remove((id, k.as_str())).context("remove sync state")?;
                }
            }
            let blobs = super::purge::delete_account_messages(&tx, &account)?;
            super::blobs::drain(&tx, &self.blobs)?;
            super::blobs::trash(&tx, &blobs)?;
            tx.commit().context("commit account deletion")?;
            self.blobs.unlink_deleted(&blobs);
            Ok(())
        })
    }
}

fn poisoned() -> Error {
    Error::storage_msg("secret key lock poisoned".into())
}

#[cfg(test)]
mod tests;
