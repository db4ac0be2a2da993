//! The outbox (schema 6): mails being sent (ARCHITECTURE.md "What it does",
//! "Data paths").
//!
//! A mail that SendMessage accepts is stored like a fetched one — its raw
//! bytes (a blob file above [`super::BLOB_MIN`]), a summary in folder
//! [`OUTBOX`], view entries under the account's visibility class — so
//! ListMessages(folder=outbox) and GetRaw show it by the same rules as
//! inbox mail: a private account's outbox is seen only by its owner
//! (invariant 6). Beside it an [`OutboxRecord`] keeps the envelope, the
//! state, the attempts and the last error. [`Store::add_outbox`] writes all
//! of it in one durable transaction: once it returns, the mail survives a
//! crash and will be sent.
//!
//! The store keeps records and indexes consistent and refuses a state
//! change whose expected prior state does not match (compare-and-set, so
//! that a cancel and a delivery cannot both act on one mail). *Which*
//! transitions happen — backoff, giving up, what a crash in `sending`
//! means — is decided in `crate::send::queue`.
//!
//! Queued and sending mails have one entry each in `outbox_active`
//! (state code, time, id); sent and failed ones have none. The due list
//! and the crash recovery read only that table, however many mails were
//! sent over the years.
//!
//! No content hash or server id is recorded: an outbox mail is not fetched
//! mail, and a copy that comes back (a mail to the account's own address)
//! must be stored as new inbox mail, not matched to the outbox entry.

use redb::WriteTransaction;

use super::account_row::{account_in, no_account};
use super::keytags::{tag_of, KeyTags};
use super::meta::{MessageMeta, Summary};
use super::purge::remove_rows_in;
use super::schema::{self, BLOBS, MESSAGES, OUTBOX as RECORDS, OUTBOX_ACTIVE, RAW_PACKED};
use super::summary;
use super::summary::Labels;
use super::views::Writer;
use super::{Store, BLOB_MIN};
use crate::account::Account;
use crate::error::{Context, Error, Result};

mod record;
pub(super) use record::{hold_in, record_from};
use record::{no_entry, put_record, record_in};
pub use record::{OutboxRecord, OutboxState, Pending, HELD};

/// The folder outbox mails are filed in.
pub const OUTBOX: &str = "outbox";

impl Store {
    /// Queue a composed mail: its bytes, its summary in folder [`OUTBOX`]
    /// and its record, in one durable transaction (module docs). The
    /// record's `account` is set from `account`. NotFound if the account
    /// was deleted meanwhile; nothing is written then.
    pub fn add_outbox(
        &self,
        account: &Account,
        raw: Vec<u8>,
        summary: Summary,
        mut record: OutboxRecord,
    ) -> Result<u64> {
        self.call("queue an outbox mail", || {
            record.account = account.id.clone();
            let at = record.queued_at;
            self.add_own_mail(account, OUTBOX, raw, summary, at, |tx, id| {
                put_record(tx, id, None, &record)
            })
        })
    }

    /// A mail this daemon composed (outbox, drafts) as message of
    /// `account` in `folder`: bytes (a blob file when big), summary (read,
    /// received at `at`) and view entries under the account's visibility
    /// class, plus what `extra` writes for the new id, in one durable
    /// transaction. NotFound if the account was deleted meanwhile.
    pub(super) fn add_own_mail(
        &self,
        account: &Account,
        folder: &str,
        raw: Vec<u8>,
        summary: Summary,
        at: i64,
        extra: impl FnOnce(&WriteTransaction, u64) -> Result<()>,
    ) -> Result<u64> {
        // A big mail is staged as a file first, outside the transaction.
        let staged = if raw.len() as u64 > BLOB_MIN {
            let mut w = self.blob_writer()?;
            w.write(&raw)?;
            Some(w.finish()?)
        } else {
            None
        };
        let size = raw.len() as u64;
        let sha256 = super::sha256_hex(&raw);
        let tx = self.write()?;
        let Some(stored) = account_in(&tx, &account.id)? else {
            return Err(no_account(&account.id));
        };
        let id = schema::next_counter(&tx, schema::KEY_NEXT_MESSAGE)?;
        let meta = MessageMeta {
            id,
            account: account.id.clone(),
            tenant: stored.tenant.clone(),
            folder: folder.to_string(),
            from: summary.from,
            to: summary.to,
            cc: summary.cc,
            subject: summary.subject,
            date: summary.date.unwrap_or(at),
            received: at,
            size,
            read: true,
            has_attachments: summary.has_attachments,
            contact: String::new(),
            message_id: summary.message_id,
            account_name: stored.name.clone(),
            account_address: stored.address.clone(),
            keys: KeyTags {
                raw: tag_of(&sha256),
                ..KeyTags::default()
            },
        };
        Writer::open(&tx)?.add(&meta, Some(&stored.private_owner))?;
        tx.open_table(MESSAGES)
            .context("open messages")?
            .insert(id, summary::encode(&Labels::write(&tx), &meta)?.as_slice())
            .context("write message")?;
        extra(&tx, id)?;
        match staged {
            None => {
                let mut t = tx.open_table(RAW_PACKED).context("open raw")?;
                super::compress::insert(&mut t, id, &raw)?;
            }
            Some(blob) => {
                tx.open_table(BLOBS)
                    .context("open blobs")?
                    .insert(id, size)
                    .context("write blob row")?;
                self.blobs.commit_file(blob, id)?;
                // The rename must be durable before the row that points to
                // it; a failure leaves a file the next open removes.
                if let Err(e) = self.blobs.sync() {
                    self.blobs.discard(&[id]);
                    return Err(e);
                }
            }
        }
        tx.commit().context("commit a composed mail")?;
        Ok(id)
    }

