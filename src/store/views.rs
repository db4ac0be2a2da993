//! View scopes: the sorted lists a ListMessages page is read from.
//!
//! Invariant 6 (ARCHITECTURE.md "Invariants"): a public account's mail is seen by every
//! user, a private account's only by its owner, an assigned mail by
//! everyone. Each message is therefore filed under its *visibility class*,
//! computed from the account's CURRENT private owner:
//!
//! - `c` assigned to a contact (public, whatever the account),
//! - `n` unassigned, public account,
//! - `u␟<owner>` unassigned, private account of `<owner>`,
//! - `x` unassigned, account deleted (only an admin's "all" view shows it).
//!
//! A user's inbox is the merge of `c`, `n` and `u␟<user>`; an admin's is the
//! `*` scope. The same classes exist per tenant, and per account there is
//! `c`/`n` (assigned or not; whether the viewer may see an account's
//! unassigned mail is decided from the account at query time). Every entry
//! also counts in the date-bucket counters of [`super::rank`], so a deep
//! page and an exact total cost O(log n), not O(n).
//!
//! Scope keys join parts with U+001F; tenants, users and account ids never
//! contain control characters (account validation), so keys cannot collide.
//! On disk a scope is a number ([`scopes`], schema 14), its entries and
//! counters are keyed by that number ([`lists`]); the entries are packed
//! in chunks of up to 128 ([`chunk`], [`chunks`], schema 16). Schema 12's
//! rows keyed by the key itself ([`pack`], [`legacy`]) and schema 14's one
//! row per entry ([`rechunk`]) are moved over at open, and the counters'
//! 17-minute level that schema 19 dropped is deleted there ([`finest`]).
//! Every function here runs inside the caller's write transaction.

use std::collections::HashMap;

use redb::{ReadableTable, WriteTransaction};

use super::meta::MessageMeta;
use super::schema::{ACCOUNTS, MESSAGES};
use super::search::Postings;
use super::summary;
use super::summary::Labels;
use crate::account::Account;
use crate::error::Context;
use crate::error::{Error, Result};
use legacy::Legacy;
use lists::Lists;

pub mod chunk;
mod chunks;
pub(super) mod finest;
mod legacy;
mod lists;
pub(super) mod pack;
pub(super) mod rechunk;
pub(super) mod scopes;
mod tally;

/// Separator of scope parts (see module docs).
pub(super) const SEP: char = '\x1f';

/// The visibility class key of a message (module docs). `owner` is the
/// account's current private owner, None when the account is gone.
pub(super) fn class_key(contact: &str, owner: Option<&str>) -> String {
    match owner {
        _ if !contact.is_empty() => "c".to_string(),
        None => "x".to_string(),
        Some("") => "n".to_string(),
        Some(o) => format!("u{SEP}{o}"),
    }
}

/// The class key of a private owner's unassigned mail.
pub(super) fn private_class(owner: &str) -> String {
    format!("u{SEP}{owner}")
}

/// Prefix of the global (`tenant` None) or one tenant's scopes of a folder.
pub(super) fn base(folder: &str, tenant: Option<&str>) -> String {
    match tenant {
        None => format!("v{SEP}{folder}"),
        Some(t) => format!("t{SEP}{t}{SEP}{folder}"),
    }
}

/// A scope under [`base`]: a class key, or `*` for everything.
pub(super) fn scoped(base: &str, class: &str) -> String {
    format!("{base}{SEP}{class}")
}

/// An account's assigned (`c`) or unassigned (`n`) scope in a folder.
pub(super) fn account_scope(account: &str, folder: &str, assigned: bool) -> String {
    let c = if assigned { "c" } else { "n" };
    format!("a{SEP}{account}{SEP}{folder}{SEP}{c}")
}

/// Every scope a message is listed in.
fn scopes(m: &MessageMeta, owner: Option<&str>) -> [String; 5] {
    let class = class_key(&m.contact, owner);
    let global = base(&m.folder, None);
    let tenant = base(&m.folder, Some(&m.tenant));
    [
        scoped(&global, "*"),
        scoped(&global, &class),
        scoped(&tenant, "*"),
        scoped(&tenant, &class),
        account_scope(&m.account, &m.folder, !m.contact.is_empty()),
    ]
}

/// The open index and counter tables of one write transaction, and the
/// word index (`super::search`), which follows every add, remove and
/// change of a message's entries.
///
/// Opened with [`Writer::open`], every call writes its counters and
/// postings before it returns; with [`Writer::batch`] (a fetched batch)
/// they stay in memory until [`Writer::finish`], so the counter rows and
/// word chunks that the batch's mails share are written once per batch
/// (`lists`, `super::search::Postings::batch`). The index entries
/// themselves are written at once either way.
pub(super) struct Writer<'tx> {
    lists: Lists<'tx>,
    /// Schema 12's lists while their move is pending ([`pack`]): an entry
    /// still there is found and removed there, never filed twice.
    legacy: Option<Legacy<'tx>>,
    words: Postings<'tx>,
}

