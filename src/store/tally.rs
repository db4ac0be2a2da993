//! The view counters (`super::counters`, `super::rank`) as one write
//! transaction changes them: each row read at most once and written at
//! most once.
//!
//! Why: every mail of a fetched batch is counted in the same five scopes,
//! and mostly in the same few date buckets, so counting mail by mail read,
//! decoded, re-encoded and rewrote the same child arrays and bucket rows
//! once per mail (about 30 row writes per mail). [`Tally`] applies the
//! same steps in the same order to copies in memory and writes each
//! changed row once in [`Tally::flush`]. A count is the same whichever
//! way it got there, so the rows are the same as counting one by one.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use redb::{ReadableTable, Table, WriteTransaction};

use super::counters::{decode, encode, Children, FANOUT};
use super::schema::{BUCKETS, VIEW_COUNTS};
use crate::error::Context;
use crate::error::Result;

/// A counter row's key: (level, scope, bucket).
type Key = (u8, String, i64);

/// The counter tables of one write transaction, cached (module docs).
pub(super) struct Tally<'tx> {
    buckets: Table<'tx, (u8, &'static str, i64), u64>,
    arrays: Table<'tx, (u8, &'static str, i64), &'static [u8]>,
    /// Bucket rows read or changed: (count as stored, count now); 0 is no row.
    totals: HashMap<Key, (u64, u64)>,
    /// Child arrays read or changed: (changed, counts now).
    children: HashMap<Key, (bool, Children)>,
}

impl<'tx> Tally<'tx> {
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<Tally<'tx>> {
        Ok(Tally {
            buckets: tx.open_table(BUCKETS).context("open view counters")?,
            arrays: tx.open_table(VIEW_COUNTS).context("open view counters")?,
            totals: HashMap::new(),
            children: HashMap::new(),
        })
    }

    /// Count one entry in (or out of) the bucket row `(level, scope, b)`;
    /// a count that drops to zero removes the row.
    pub(super) fn bucket(&mut self, level: u8, scope: &str, b: i64, present: bool) -> Result<()> {
        let key = (level, scope.to_string(), b);
        let entry = match self.totals.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let n = self
                    .buckets
                    .get((level, scope, b))
                    .context("read view counters")?
                    .map_or(0, |g| g.value());
                e.insert((n, n))
            }
        };
        let n = entry.1;
        entry.1 = match present {
            true => n.saturating_add(1),
            false if n <= 1 => 0,
            false => n - 1,
        };
        Ok(())
    }

    /// Count one entry in (or out of) `slot` of the child array
    /// `(level, scope, parent)`; an all-zero array removes the row.
    pub(super) fn child(
        &mut self,
        level: u8,
        scope: &str,
        parent: i64,
        slot: usize,
        present: bool,
    ) -> Result<()> {
        let key = (level, scope.to_string(), parent);
        let entry = match self.children.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let c = match self
                    .arrays
                    .get((level, scope, parent))
                    .context("read view counters")?
                {
                    Some(g) => decode(g.value())?,
                    None => [0; FANOUT],
                };
                e.insert((false, c))
            }
        };
        if let Some(n) = entry.1.get_mut(slot) {
            *n = match present {
                true => n.saturating_add(1),
                false => n.saturating_sub(1),
            };
            entry.0 = true;
        }
        Ok(())
    }

    /// Write every changed row, in key order, and forget them all.
    pub(super) fn flush(&mut self) -> Result<()> {
        let mut totals: Vec<(Key, (u64, u64))> = self.totals.drain().collect();
        totals.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for ((level, scope, b), (was, now)) in totals {
            let key = (level, scope.as_str(), b);
            if now == was {
                continue;
            }
            if now == 0 {
                self.buckets.remove(key).context("write view counters")?;
            } else {
                self.buckets
                    .insert(key, now)
                    .context("write view counters")?;
            }
        }
        let mut children: Vec<(Key, (bool, Children))> = self.children.drain().collect();
        children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for ((level, scope, parent), (changed, c)) in children {
            let key = (level, scope.as_str(), parent);
            if !changed {
                continue;
            }
            if c.iter().all(|n| *n == 0) {
                self.arrays.remove(key).context("write view counters")?;
            } else {
                self.arrays
                    .insert(key, encode(&c).as_slice())
                    .context("write view counters")?;
            }
        }
        Ok(())
    }
}
