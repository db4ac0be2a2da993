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
//! `u64` row per bucket in [`BUCKETS`]: they are few, unbounded (no parent
//! limits the 34-year buckets) and read by prefix scans for totals.
//!
//! A child array is encoded sparsely, because most parents of a small scope
//! have one or two busy children: for each non-zero child in ascending
//! order, its slot (one byte, 0–31) and its count (LEB128). An all-zero
//! array is never stored (the row is removed).

use redb::{ReadOnlyTable, ReadTransaction};

use super::schema::{BUCKETS, VIEW_COUNTS};
use crate::error::Context;
use crate::error::{Error, Result};

/// Children per parent bucket (the rank levels are 2^5 apart).
pub(super) const FANOUT: usize = 32;
/// Levels `0..ARRAY_LEVELS` are stored as child arrays, the others as rows
/// of [`BUCKETS`].
pub(super) const ARRAY_LEVELS: u8 = 4;

/// The counts of one parent's children, by slot.
pub(super) type Children = [u64; FANOUT];

pub(super) type Totals = ReadOnlyTable<(u8, &'static str, i64), u64>;
type Arrays = ReadOnlyTable<(u8, &'static str, i64), &'static [u8]>;

/// Both counter tables of one read transaction.
pub(super) struct Counters {
    /// Per-bucket rows of the levels from [`ARRAY_LEVELS`] up.
    pub(super) totals: Totals,
    arrays: Arrays,
}

impl Counters {
    pub(super) fn open(tx: &ReadTransaction) -> Result<Counters> {
        Ok(Counters {
            totals: tx.open_table(BUCKETS).context("open view counters")?,
            arrays: tx.open_table(VIEW_COUNTS).context("open view counters")?,
        })
    }

    /// The children of `parent` (a bucket at `level + 1`) in `scope`.
    pub(super) fn children(&self, level: u8, scope: &str, parent: i64) -> Result<Children> {
        match self
            .arrays
            .get((level, scope, parent))
            .context("read view counters")?
        {
            Some(g) => decode(g.value()),
            None => Ok([0; FANOUT]),
        }
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
