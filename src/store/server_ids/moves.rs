//! Schema 20's move of the canonical IMAP server ids from rows of
//! `server_ids` into chunks of `server_uids`, at every open while the mark
//! [`KEY_MOVE`] is in `meta`, in transactions that read at most
//! [`MOVE_ROWS`] rows.
//!
//! Each transaction moves the canonical rows it read (taking each row out
//! as its pair goes into a chunk) and sets the mark to the last row it
//! read, all atomically: the rows of other forms stay where they are, so
//! the mark, not the emptiness of the table, is the progress. A kill at
//! any point leaves every id in exactly one place, which the readers
//! consult both of (`super::ServerIds`), and the next open goes on from
//! the mark. The transaction that reads the last row removes the mark.

use redb::{Database, ReadableTable, WriteTransaction};

use super::chunk::canonical;
use super::ServerIds;
use crate::error::{Context, Error, Result};
use crate::store::schema::{META, SERVER_IDS};

/// `meta` key of the move's progress: the last row read, as the account's
/// length (4 bytes big-endian), the account and the server id; empty
/// before the first step. Absent when there is nothing to move.
pub const KEY_MOVE: &str = "server_ids_moved_after";

/// Rows read per transaction.
pub const MOVE_ROWS: usize = 5_000;

/// True while the move is pending.
pub(in crate::store) fn pending(tx: &WriteTransaction) -> Result<bool> {
    let t = tx.open_table(META).context("open meta")?;
    let found = t.get(KEY_MOVE).context("read meta")?.is_some();
    Ok(found)
}

/// Start the move (the step to schema 20): from the first row.
pub(in crate::store) fn start(tx: &WriteTransaction) -> Result<()> {
    let mut t = tx.open_table(META).context("open meta")?;
    t.insert(KEY_MOVE, [].as_slice()).context("write meta")?;
    Ok(())
}

/// Move every canonical row (module docs); returns how many were moved.
/// Cheap when there is nothing to do: one look into `meta`.
pub(in crate::store) fn move_rows(db: &Database) -> Result<u64> {
    crate::store::views::pack::in_steps(
        db,
        "moving IMAP server ids into chunks (schema 20)",
        |tx| move_some(tx, MOVE_ROWS),
    )
}

fn bad_mark() -> Error {
    Error::storage_msg(format!("meta value {KEY_MOVE} is damaged"))
}

/// The mark's (account, server id), None for the start.
fn read_mark(tx: &WriteTransaction) -> Result<Option<Option<(String, String)>>> {
    let t = tx.open_table(META).context("open meta")?;
    let Some(v) = t.get(KEY_MOVE).context("read meta")? else {
        return Ok(None);
    };
    let b = v.value();
    if b.is_empty() {
        return Ok(Some(None));
    }
    let len: [u8; 4] = b
        .get(..4)
        .and_then(|l| l.try_into().ok())
        .ok_or_else(bad_mark)?;
    let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| bad_mark())?;
    let rest = &b[4..];
    let (account, sid) = (rest.get(..len), rest.get(len..));
    let text = |p: Option<&[u8]>| {
        p.and_then(|p| std::str::from_utf8(p).ok())
            .map(str::to_string)
            .ok_or_else(bad_mark)
    };
    Ok(Some(Some((text(account)?, text(sid)?))))
}

/// One bounded step in the caller's transaction: (ids moved, done); None
/// if there was nothing to move.
pub(in crate::store) fn move_some(
    tx: &WriteTransaction,
    max: usize,
) -> Result<Option<(u64, bool)>> {
    let Some(after) = read_mark(tx)? else {
        return Ok(None);
    };
    let mut read = Vec::new();
    {
        let rows = tx.open_table(SERVER_IDS).context("open server ids")?;
        let from = after
            .as_ref()
            .map_or(("", ""), |(a, s)| (a.as_str(), s.as_str()));
        for row in rows.range(from..).context("read server ids")? {
            let (k, v) = row.context("read server ids")?;
            let (account, sid) = k.value();
            if after
                .as_ref()
                .is_some_and(|(a, s)| a == account && s == sid)
            {
                continue;
            }
            if read.len() >= max {
                break;
            }
            read.push((account.to_string(), sid.to_string(), v.value()));
        }
    }
    let done = read.len() < max;
    let last = read.last().map(|(a, s, _)| (a.clone(), s.clone()));
    // In UID order per generation, so that each chunk is written once.
    let mut moving: Vec<_> = read
        .into_iter()
        .filter_map(|(a, s, id)| {
            let (generation, uid) = canonical(&s)?;
            Some(((a.clone(), generation.to_string(), uid), s.clone(), id))
        })
        .collect();
    moving.sort();
    let mut ids = ServerIds::open(tx)?;
    for ((account, _, _), sid, id) in &moving {
        ids.insert(account, sid, *id)?;
    }
    ids.finish()?;
    let mut meta = tx.open_table(META).context("open meta")?;
    match (done, last) {
        (false, Some((account, sid))) => {
            let len = u32::try_from(account.len()).map_err(|_| bad_mark())?;
            let mark = [&len.to_be_bytes()[..], account.as_bytes(), sid.as_bytes()].concat();
            meta.insert(KEY_MOVE, mark.as_slice())
                .context("write meta")?;
        }
        _ => {
            meta.remove(KEY_MOVE).context("write meta")?;
        }
    }
    Ok(Some((moving.len() as u64, done)))
}
