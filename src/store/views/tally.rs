//! Changes to one scope's order-statistic counters (`super::super::rank`,
//! stored as `super::super::counters` describes), gathered first and
//! written once per counter row.
//!
//! One entry touches one row per counted level, from [`FINEST`] up
//! (schema 19 stopped counting level 0, in the numbered tables and in
//! schema 12's alike). The move of schema 12's rows (`super::pack`)
//! moves thousands of entries of a scope at a time, mostly of
//! neighbouring dates, so gathering the changes first writes each counter
//! row once per batch instead of once per entry. The same code keeps the
//! counters of the numbered scopes and, while that move is pending, of
//! the old scope keys, so both stay exact at every commit.

use std::collections::BTreeMap;

use redb::{ReadableTable, Table};

use crate::error::{Context, Result};
use crate::store::counters::{decode, encode, ARRAY_LEVELS, FANOUT};
use crate::store::rank::{bucket, slot, FINEST, LEVELS};

/// Counter changes of one scope (module docs).
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// (level, bucket) -> change, for the levels kept as one row each.
    rows: BTreeMap<(u8, i64), i64>,
    /// (level, parent bucket) -> change of each child, for the levels kept
    /// as child arrays.
    arrays: BTreeMap<(u8, i64), [i64; FANOUT]>,
}

impl Tally {
    /// Count an entry of `date` in (`by` 1) or out (`by` -1).
    pub(super) fn count(&mut self, date: i64, by: i64) {
        for level in FINEST..ARRAY_LEVELS {
            let key = (level, bucket(level + 1, date));
            let children = self.arrays.entry(key).or_insert([0; FANOUT]);
            if let Some(n) = children.get_mut(slot(level, date)) {
                *n += by;
            }
        }
        for level in ARRAY_LEVELS..LEVELS {
            *self.rows.entry((level, bucket(level, date))).or_default() += by;
        }
    }
}

/// `n` changed by `by`, never below zero: an entry already absent changes
/// nothing (the callers only count entries they inserted or removed).
fn add(n: u64, by: i64) -> u64 {
    if by >= 0 {
        n.saturating_add(by.unsigned_abs())
    } else {
        n.saturating_sub(by.unsigned_abs())
    }
}

/// Writes a [`Tally`] into a pair of counter tables whose keys hold the
/// scope as `$key` (a number, or schema 12's scope key). A row that drops
/// to zero (an array of all zeros) is removed, as the readers expect.
macro_rules! apply {
    ($name:ident, $table_key:ty, $key:ty) => {
        pub(super) fn $name(
            totals: &mut Table<'_, (u8, $table_key, i64), u64>,
            arrays: &mut Table<'_, (u8, $table_key, i64), &'static [u8]>,
            scope: $key,
            t: &Tally,
        ) -> Result<()> {
            for (&(level, b), &by) in &t.rows {
                if by == 0 {
                    continue;
                }
                let key = (level, scope, b);
                let n = totals
                    .get(key)
                    .context("read view counters")?
                    .map_or(0, |g| g.value());
                match add(n, by) {
                    0 => totals.remove(key).map(drop),
                    n => totals.insert(key, n).map(drop),
                }
                .context("write view counters")?;
            }
            for (&(level, parent), by) in &t.arrays {
                let key = (level, scope, parent);
                let mut children = match arrays.get(key).context("read view counters")? {
                    Some(g) => decode(g.value())?,
                    None => [0; FANOUT],
                };
                for (n, by) in children.iter_mut().zip(by) {
                    *n = add(*n, *by);
                }
                if children.iter().all(|n| *n == 0) {
                    arrays.remove(key).context("write view counters")?;
                } else {
                    arrays
                        .insert(key, encode(&children).as_slice())
                        .context("write view counters")?;
                }
            }
            Ok(())
        }
    };
}

apply!(apply_ids, u32, u32);
apply!(apply_keys, &'static str, &str);
