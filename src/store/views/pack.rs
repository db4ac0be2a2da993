//! Schema 14's move of the view lists to numbered scopes: the rows of the
//! old `view_index` (keyed by the scope key) go to `view_entries` (keyed by
//! the scope's number) at every open, in transactions of at most
//! [`MOVE_ENTRIES`] entries, until none are left.
//!
//! Each transaction takes entries out of the old tables, counters and all,
//! and files them under their numbers atomically, so the entries left in
//! the old tables are the progress: a kill at any point leaves every entry
//! in exactly one of the two places with exact counts in both, reads take
//! the union (`super::scopes::Scope`), and the next open goes on. The
//! transaction that empties the old index drops the three old tables.
//! Moving the entries (rather than rebuilding them from the summaries)
//! needs no mark of how far a rebuild got and never files a mail twice.

use redb::{Database, WriteTransaction};

use super::legacy::Legacy;
use super::lists::Lists;
use crate::error::{Context, Result};
use crate::store::schema::{BUCKETS, VIEW_COUNTS, VIEW_INDEX};
use crate::store::write_txn;

/// Entries moved per transaction: five per mail, so a transaction covers
/// about a thousand mails and its write buffer stays small; as the old
/// rows are in scope order, most of them share counter rows
/// (`super::tally`).
pub const MOVE_ENTRIES: usize = 5_000;

/// Move every old entry to the numbered lists (module docs); returns how
/// many were moved. Cheap when there is nothing to do: one look at the
/// list of tables.
pub(in crate::store) fn pack_legacy(db: &Database) -> Result<u64> {
    in_steps(
        db,
        "moving the view index to scope numbers (schema 14)",
        |tx| move_some(tx, MOVE_ENTRIES),
    )
}

/// Run `step` in one transaction after another until it is done or has
/// nothing to do, logging `what` after each commit; returns how many
/// entries the steps moved. Each step is committed on its own, so a kill
/// loses at most the step under way, and the next open goes on.
pub(in crate::store) fn in_steps(
    db: &Database,
    what: &str,
    step: impl Fn(&WriteTransaction) -> Result<Option<(u64, bool)>>,
) -> Result<u64> {
    let mut moved = 0u64;
    loop {
        let tx = write_txn(db)?;
        let Some((n, done)) = step(&tx)? else {
            return Ok(moved);
        };
        tx.commit().context("commit the moved view index")?;
        moved += n;
        tracing::info!(moved, done, "{what}");
        if done {
            return Ok(moved);
        }
    }
}

/// One bounded step in the caller's transaction: (entries moved, none
/// left, the old tables dropped); None if there was nothing to move.
pub(super) fn move_some(tx: &WriteTransaction, max: usize) -> Result<Option<(u64, bool)>> {
    let (n, done) = {
        let Some(mut old) = Legacy::open(tx)? else {
            return Ok(None);
        };
        let (taken, done) = old.take(max)?;
        let mut lists = Lists::open(tx)?;
        let mut n = 0u64;
        for (key, entries) in &taken {
            lists.add(key, entries)?;
            n += entries.len() as u64;
        }
        (n, done)
    };
    if done {
        tx.delete_table(VIEW_INDEX)
            .context("drop the old view index")?;
        tx.delete_table(BUCKETS)
            .context("drop the old view counters")?;
        tx.delete_table(VIEW_COUNTS)
            .context("drop the old view counters")?;
    }
    Ok(Some((n, done)))
}
