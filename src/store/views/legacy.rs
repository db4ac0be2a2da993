//! Schema 12's view lists, keyed by the scope key itself ([`VIEW_INDEX`],
//! [`BUCKETS`], [`VIEW_COUNTS`]), in one write transaction while their
//! move to the numbered lists is pending (`super::pack`).
//!
//! Rows leave these tables only together with their counters, so the
//! entries left here and their counts stay exact at every commit and a
//! read can take the union of both places (`super::scopes::Scope`).

use redb::{ReadableTable, ReadableTableMetadata, Table, WriteTransaction};

use super::scopes::legacy_in;
use super::tally::{apply_keys, Tally};
use crate::error::{Context, Result};
use crate::store::schema::{BUCKETS, VIEW_COUNTS, VIEW_INDEX};

pub(super) struct Legacy<'tx> {
    index: Table<'tx, (&'static str, i64, u64), ()>,
    totals: Table<'tx, (u8, &'static str, i64), u64>,
    arrays: Table<'tx, (u8, &'static str, i64), &'static [u8]>,
}

/// Old entries taken out of the old tables: (scope key, [(date, id)]).
pub(super) type Taken = Vec<(String, Vec<(i64, u64)>)>;

impl<'tx> Legacy<'tx> {
    /// The old tables, None once the move has dropped them. Never creates
    /// them (opening a table in a write transaction would).
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<Option<Legacy<'tx>>> {
        if !legacy_in(tx)? {
            return Ok(None);
        }
        Ok(Some(Legacy {
            index: tx.open_table(VIEW_INDEX).context("open old view index")?,
            totals: tx.open_table(BUCKETS).context("open old view counters")?,
            arrays: tx
                .open_table(VIEW_COUNTS)
                .context("open old view counters")?,
        }))
    }

    pub(super) fn contains(&self, key: &str, date: i64, id: u64) -> Result<bool> {
        let found = self.index.get((key, date, id));
        Ok(found.context("read old view index")?.is_some())
    }

    /// Remove one entry and count it out; false if it is not here.
    pub(super) fn remove(&mut self, key: &str, date: i64, id: u64) -> Result<bool> {
        let old = self.index.remove((key, date, id));
        if old.context("write old view index")?.is_none() {
            return Ok(false);
        }
        let mut tally = Tally::default();
        tally.count(date, -1);
        apply_keys(&mut self.totals, &mut self.arrays, key, &tally)?;
        Ok(true)
    }

    /// Ids of the entries of every scope whose key starts with `prefix`
    /// and passes `keep`.
    pub(super) fn ids_under(&self, prefix: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        let rows = self.index.range((prefix, i64::MIN, 0u64)..);
        for row in rows.context("read old view index")? {
            let (k, _) = row.context("read old view index")?;
            let (key, _, id) = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            if keep(key) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Take up to `max` of the first entries out of the old tables, their
    /// counters with them; also whether none are left.
    pub(super) fn take(&mut self, max: usize) -> Result<(Taken, bool)> {
        let mut taken: Taken = Vec::new();
        let mut n = 0;
        while n < max {
            let Some((k, _)) = self.index.pop_first().context("read old view index")? else {
                break;
            };
            let (key, date, id) = k.value();
            match taken.last_mut() {
                Some((last, entries)) if last == key => entries.push((date, id)),
                _ => taken.push((key.to_string(), vec![(date, id)])),
            }
            n += 1;
        }
        for (key, entries) in &taken {
            let mut tally = Tally::default();
            for (date, _) in entries {
                tally.count(*date, -1);
            }
            apply_keys(&mut self.totals, &mut self.arrays, key, &tally)?;
        }
        let empty = self.index.is_empty().context("read old view index")?;
        Ok((taken, empty))
    }
}
