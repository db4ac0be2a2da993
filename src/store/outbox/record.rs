//! The queue record of an outbox mail and its entry in `outbox_active`,
//! kept in step by [`put_record`]: a record in a state that is not final
//! (queued, sending) has exactly one active entry, keyed by its state
//! code and time, so that the due list and the crash recovery read only
//! the mails still to send. Also the restore safety reset's part
//! ([`hold_in`]).

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::store::schema::{OUTBOX as RECORDS, OUTBOX_ACTIVE};

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
    pub(super) fn active_code(self) -> Option<u8> {
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
    pub(super) fn active_key(&self, id: u64) -> Option<(u8, i64, u64)> {
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

pub(in crate::store) fn record_from(bytes: &[u8]) -> Result<OutboxRecord> {
    serde_json::from_slice(bytes).context("stored outbox record is unreadable")
}

fn record_json(r: &OutboxRecord) -> Result<Vec<u8>> {
    serde_json::to_vec(r).context("encode outbox record")
}

pub(super) fn record_in(tx: &WriteTransaction, id: u64) -> Result<Option<OutboxRecord>> {
    let t = tx.open_table(RECORDS).context("open outbox")?;
    let v = t.get(id).context("read outbox")?;
    v.map(|g| record_from(g.value())).transpose()
}

pub(super) fn no_entry(id: u64) -> Error {
    Error::NotFound(format!("no outbox mail {id}"))
}

/// Write `new` for `id` and move its active-index entry from `old`'s.
pub(super) fn put_record(
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

/// Part of the restore safety reset (`crate::store::reset`), in its transaction:
/// every queued or sending mail becomes `failed` with [`HELD`]. A restored
/// backup or a cloned machine is a second installation; its queue is the
/// original's, which the original has sent or will send, and customers
/// must not get each mail twice. Failed, not deleted: the CRM user sees
/// it and can send it again. Returns how many mails were held.
pub(in crate::store) fn hold_in(tx: &WriteTransaction) -> Result<usize> {
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
