//! The on-disk form of the view counters of [`super::rank`].
//!
//! Levels below [`ARRAY_LEVELS`] are stored as *child arrays*: one row per
//! parent bucket, `(level, scope, parent bucket at level + 1)`, whose value
//! holds the counts of its 32 child buckets at `level`. Reading the 32
//! counts that a rank walk needs at one level is then one B-tree lookup
//! instead of a range of up to 32 rows, so a deep page of a store with a
//! million mails reads about as many pages as one of ten thousand (schema
//! 2 kept one row per bucket, and dense scopes made each step a long range).
//! The two coarsest levels (34-year buckets and the scope total) stay one
//! `u64` row per bucket in [`VIEW_TOTALS`]: they are few and unbounded (no
//! parent limits the 34-year buckets).
//! Since schema 19 the finest array level is 1 (9-hour buckets in the
//! arrays of 12-day parents); level 0 rows of older stores are deleted at
//! open (`super::views::finest`) and never asked for.
//!
//! Rows are keyed by the scope's number (schema 14, `super::views::scopes`);
//! schema 12's rows in [`BUCKETS`] and [`VIEW_COUNTS`], keyed by the scope
//! key, are read the same way until their move is done.
//!
//! A child array is encoded sparsely, because most parents of a small scope
//! have one or two busy children: for each non-zero child in ascending
//! order, its slot (one byte, 0–31) and its count (LEB128). An all-zero
//! array is never stored (the row is removed).

use redb::{ReadOnlyTable, ReadTransaction, TableError};

use super::schema::{BUCKETS, VIEW_ARRAYS, VIEW_COUNTS, VIEW_TOTALS};
use super::views::scopes::Scope;
use crate::error::Context;
use crate::error::{Error, Result};

/// Children per parent bucket (the rank levels are 2^5 apart).
pub(super) const FANOUT: usize = 32;
/// Levels `0..ARRAY_LEVELS` are stored as child arrays, the others as rows
/// of [`VIEW_TOTALS`].
pub(super) const ARRAY_LEVELS: u8 = 4;

/// The counts of one parent's children, by slot.
pub(super) type Children = [u64; FANOUT];

type Totals = ReadOnlyTable<(u8, u32, i64), u64>;
type Arrays = ReadOnlyTable<(u8, u32, i64), &'static [u8]>;
type OldTotals = ReadOnlyTable<(u8, &'static str, i64), u64>;
type OldArrays = ReadOnlyTable<(u8, &'static str, i64), &'static [u8]>;

/// The counter tables of one read transaction: the numbered scopes', and
/// schema 12's while the move of its rows is pending (`super::views::pack`).
pub(super) struct Counters {
    totals: Totals,
    arrays: Arrays,
    legacy: Option<(OldTotals, OldArrays)>,
}

impl Counters {
    pub(super) fn open(tx: &ReadTransaction) -> Result<Counters> {
        let legacy = match tx.open_table(BUCKETS) {
            Ok(t) => Some((t, tx.open_table(VIEW_COUNTS).context("open view counters")?)),
            Err(TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e).context("open view counters"),
        };
        Ok(Counters {
            totals: tx.open_table(VIEW_TOTALS).context("open view counters")?,
            arrays: tx.open_table(VIEW_ARRAYS).context("open view counters")?,
            legacy,
        })
    }

    /// The children of `parent` (a bucket at `level + 1`) in `scope`.
    pub(super) fn children(&self, level: u8, scope: &Scope, parent: i64) -> Result<Children> {
        let found = match (scope, &self.legacy) {
            (Scope::Id(s), _) => self.arrays.get((level, *s, parent)),
            (Scope::Legacy(s), Some((_, arrays))) => arrays.get((level, s.as_str(), parent)),
            (Scope::Legacy(_), None) => return Ok([0; FANOUT]),
        };
        match found.context("read view counters")? {
            Some(g) => decode(g.value()),
            None => Ok([0; FANOUT]),
        }
    }

    /// The `(bucket, count)` rows of `scope` at `level` (one of the levels
    /// from [`ARRAY_LEVELS`] up) for buckets in `lo..=hi`, ascending.
    pub(super) fn rows(
        &self,
        level: u8,
        scope: &Scope,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<(i64, u64)>> {
        let mut out = Vec::new();
        if lo > hi {
            return Ok(out);
        }
        match (scope, &self.legacy) {
            (Scope::Id(s), _) => {
                let rows = self.totals.range((level, *s, lo)..=(level, *s, hi));
                for row in rows.context("read view counters")? {
                    let (k, v) = row.context("read view counters")?;
                    out.push((k.value().2, v.value()));
                }
            }
            (Scope::Legacy(s), Some((totals, _))) => {
                let rows = totals.range((level, s.as_str(), lo)..=(level, s.as_str(), hi));
                for row in rows.context("read view counters")? {
                    let (k, v) = row.context("read view counters")?;
                    out.push((k.value().2, v.value()));
                }
            }
            (Scope::Legacy(_), None) => {}
        }
        Ok(out)
    }

    /// Keys of schema 12's scopes that start with `prefix` and still hold
    /// entries in the old tables (none once they are moved).
    pub(super) fn legacy_keys(&self, top: u8, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let Some((totals, _)) = &self.legacy else {
            return Ok(out);
        };
        for row in totals
            .range((top, prefix, 0i64)..)
            .context("read view counters")?
        {
            let (k, _) = row.context("read view counters")?;
            let (level, scope, _) = k.value();
            if level != top || !scope.starts_with(prefix) {
                break;
            }
            out.push(scope.to_string());
        }
        Ok(out)
    }
}

/// Sparse encoding (module docs).
pub(super) fn encode(children: &Children) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    for (slot, &n) in children.iter().enumerate() {
        if n == 0 {
            continue;
        }
        out.push(slot as u8);
        let mut v = n;
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    out
}

/// Inverse of [`encode`]; a malformed value is a storage error, never a
/// silently wrong count.
pub(super) fn decode(bytes: &[u8]) -> Result<Children> {
    let bad = || Error::storage_msg("the view counters are damaged (bad child array)".into());
    let mut out = [0u64; FANOUT];
    let mut it = bytes.iter();
    while let Some(&slot) = it.next() {
        let cell = out.get_mut(usize::from(slot)).ok_or_else(bad)?;
        let mut n = 0u64;
        let mut shift = 0u32;
        loop {
            let &b = it.next().ok_or_else(bad)?;
            if shift > 63 {
                return Err(bad());
            }
            n |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        *cell = n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_arrays_round_trip_sparse_and_large_counts() {
        let mut c = [0u64; FANOUT];
        assert!(encode(&c).is_empty());
        assert_eq!(decode(&[]).unwrap(), c);
        c[0] = 1;
        c[7] = 127;
        c[8] = 128;
        c[31] = u64::MAX;
        let e = encode(&c);
        assert_eq!(&e[..4], &[0, 1, 7, 127]);
        assert_eq!(decode(&e).unwrap(), c);
    }

    #[test]
    fn damaged_child_arrays_are_errors() {
        assert!(decode(&[32, 1]).is_err(), "slot out of range");
        assert!(decode(&[3]).is_err(), "count missing");
        assert!(decode(&[3, 0x80]).is_err(), "count cut short");
        assert!(
            decode(&[3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1]).is_err()
        );
    }
}
