//! The numbered view lists of one write transaction (schema 13): the
//! entries of each scope under its number ([`VIEW_ENTRIES`]) and the
//! counters that rank them ([`VIEW_TOTALS`], [`VIEW_ARRAYS`]).
//!
//! The counters change only for an entry that was really inserted or
//! removed, so they can never drift from the entries, whatever a caller
//! repeats.

use redb::{ReadableTable, Table, WriteTransaction};

use super::scopes::Numbers;
use super::tally::{apply_ids, Tally};
use crate::error::{Context, Result};
use crate::store::schema::{VIEW_ARRAYS, VIEW_ENTRIES, VIEW_TOTALS};

pub(super) struct Lists<'tx> {
    numbers: Numbers<'tx>,
    entries: Table<'tx, (u32, i64, u64), ()>,
    totals: Table<'tx, (u8, u32, i64), u64>,
    arrays: Table<'tx, (u8, u32, i64), &'static [u8]>,
}

impl<'tx> Lists<'tx> {
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<Lists<'tx>> {
        Ok(Lists {
            numbers: Numbers::open(tx)?,
            entries: tx.open_table(VIEW_ENTRIES).context("open view index")?,
            totals: tx.open_table(VIEW_TOTALS).context("open view counters")?,
            arrays: tx.open_table(VIEW_ARRAYS).context("open view counters")?,
        })
    }

    /// File `(date, id)` entries under the scope `key` (numbered now if it
    /// has no number yet); returns how many were not there before.
    pub(super) fn add(&mut self, key: &str, entries: &[(i64, u64)]) -> Result<u64> {
        let scope = self.numbers.assign(key)?;
        let mut tally = Tally::default();
        let mut added = 0;
        for &(date, id) in entries {
            let old = self.entries.insert((scope, date, id), ());
            if old.context("write view index")?.is_none() {
                tally.count(date, 1);
                added += 1;
            }
        }
        apply_ids(&mut self.totals, &mut self.arrays, scope, &tally)?;
        Ok(added)
    }

    /// Remove one entry; false if the scope has no such entry here.
    pub(super) fn remove(&mut self, key: &str, date: i64, id: u64) -> Result<bool> {
        let Some(scope) = self.numbers.find(key)? else {
            return Ok(false);
        };
        let old = self.entries.remove((scope, date, id));
        if old.context("write view index")?.is_none() {
            return Ok(false);
        }
        let mut tally = Tally::default();
        tally.count(date, -1);
        apply_ids(&mut self.totals, &mut self.arrays, scope, &tally)?;
        Ok(true)
    }

    /// Ids of the entries of every scope whose key starts with `prefix`
    /// and passes `keep`, scope by scope in key order.
    pub(super) fn ids_under(&self, prefix: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        for (key, scope) in self.numbers.with_prefix(prefix)? {
            if !keep(&key) {
                continue;
            }
            let rows = self
                .entries
                .range((scope, i64::MIN, 0u64)..=(scope, i64::MAX, u64::MAX))
                .context("read view index")?;
            for row in rows {
                out.push(row.context("read view index")?.0.value().2);
            }
        }
        Ok(out)
    }
}
