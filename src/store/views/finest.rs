//! Schema 19's move of the view counters: the 17-minute level (level 0 of
//! `view_arrays`, child arrays keyed by the 9-hour parent) is no longer
//! counted (`crate::store::rank` module docs), so its rows are deleted at
//! every open, in transactions of at most [`DROP_ROWS`] rows, until none
//! are left.
//!
//! Readers and writers ignore level 0 whatever is stored, so a kill at
//! any point leaves only rows nobody reads, the pages answer the same
//! before, during and after, and the next open goes on where the kill
//! stopped. The level is the first key field, so the rows left are one
//! contiguous range at the start of the table and finding them is one
//! B-tree lookup: a store without any costs that at each open. Schema
//! 12's `view_counts` keeps its level 0 rows until the move of its
//! entries (`super::pack`) drops the whole table. Backups of schemas 3
//! to 17 carry level 0 rows too; the open after their restore deletes
//! them here.

use redb::{Database, ReadableTable, WriteTransaction};

use super::pack::in_steps;
use crate::error::{Context, Result};
use crate::store::schema::VIEW_ARRAYS;

/// The level no longer counted.
const DROPPED: u8 = 0;

/// Rows deleted per transaction: a store holds more than one per mail
/// (one per scope and busy 9-hour bucket), and deleting a run of
/// neighbouring keys changes few leaves, so a transaction stays small
/// and a kill loses little.
pub const DROP_ROWS: usize = 5_000;

/// Delete every level 0 row of the view counters (module docs); returns
/// how many were deleted.
pub(in crate::store) fn drop_level_0(db: &Database) -> Result<u64> {
    in_steps(
        db,
        "dropping the 17-minute view counters (schema 19)",
        |tx| drop_some(tx, DROP_ROWS),
    )
}

/// One bounded step in the caller's transaction: (rows deleted, none
/// left); None if there was nothing to delete.
pub(super) fn drop_some(tx: &WriteTransaction, max: usize) -> Result<Option<(u64, bool)>> {
    let mut arrays = tx.open_table(VIEW_ARRAYS).context("open view counters")?;
    let level = (DROPPED, 0u32, i64::MIN)..=(DROPPED, u32::MAX, i64::MAX);
    let mut keys = Vec::new();
    for row in arrays
        .range(level)
        .context("read view counters")?
        .take(max.saturating_add(1))
    {
        keys.push(row.context("read view counters")?.0.value());
    }
    if keys.is_empty() {
        return Ok(None);
    }
    let done = keys.len() <= max;
    keys.truncate(max);
    for key in &keys {
        arrays.remove(key).context("write view counters")?;
    }
    Ok(Some((keys.len() as u64, done)))
}
