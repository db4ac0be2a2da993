//! Order statistics over view scopes: exact counts and "the N-th newest
//! entry" without reading N entries.
//!
//! Every scope entry `(date, id)` is counted in one bucket per level:
//! level `l < TOP` groups dates by `date >> SHIFTS[l]` (17 minutes, 9 hours,
//! 12 days, 1 year, 34 years), level `TOP` is the scope's total. A parent
//! bucket holds at most 32 child buckets, so counting the entries up to a
//! date reads at most 32 counters per level plus the entries of one
//! 17-minute bucket, and finding the r-th entry walks down the same way.
//! The cost is O(levels × 32 + entries in one finest bucket) per scope,
//! whatever the store holds; only mail that shares one 17-minute window in
//! one scope in large numbers (an import without Date headers) makes the
//! last step longer.

use std::collections::BTreeMap;

use redb::ReadOnlyTable;

use super::st;
use crate::error::Result;

/// Bucket widths (log2 seconds) of the levels below [`TOP`].
const SHIFTS: [u32; 5] = [10, 15, 20, 25, 30];
/// The level whose single bucket 0 holds the scope's total.
pub(super) const TOP: u8 = 5;
/// Number of levels, [`TOP`] included.
pub(super) const LEVELS: u8 = TOP + 1;

