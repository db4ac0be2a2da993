//! The numbered view lists of one write transaction: the entries of each
//! scope under its number (`super::chunks`, schema 16) and the counters
//! that rank them ([`VIEW_TOTALS`], [`VIEW_ARRAYS`]).
//!
//! The counters change only for an entry that was really filed or
//! removed, so they can never drift from the entries, whatever a caller
//! repeats. They count an entry in either table of `super::chunks`, so the
//! move of schema 14's rows into chunks (`super::rechunk`) leaves them as
//! they are.
//!
//! Every call notes the wanted state of its entries per scope; opened with
//! [`Lists::batch`] (a fetched batch), the notes are written by
//! [`Lists::flush`] only: the mails of one batch land in the same five
//! scopes, mostly in the newest chunk and the same date buckets, so each
//! chunk and counter row is read and written once per batch instead of
//! once per mail. The last wanted state of an entry decides, and the
//! counter changes add up, so the counts are the same as when each call
//! writes its own.

use std::collections::BTreeMap;

use redb::{Table, WriteTransaction};

use super::chunks::Chunks;
use super::scopes::Numbers;
use super::tally::{apply_ids, Tally};
use crate::error::{Context, Result};
use crate::store::deltas::Pos;
use crate::store::schema::{VIEW_ARRAYS, VIEW_TOTALS};

pub(super) struct Lists<'tx> {
    numbers: Numbers<'tx>,
    chunks: Chunks<'tx>,
    totals: Table<'tx, (u8, u32, i64), u64>,
    arrays: Table<'tx, (u8, u32, i64), &'static [u8]>,
    /// Wanted states of entries not written yet (true: filed), per scope.
    pending: BTreeMap<u32, BTreeMap<Pos, bool>>,
    /// Write only at [`Lists::flush`].
    batch: bool,
    /// Count the changes (false only for the move of entries that the
    /// counters already count, `super::rechunk`).
    counting: bool,
}

impl<'tx> Lists<'tx> {
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<Lists<'tx>> {
        Ok(Lists {
            numbers: Numbers::open(tx)?,
            chunks: Chunks::open(tx)?,
            totals: tx.open_table(VIEW_TOTALS).context("open view counters")?,
            arrays: tx.open_table(VIEW_ARRAYS).context("open view counters")?,
            pending: BTreeMap::new(),
            batch: false,
            counting: true,
        })
    }

    /// Like [`Lists::open`], but the entries and counters wait for
    /// [`Lists::flush`], which must come before the commit.
    pub(super) fn batch(tx: &'tx WriteTransaction) -> Result<Lists<'tx>> {
        let mut lists = Lists::open(tx)?;
        lists.batch = true;
        Ok(lists)
    }

    /// Write what was noted: the entries, then the counters of what
    /// really changed.
    pub(super) fn flush(&mut self) -> Result<()> {
        for (scope, changes) in std::mem::take(&mut self.pending) {
            let mut tally = Tally::default();
            self.chunks
                .apply(scope, &changes, |date, by| tally.count(date, by))?;
            if self.counting {
                apply_ids(&mut self.totals, &mut self.arrays, scope, &tally)?;
            }
        }
        Ok(())
    }

    fn settle(&mut self) -> Result<()> {
        if self.batch {
            return Ok(());
        }
        self.flush()
    }

    /// File `(date, id)` entries under the scope `key` (numbered now if it
    /// has no number yet).
    pub(super) fn add(&mut self, key: &str, entries: &[Pos]) -> Result<()> {
        let scope = self.numbers.assign(key)?;
        let wanted = self.pending.entry(scope).or_default();
        for &pos in entries {
            wanted.insert(pos, true);
        }
        self.settle()
    }

    /// Remove one entry; false if the scope has no such entry here.
    pub(super) fn remove(&mut self, key: &str, date: i64, id: u64) -> Result<bool> {
        let Some(scope) = self.numbers.find(key)? else {
            return Ok(false);
        };
        let noted = self.pending.get(&scope).and_then(|w| w.get(&(date, id)));
        let present = match noted {
            Some(&w) => w,
            None => self.chunks.contains(scope, (date, id))?,
        };
        if !present {
            return Ok(false);
        }
        let wanted = self.pending.entry(scope).or_default();
        wanted.insert((date, id), false);
        self.settle()?;
        Ok(true)
    }

    /// Ids of the entries of every scope whose key starts with `prefix`
    /// and passes `keep`, scope by scope in key order.
    pub(super) fn ids_under(
        &mut self,
        prefix: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<u64>> {
        self.flush()?;
        let mut out = Vec::new();
        for (key, scope) in self.numbers.with_prefix(prefix)? {
            if keep(&key) {
                self.chunks.ids(scope, &mut out)?;
            }
        }
        Ok(out)
    }

    /// Move up to `max` entries of schema 14's table into chunks (the
    /// counters already count them); (entries moved, none left).
    pub(super) fn move_old(tx: &'tx WriteTransaction, max: usize) -> Result<(u64, bool)> {
        let mut lists = Lists::batch(tx)?;
        lists.counting = false;
        let (taken, empty) = lists.chunks.take_old(max)?;
        for &(scope, pos) in &taken {
            lists.pending.entry(scope).or_default().insert(pos, true);
        }
        lists.flush()?;
        Ok((taken.len() as u64, empty))
    }
}
