//! The numbered view lists of one write transaction (schema 14): the
//! entries of each scope under its number ([`VIEW_ENTRIES`]) and the
//! counters that rank them ([`VIEW_TOTALS`], [`VIEW_ARRAYS`]).
//!
//! The counters change only for an entry that was really inserted or
//! removed, so they can never drift from the entries, whatever a caller
//! repeats.
//!
//! Opened with [`Lists::batch`] (a fetched batch), the counter changes of
//! every call are gathered per scope and written by [`Lists::flush`]: the
//! mails of one batch land in the same five scopes and mostly the same
//! date buckets, so each counter row is then read and written once per
//! batch instead of once per mail. Counter changes add up, so the rows are
//! the same as when each call writes its own.

use std::collections::BTreeMap;

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
    /// With [`Lists::batch`]: the counter changes not written yet.
    pending: Option<BTreeMap<u32, Tally>>,
}

impl<'tx> Lists<'tx> {
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<Lists<'tx>> {
        Ok(Lists {
            numbers: Numbers::open(tx)?,
            entries: tx.open_table(VIEW_ENTRIES).context("open view index")?,
            totals: tx.open_table(VIEW_TOTALS).context("open view counters")?,
            arrays: tx.open_table(VIEW_ARRAYS).context("open view counters")?,
            pending: None,
        })
    }

    /// Like [`Lists::open`], but the counters wait for [`Lists::flush`],
    /// which must come before the commit.
    pub(super) fn batch(tx: &'tx WriteTransaction) -> Result<Lists<'tx>> {
        let mut lists = Lists::open(tx)?;
        lists.pending = Some(BTreeMap::new());
        Ok(lists)
    }

    /// Write the counter changes [`Lists::batch`] kept back.
    pub(super) fn flush(&mut self) -> Result<()> {
        let Some(pending) = self.pending.as_mut() else {
            return Ok(());
        };
        for (scope, tally) in std::mem::take(pending) {
            apply_ids(&mut self.totals, &mut self.arrays, scope, &tally)?;
        }
        Ok(())
    }

    /// Count `tally` in for `scope`: at once, or with the batch.
    fn settle(&mut self, scope: u32, tally: Tally) -> Result<()> {
        match self.pending.as_mut() {
            Some(pending) => {
                pending.entry(scope).or_default().merge(&tally);
                Ok(())
            }
            None => apply_ids(&mut self.totals, &mut self.arrays, scope, &tally),
        }
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
        self.settle(scope, tally)?;
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
        self.settle(scope, tally)?;
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
