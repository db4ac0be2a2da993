//! Schema 16's move of the view lists into chunks: the rows of schema 14's
//! `view_entries` (one per entry) go into `view_chunks` at every open, in
//! transactions of at most [`MOVE_ENTRIES`] entries, until none are left.
//!
//! Each transaction takes entries out of the old table and files them in
//! chunks atomically, so the entries left in the old table are the
//! progress: a kill at any point leaves every entry in exactly one of the
//! two tables, reads take both (`crate::store::rank::Index`), writes find
//! an entry in either (`super::chunks`), and the next open goes on. The
//! counters count an entry wherever it is, so the move leaves them alone.
//! The transaction that empties the old table drops it.

use redb::{Database, WriteTransaction};

use super::chunks::old_entries_in;
use super::lists::Lists;
use super::pack::in_steps;
use crate::error::{Context, Result};
use crate::store::schema::VIEW_ENTRIES;

/// Entries moved per transaction: five per mail, so a transaction covers
/// about a thousand mails; the old rows come in scope order, so they
/// fill whole chunks, each written once.
pub const MOVE_ENTRIES: usize = 5_000;

/// Move every old entry into chunks (module docs); returns how many were
/// moved. Cheap when there is nothing to do: one look at the list of
/// tables.
pub(in crate::store) fn move_entries(db: &Database) -> Result<u64> {
    in_steps(db, "packing the view index into chunks (schema 16)", |tx| {
        move_some(tx, MOVE_ENTRIES)
    })
}

/// One bounded step in the caller's transaction: (entries moved, none
/// left and the old table dropped); None if there was nothing to move.
pub(super) fn move_some(tx: &WriteTransaction, max: usize) -> Result<Option<(u64, bool)>> {
    if !old_entries_in(tx)? {
        return Ok(None);
    }
    let (n, done) = Lists::move_old(tx, max)?;
    if done {
        tx.delete_table(VIEW_ENTRIES)
            .context("drop the old view index")?;
    }
    Ok(Some((n, done)))
}
