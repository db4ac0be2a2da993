//! Schema 10's conversion of the word index: the rows of the old
//! `search_index` (one per posting) are moved into packed chunks at every
//! open, in transactions of at most [`PACK_POSTINGS`] postings.
//!
//! Each transaction takes rows out of the old table and adds them to the
//! chunks atomically, so the rows left in the old table are the progress:
//! a kill at any point leaves every posting in exactly one of the two
//! tables, searches read both (`super::read`), and the next open goes on.
//! The transaction that empties the old table drops it. Converting the
//! postings (rather than rebuilding from the summaries) needs no mark of
//! how far a rebuild got and never indexes a mail twice.

use redb::{Database, ReadableTableMetadata, WriteTransaction};

use super::write::{legacy_exists, Postings};
use crate::error::{Context, Result};
use crate::store::schema::SEARCH_INDEX;
use crate::store::write_txn;

/// Postings moved per transaction: about 11 per mail, so a transaction
/// covers a few hundred mails and its write buffer stays small.
pub const PACK_POSTINGS: usize = 5_000;

/// Move every old posting into chunks (module docs); returns how many
/// were moved. Cheap when there is nothing to do: one look at the list
/// of tables.
pub(in crate::store) fn pack_legacy(db: &Database) -> Result<u64> {
    let mut moved = 0u64;
    loop {
        let tx = write_txn(db)?;
        if !legacy_exists(&tx)? {
            return Ok(moved);
        }
        let (n, done) = pack_some(&tx)?;
        if done {
            tx.delete_table(SEARCH_INDEX)
                .context("drop the old search index")?;
        }
        tx.commit().context("commit packed search index")?;
        moved += n as u64;
        tracing::info!(moved, done, "packing the word index (schema 10)");
        if done {
            return Ok(moved);
        }
    }
}

/// One bounded transaction: (postings moved, old table now empty).
fn pack_some(tx: &WriteTransaction) -> Result<(usize, bool)> {
    let mut rows = Vec::new();
    let done = {
        let mut legacy = tx.open_table(SEARCH_INDEX).context("open search index")?;
        while rows.len() < PACK_POSTINGS {
            let Some(row) = legacy.pop_first().context("read search index")? else {
                break;
            };
            let (k, v) = row;
            let (word, date, id) = k.value();
            rows.push((word.to_string(), date, id, v.value().to_string()));
        }
        legacy.is_empty().context("read search index")?
    };
    let mut p = Postings::open(tx)?;
    for (word, date, id, place) in &rows {
        p.insert(word, *date, *id, place)?;
    }
    Ok((rows.len(), done))
}
