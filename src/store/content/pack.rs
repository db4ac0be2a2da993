//! Schema 15's move of the content index to binary keys: the rows of the
//! text-keyed `content` table go to `content_keys` (keyed by
//! [`super::stored_key`]) at every open, in transactions of at most
//! [`MOVE_ROWS`] rows, until none are left.
//!
//! Each transaction takes rows out of the old table and files them under
//! their stored keys atomically, so the rows left in the old table are the
//! progress: a kill at any point leaves every key in exactly one of the
//! two tables, lookups read both (`super::Content`), and the next open
//! goes on. A key that is in the new table already keeps that row: it was
//! written after the old one (every write takes the old row out, so this
//! does not happen, but the newer row is the one to keep if it did). The
//! transaction that empties the old table drops it.

use redb::{Database, ReadableTable, WriteTransaction};

use super::{legacy_in, stored_key};
use crate::error::{Context, Result};
use crate::store::schema::{CONTENT, CONTENT_KEYS};
use crate::store::write_txn;

/// Rows moved per transaction: one per mail (two or three for mail from
/// servers that rewrite their bookkeeping fields), about 100 bytes each,
/// so a transaction writes about half a megabyte.
pub const MOVE_ROWS: usize = 5_000;

/// Move every old row to the binary keys (module docs); returns how many
/// were moved. Cheap when there is nothing to do: one look at the list of
/// tables.
pub(in crate::store) fn pack_legacy(db: &Database) -> Result<u64> {
    let mut moved = 0u64;
    loop {
        let tx = write_txn(db)?;
        let Some((n, done)) = move_some(&tx, MOVE_ROWS)? else {
            return Ok(moved);
        };
        tx.commit().context("commit the moved content keys")?;
        moved += n;
        tracing::info!(moved, done, "moving content keys to 32 bytes (schema 15)");
        if done {
            return Ok(moved);
        }
    }
}

/// One bounded step in the caller's transaction: (rows moved, none left
/// and the old table dropped); None if there was nothing to move.
pub(in crate::store) fn move_some(
    tx: &WriteTransaction,
    max: usize,
) -> Result<Option<(u64, bool)>> {
    if !legacy_in(tx)? {
        return Ok(None);
    }
    let (n, done) = {
        let mut old = tx.open_table(CONTENT).context("open old content")?;
        let mut keys = tx.open_table(CONTENT_KEYS).context("open content")?;
        let mut taken: Vec<(String, String, u64)> = Vec::new();
        for row in old.iter().context("read old content")?.take(max) {
            let (k, v) = row.context("read old content")?;
            let (acct, text) = k.value();
            taken.push((acct.to_string(), text.to_string(), v.value()));
        }
        for (acct, text, id) in &taken {
            old.remove((acct.as_str(), text.as_str()))
                .context("write old content")?;
            let key = stored_key(text);
            let newer = keys
                .get((acct.as_str(), &key))
                .context("read content")?
                .is_some();
            if !newer {
                keys.insert((acct.as_str(), &key), *id)
                    .context("write content")?;
            }
        }
        (taken.len() as u64, taken.len() < max)
    };
    if done {
        tx.delete_table(CONTENT)
            .context("drop the old content table")?;
    }
    Ok(Some((n, done)))
}
