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

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::accounts::{account_in, no_account};
use super::messages::{meta_row, MessageMeta, Summary};
use super::purge::remove_rows_in;
use super::schema::{self, BLOBS, MESSAGES, OUTBOX as RECORDS, OUTBOX_ACTIVE, RAW_PACKED};
use super::summary::Labels;
use super::views::Writer;
use super::{Store, BLOB_MIN};
use crate::account::Account;
use crate::error::{Context, Error, Result};

/// The folder outbox mails are filed in.
pub const OUTBOX: &str = "outbox";

/// Where a mail is in the outbox (ARCHITECTURE.md "The D-Bus API" message key `state`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    /// Waiting for its next attempt (`next_at`).
    #[default]
    Queued,
    /// An attempt is under way since `next_at`.
    Sending,
    /// The server accepted it (250 after DATA).
    Sent,
    /// Given up; `error` says why.
    Failed,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
        }
    }

    /// The state code in `outbox_active`; None for final states.
    fn active_code(self) -> Option<u8> {
        match self {
            OutboxState::Queued => Some(0),
            OutboxState::Sending => Some(1),
            OutboxState::Sent | OutboxState::Failed => None,
        }
    }
}

/// The queue record of an outbox mail; JSON in the `outbox` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboxRecord {
    pub account: String,
    /// The CRM user who sent it.
    pub user: String,
    pub state: OutboxState,
    /// SMTP envelope: MAIL FROM (the account's address) and RCPT TO (to,
    /// cc and bcc: bcc appears nowhere else).
    pub from: String,
    pub rcpt: Vec<String>,
    /// Attempts begun so far.
    pub attempts: u32,
    /// Unix seconds when it was queued.
    pub queued_at: i64,
    /// Queued: when the next attempt is due. Sending: when it began.
    pub next_at: i64,
    /// Set, durably, just before the body goes to the server: from then on
    /// the server may have accepted the mail even if we never hear its 250
    /// (see `crate::send::queue` for what a crash then means).
    pub body_started: bool,
    /// The last failure (capped, without secrets); "" when none.
    pub error: String,
    /// Unix seconds when it became sent or failed; 0 before.
    pub done_at: i64,
}

impl OutboxRecord {
    fn active_key(&self, id: u64) -> Option<(u8, i64, u64)> {
        self.state.active_code().map(|c| (c, self.next_at, id))
    }
}

/// A queued or sending mail, as the active index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: u64,
    pub account: String,
    /// Queued: next attempt; sending: start of the attempt.
    pub at: i64,
}

pub(super) fn record_from(bytes: &[u8]) -> Result<OutboxRecord> {
    serde_json::from_slice(bytes).context("stored outbox record is unreadable")
}

fn record_json(r: &OutboxRecord) -> Result<Vec<u8>> {
    serde_json::to_vec(r).context("encode outbox record")
}

fn record_in(tx: &WriteTransaction, id: u64) -> Result<Option<OutboxRecord>> {
    let t = tx.open_table(RECORDS).context("open outbox")?;
    let v = t.get(id).context("read outbox")?;
    v.map(|g| record_from(g.value())).transpose()
}

fn no_entry(id: u64) -> Error {
    Error::NotFound(format!("no outbox mail {id}"))
}

/// Write `new` for `id` and move its active-index entry from `old`'s.
fn put_record(
    tx: &WriteTransaction,
    id: u64,
    old: Option<&OutboxRecord>,
    new: &OutboxRecord,
) -> Result<()> {
    let mut active = tx.open_table(OUTBOX_ACTIVE).context("open outbox")?;
    if let Some(k) = old.and_then(|o| o.active_key(id)) {
        active.remove(k).context("write outbox index")?;
    }
    if let Some(k) = new.active_key(id) {
        active
            .insert(k, new.account.as_str())
            .context("write outbox index")?;
    }
    tx.open_table(RECORDS)
        .context("open outbox")?
        .insert(id, record_json(new)?.as_slice())
        .context("write outbox")?;
    Ok(())
}

/// What a held mail's `error` says (`hold_in`).
pub const HELD: &str = "not sent: this installation was restored from a backup or copied, and \
the original may have sent it already; send it again if it is still wanted";

/// Part of the restore safety reset (`super::reset`), in its transaction:
/// every queued or sending mail becomes `failed` with [`HELD`]. A restored
/// backup or a cloned machine is a second installation; its queue is the
/// original's, which the original has sent or will send, and customers
/// must not get each mail twice. Failed, not deleted: the CRM user sees
/// it and can send it again. Returns how many mails were held.
pub(super) fn hold_in(tx: &WriteTransaction) -> Result<usize> {
    let ids: Vec<u64> = {
        let active = tx.open_table(OUTBOX_ACTIVE).context("open outbox")?;
        let rows = active.iter().context("read outbox index")?;
        let mut ids = Vec::new();
        for row in rows {
            let (k, _) = row.context("read outbox index")?;
            ids.push(k.value().2);
        }
        ids
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut held = 0;
    for id in ids {
        let Some(old) = record_in(tx, id)? else {
            continue;
        };
        let new = OutboxRecord {
            state: OutboxState::Failed,
            error: HELD.to_string(),
            done_at: now,
            ..old.clone()
        };
        put_record(tx, id, Some(&old), &new)?;
        held += 1;
    }
    Ok(held)
}

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
            sha256,
            account_name: stored.name.clone(),
            account_address: stored.address.clone(),
            ..MessageMeta::default()
        };
        Writer::open(&tx)?.add(&meta, Some(&stored.private_owner))?;
        tx.open_table(MESSAGES)
            .context("open messages")?
            .insert(id, meta_row(&Labels::write(&tx), &meta)?.as_slice())
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