    /// The queue record of outbox mail `id`.
    pub fn outbox_record(&self, id: u64) -> Result<Option<OutboxRecord>> {
        self.call("read an outbox record", || {
            let tx = self.read()?;
            let t = tx.open_table(RECORDS).context("open outbox")?;
            let v = t.get(id).context("read outbox")?;
            v.map(|g| record_from(g.value())).transpose()
        })
    }

    /// The records of several mails from one snapshot (a ListMessages page
    /// of the outbox); None where a message has no record.
    pub fn outbox_records(&self, ids: &[u64]) -> Result<Vec<Option<OutboxRecord>>> {
        self.call("read outbox records", || {
            let tx = self.read()?;
            let t = tx.open_table(RECORDS).context("open outbox")?;
            ids.iter()
                .map(|id| {
                    let v = t.get(*id).context("read outbox")?;
                    v.map(|g| record_from(g.value())).transpose()
                })
                .collect()
        })
    }

    /// Replace the record of `id` if it is still in state `expect`;
    /// NotFound if there is none, Busy (and nothing written) if another
    /// writer changed its state first.
    pub fn set_outbox_record(
        &self,
        id: u64,
        expect: OutboxState,
        new: &OutboxRecord,
    ) -> Result<()> {
        self.call("change an outbox record", || {
            let tx = self.write()?;
            let old = record_in(&tx, id)?.ok_or_else(|| no_entry(id))?;
            if old.state != expect {
                return Err(Error::Busy(format!(
                    "outbox mail {id} is {}, not {}",
                    old.state.as_str(),
                    expect.as_str()
                )));
            }
            let mut new = new.clone();
            new.account = old.account.clone();
            put_record(&tx, id, Some(&old), &new)?;
            tx.commit().context("commit outbox state")
        })
    }

    /// The mails in `state` (queued or sending), oldest `at` first.
    pub fn pending_outbox(&self, state: OutboxState) -> Result<Vec<Pending>> {
        self.call("list the outbox", || {
            let Some(code) = state.active_code() else {
                return Ok(Vec::new());
            };
            let tx = self.read()?;
            let t = tx.open_table(OUTBOX_ACTIVE).context("open outbox")?;
            let rows = t
                .range((code, i64::MIN, 0u64)..=(code, i64::MAX, u64::MAX))
                .context("read outbox index")?;
            let mut out = Vec::new();
            for row in rows {
                let (k, v) = row.context("read outbox index")?;
                let (_, at, id) = k.value();
                out.push(Pending {
                    id,
                    account: v.value().to_string(),
                    at,
                });
            }
            Ok(out)
        })
    }

    /// Remove an outbox mail — message, bytes and record — if its state is
    /// one of `allowed` (a cancel: never while `sending`). NotFound if
    /// there is no record, Busy if the state is not allowed.
    pub fn remove_outbox(&self, id: u64, allowed: &[OutboxState]) -> Result<()> {
        self.call("remove an outbox mail", || {
            let tx = self.write()?;
            let rec = record_in(&tx, id)?.ok_or_else(|| no_entry(id))?;
            if !allowed.contains(&rec.state) {
                return Err(Error::Busy(format!(
                    "outbox mail {id} is {}",
                    rec.state.as_str()
                )));
            }
            if let Some(k) = rec.active_key(id) {
                tx.open_table(OUTBOX_ACTIVE)
                    .context("open outbox")?
                    .remove(k)
                    .context("write outbox index")?;
            }
            tx.open_table(RECORDS)
                .context("open outbox")?
                .remove(id)
                .context("remove outbox record")?;
            let had_blob = remove_rows_in(&tx, id)?.is_some_and(|(_, blob)| blob);
            if had_blob {
                // As for a deleted mail: the file goes only after the
                // commit, and the trash row proves it may (blobs::sweep).
                super::blobs::drain(&tx, &self.blobs)?;
                super::blobs::trash(&tx, &[id])?;
            }
            tx.commit().context("commit outbox removal")?;
            if had_blob {
                self.blobs.unlink_deleted(&[id]);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