pub(super) type Index = ReadOnlyTable<(&'static str, i64, u64), ()>;
pub(super) type Buckets = ReadOnlyTable<(u8, &'static str, i64), u64>;

/// An index position: (date, id).
pub(super) type Pos = (i64, u64);

/// The bucket of `date` at `level`.
pub(super) fn bucket(level: u8, date: i64) -> i64 {
    match SHIFTS.get(usize::from(level)) {
        Some(s) => date >> s,
        None => 0,
    }
}

/// log2 of the number of `level` buckets in one bucket of `level + 1`.
fn width(level: u8) -> u32 {
    let l = usize::from(level);
    SHIFTS[l + 1] - SHIFTS[l]
}

/// Sum of the counters of `scope` at `level` for buckets in `lo..=hi`.
fn sum(b: &Buckets, level: u8, scope: &str, lo: i64, hi: i64) -> Result<u64> {
    if lo > hi {
        return Ok(0);
    }
    let mut n = 0u64;
    for row in b
        .range((level, scope, lo)..=(level, scope, hi))
        .map_err(st("read view counters"))?
    {
        n = n.saturating_add(row.map_err(st("read view counters"))?.1.value());
    }
    Ok(n)
}

/// Entries of the scope, all dates.
pub(super) fn total(b: &Buckets, scope: &str) -> Result<u64> {
    Ok(b.get((TOP, scope, 0))
        .map_err(st("read view counters"))?
        .map_or(0, |g| g.value()))
}

/// Entries of the scope with `date <= x`.
pub(super) fn prefix(ix: &Index, b: &Buckets, scope: &str, x: i64) -> Result<u64> {
    // Whole buckets of the coarsest level before x's, then, level by level,
    // whole buckets before x's inside x's parent bucket.
    let mut n = sum(b, TOP - 1, scope, i64::MIN, bucket(TOP - 1, x) - 1)?;
    for level in (0..TOP - 1).rev() {
        let first = bucket(level + 1, x) << width(level);
        n = n.saturating_add(sum(b, level, scope, first, bucket(level, x) - 1)?);
    }
    let start = bucket(0, x) << SHIFTS[0];
    let rows = ix
        .range((scope, start, 0u64)..=(scope, x, u64::MAX))
        .map_err(st("read view index"))?;
    Ok(n.saturating_add(rows.count() as u64))
}

/// Entries of the union of `scopes` with `since <= date <= until`.
pub(super) fn count_between(
    ix: &Index,
    b: &Buckets,
    scopes: &[String],
    since: Option<i64>,
    until: Option<i64>,
) -> Result<u64> {
    let mut n = 0u64;
    for s in scopes {
        let upto = match until {
            None => total(b, s)?,
            Some(u) => prefix(ix, b, s, u)?,
        };
        let before = match since.and_then(|t| t.checked_sub(1)) {
            None => 0,
            Some(t) => prefix(ix, b, s, t)?,
        };
        n = n.saturating_add(upto.saturating_sub(before));
    }
    Ok(n)
}

/// The entry with 0-based rank `r` in ascending (date, id) order over the
/// union of `scopes`; None if there are not that many.
pub(super) fn select(ix: &Index, b: &Buckets, scopes: &[String], r: u64) -> Result<Option<Pos>> {
    let mut r = r;
    let mut parent: Option<i64> = None;
    for level in (0..TOP).rev() {
        let (lo, hi) = match parent {
            None => (i64::MIN, i64::MAX),
            Some(p) => {
                let w = width(level);
                (p << w, (p << w) | ((1 << w) - 1))
            }
        };
        let mut sums: BTreeMap<i64, u64> = BTreeMap::new();
        for s in scopes {
            for row in b
                .range((level, s.as_str(), lo)..=(level, s.as_str(), hi))
                .map_err(st("read view counters"))?
            {
                let (k, v) = row.map_err(st("read view counters"))?;
                *sums.entry(k.value().2).or_default() += v.value();
            }
        }
        let mut chosen = None;
        for (bk, n) in sums {
            if r < n {
                chosen = Some(bk);
                break;
            }
            r -= n;
        }
        match chosen {
            Some(bk) => parent = Some(bk),
            None => return Ok(None),
        }
    }
    let Some(p) = parent else { return Ok(None) };
    let (lo, hi) = (p << SHIFTS[0], (p << SHIFTS[0]) | ((1 << SHIFTS[0]) - 1));
    let mut entries = Vec::new();
    for s in scopes {
        for row in ix
            .range((s.as_str(), lo, 0u64)..=(s.as_str(), hi, u64::MAX))
            .map_err(st("read view index"))?
        {
            let (k, _) = row.map_err(st("read view index"))?;
            let (_, date, id) = k.value();
            entries.push((date, id));
        }
    }
    entries.sort_unstable();
    Ok(usize::try_from(r)
        .ok()
        .and_then(|i| entries.get(i).copied()))
}

/// Newest-first merge of several scopes, starting at `start` (inclusive)
/// and stopping below `since`. A message is in at most one of the scopes a
/// view merges, so no entry is seen twice.
pub(super) struct Merge {
    heads: Vec<Option<Pos>>,
    iters: Vec<redb::Range<'static, (&'static str, i64, u64), ()>>,
    since: i64,
}

impl Merge {
    pub(super) fn new(ix: &Index, scopes: &[String], start: Pos, since: i64) -> Result<Merge> {
        let mut m = Merge {
            heads: Vec::new(),
            iters: Vec::new(),
            since,
        };
        if since > start.0 {
            return Ok(m);
        }
        for s in scopes {
            let it = ix
                .range((s.as_str(), since, 0u64)..=(s.as_str(), start.0, start.1))
                .map_err(st("read view index"))?;
            m.iters.push(it);
            m.heads.push(None);
        }
        for i in 0..m.iters.len() {
            m.advance(i)?;
        }
        Ok(m)
    }

    fn advance(&mut self, i: usize) -> Result<()> {
        self.heads[i] = match self.iters[i].next_back() {
            None => None,
            Some(row) => {
                let (k, _) = row.map_err(st("read view index"))?;
                let (_, date, id) = k.value();
                Some((date, id)).filter(|p| p.0 >= self.since)
            }
        };
        Ok(())
    }

    /// The next entry, newest first.
    pub(super) fn next_pos(&mut self) -> Result<Option<Pos>> {
        let best = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|p| (p, i)))
            .max();
        match best {
            None => Ok(None),
            Some((p, i)) => {
                self.advance(i)?;
                Ok(Some(p))
            }
        }
    }
}