impl<'tx> Writer<'tx> {
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<Writer<'tx>> {
        Self::with(tx, Postings::open(tx)?, Lists::open(tx)?)
    }

    /// For many adds in a row: [`Writer::finish`] must come before the
    /// commit, or the counters and postings of the batch are lost.
    pub(super) fn batch(tx: &'tx WriteTransaction) -> Result<Writer<'tx>> {
        Self::with(tx, Postings::batch(tx)?, Lists::batch(tx)?)
    }

    fn with(
        tx: &'tx WriteTransaction,
        words: Postings<'tx>,
        lists: Lists<'tx>,
    ) -> Result<Writer<'tx>> {
        Ok(Writer {
            lists,
            legacy: Legacy::open(tx)?,
            words,
        })
    }

    /// Write what [`Writer::batch`] kept back.
    pub(super) fn finish(&mut self) -> Result<()> {
        self.lists.flush()?;
        self.words.finish()
    }

    /// File a message under every scope of its class.
    pub(super) fn add(&mut self, m: &MessageMeta, owner: Option<&str>) -> Result<()> {
        for s in scopes(m, owner) {
            self.entry(&s, m.date, m.id, true)?;
        }
        self.words.add(m)
    }

    /// Remove a message from the scopes it was filed under with `owner`.
    pub(super) fn remove(&mut self, m: &MessageMeta, owner: Option<&str>) -> Result<()> {
        for s in scopes(m, owner) {
            self.entry(&s, m.date, m.id, false)?;
        }
        self.words.remove(m)
    }

    /// Move a message between the scopes of two (contact, owner) states,
    /// touching only the scopes that differ.
    pub(super) fn refile(
        &mut self,
        before: &MessageMeta,
        old_owner: Option<&str>,
        after: &MessageMeta,
        new_owner: Option<&str>,
    ) -> Result<()> {
        let old = scopes(before, old_owner);
        let new = scopes(after, new_owner);
        for (o, n) in old.iter().zip(&new) {
            if o != n {
                self.entry(o, before.date, before.id, false)?;
                self.entry(n, after.date, after.id, true)?;
            }
        }
        self.words.change(before, after)
    }

    /// Insert or remove one index entry, its counters with it ([`lists`]).
    /// An entry that is already in the wanted state, in either place,
    /// changes nothing.
    fn entry(&mut self, scope: &str, date: i64, id: u64, present: bool) -> Result<()> {
        if present {
            if let Some(old) = &self.legacy {
                if old.contains(scope, date, id)? {
                    return Ok(());
                }
            }
            self.lists.add(scope, &[(date, id)])?;
        } else if !self.lists.remove(scope, date, id)? {
            if let Some(old) = &mut self.legacy {
                old.remove(scope, date, id)?;
            }
        }
        Ok(())
    }

    /// Ids of the account's messages in every folder, assigned or not
    /// (`Some(true)`/`Some(false)`) or both (None), scope by scope.
    pub(super) fn account_ids(
        &mut self,
        account: &str,
        assigned: Option<bool>,
    ) -> Result<Vec<u64>> {
        let prefix = format!("a{SEP}{account}{SEP}");
        let assigned_end = format!("{SEP}c");
        let keep = |key: &str| assigned.is_none_or(|a| a == key.ends_with(&assigned_end));
        let mut out = self.lists.ids_under(&prefix, keep)?;
        if let Some(old) = &self.legacy {
            out.extend(old.ids_under(&prefix, keep)?);
        }
        Ok(out)
    }
}

/// The current private owner of an account inside a write transaction:
/// Some("") public, Some(user) private, None deleted.
pub(super) fn owner_in(tx: &WriteTransaction, account: &str) -> Result<Option<String>> {
    Ok(super::account_row::account_in(tx, account)?.map(|a| a.private_owner))
}

/// Read one message's summary inside a write transaction.
pub(super) fn meta_in(tx: &WriteTransaction, id: u64) -> Result<Option<MessageMeta>> {
    let t = tx.open_table(MESSAGES).context("open messages")?;
    let v = t.get(id).context("read message")?;
    v.map(|g| summary::decode(&Labels::write(tx), id, g.value()))
        .transpose()
}

/// Visibility follows the current owner at once: re-file the account's
/// unassigned mails from `old` to `new` owner's class, in the caller's
/// transaction (the one that stores the account change). Costs one index
/// move per unassigned mail of the account.
pub(super) fn owner_changed(tx: &WriteTransaction, old: &Account, new: &Account) -> Result<()> {
    if old.private_owner == new.private_owner {
        return Ok(());
    }
    let mut w = Writer::open(tx)?;
    for id in w.account_ids(&old.id, Some(false))? {
        let m = meta_in(tx, id)?.ok_or_else(|| {
            Error::storage_msg(format!("index names message {id}, which is missing"))
        })?;
        w.refile(&m, Some(&old.private_owner), &m, Some(&new.private_owner))?;
    }
    Ok(())
}

/// Build every view scope from the `messages` table (schema migration).
pub(super) fn rebuild(tx: &WriteTransaction) -> Result<()> {
    let owners: HashMap<String, String> = {
        let t = tx.open_table(ACCOUNTS).context("open accounts")?;
        let mut out = HashMap::new();
        for row in t.iter().context("read accounts")? {
            let (_, v) = row.context("read accounts")?;
            let a: Account =
                serde_json::from_slice(v.value()).context("stored account is unreadable")?;
            out.insert(a.id, a.private_owner);
        }
        out
    };
    let messages = tx.open_table(MESSAGES).context("open messages")?;
    let mut w = Writer::open(tx)?;
    let labels = Labels::write(tx);
    for row in messages.iter().context("read messages")? {
        let (k, v) = row.context("read messages")?;
        let m = summary::decode(&labels, k.value(), v.value())?;
        w.add(&m, owners.get(&m.account).map(String::as_str))?;
    }
    Ok(())
}

#[cfg(test)]
mod batch_tests;
#[cfg(test)]
mod chunk_tests;
#[cfg(test)]
mod finest_tests;
#[cfg(test)]
pub(crate) mod tests;
