//! Order statistics over view scopes: exact counts and "the N-th newest
//! entry" without reading N entries.
//!
//! Every scope entry `(date, id)` is counted in one bucket per level:
//! level `l` from [`FINEST`] below [`TOP`] groups dates by
//! `date >> SHIFTS[l]` (9 hours, 12 days, 1 year, 34 years), level `TOP`
//! is the scope's total. A parent bucket holds 32 child buckets, stored
//! together as one child array ([`super::counters`]), so counting the
//! entries up to a date reads one array per level plus the entries of
//! one 9-hour bucket, and finding the r-th entry walks down the same way.
//! The cost is O(levels) B-tree lookups plus the entries of one finest
//! bucket per scope, whatever the store holds. The lists are packed in
//! chunks of up to 128 entries (`super::views::chunk`), so even the
//! busiest 9-hour bucket of a million-mail store (a few hundred entries
//! in a scope of all mail) is a few chunks to decode; only mail that
//! shares one 9-hour window in one scope in large numbers (an import
//! without Date headers) makes the last step longer.
//!
//! Schemas 3 to 17 also counted 17-minute buckets, as level 0: most of
//! the counter rows (a sparse scope has a row per busy 9-hour bucket),
//! for a last step that the chunks make cheap anyway. 12-day buckets as
//! the finest would make that step read thousands of entries in a dense
//! scope. Level numbers stay as stored (level 1 is the 9-hour level), so
//! schema 19 only deletes the level 0 rows (`super::views::finest`);
//! until that is done they are left unread.

use std::collections::BTreeMap;

use redb::{ReadOnlyTable, ReadTransaction, TableError};

use super::counters::{Counters, ARRAY_LEVELS, FANOUT};
use super::schema::{VIEW_CHUNKS, VIEW_ENTRIES, VIEW_INDEX};
use super::views::chunk;
use super::views::scopes::Scope;
use crate::error::Context;
use crate::error::Result;

/// Bucket widths (log2 seconds) of the levels below [`TOP`]; 5 bits apart,
/// so that a parent has [`FANOUT`] children. Level 0 (17 minutes) is no
/// longer counted (module docs); its width stays for the level numbers.
const SHIFTS: [u32; 5] = [10, 15, 20, 25, 30];
/// The finest level counted: 9-hour buckets.
pub(super) const FINEST: u8 = 1;
/// The level whose single bucket 0 holds the scope's total.
pub(super) const TOP: u8 = 5;
/// Number of levels, [`TOP`] included.
pub(super) const LEVELS: u8 = TOP + 1;
/// log2 of [`FANOUT`].
const WIDTH: u32 = 5;

pub(super) use super::deltas::Pos;

/// The view lists of one read transaction: the numbered scopes' chunks,
/// schema 14's one row per entry while their move into chunks is pending
/// (`super::views::rechunk`), and schema 12's while the move of its rows
/// is pending (`super::views::pack`).
pub(super) struct Index {
    chunks: ReadOnlyTable<(u32, i64, u64), &'static [u8]>,
    entries: Option<ReadOnlyTable<(u32, i64, u64), ()>>,
    legacy: Option<ReadOnlyTable<(&'static str, i64, u64), ()>>,
}

/// A table that may be gone (its move done).
fn maybe<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &ReadTransaction,
    def: redb::TableDefinition<K, V>,
) -> Result<Option<ReadOnlyTable<K, V>>> {
    match tx.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e).context("open view index"),
    }
}

/// One scope's entries from `lo` to `hi` in one table, read from either
/// end.
enum Rows {
    Chunks(Chunked),
    Ids(redb::Range<'static, (u32, i64, u64), ()>),
    Keys(redb::Range<'static, (&'static str, i64, u64), ()>),
}

/// The entries from `lo` to `hi` of a range of chunks, each chunk decoded
/// when the walk reaches it.
struct Chunked {
    rows: redb::Range<'static, (u32, i64, u64), &'static [u8]>,
    lo: Pos,
    hi: Pos,
    /// The entries of the chunk being walked, in range, ascending.
    buf: Vec<Pos>,
}

impl Chunked {
    fn decoded(&self, row: RawChunk) -> Result<Vec<Pos>> {
        let (k, v) = row.context("read view index")?;
        let (_, date, id) = k.value();
        let mut entries = chunk::decode((date, id), v.value())?;
        entries.retain(|p| *p >= self.lo && *p <= self.hi);
        Ok(entries)
    }

    fn next_back(&mut self) -> Option<Result<Pos>> {
        loop {
            if let Some(p) = self.buf.pop() {
                return Some(Ok(p));
            }
            let row = self.rows.next_back()?;
            match self.decoded(row) {
                Ok(entries) => self.buf = entries,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn count(mut self) -> Result<u64> {
        let mut n = self.buf.len() as u64;
        while let Some(row) = self.rows.next() {
            n += self.decoded(row)?.len() as u64;
        }
        Ok(n)
    }
}

type RawChunk = std::result::Result<
    (
        redb::AccessGuard<'static, (u32, i64, u64)>,
        redb::AccessGuard<'static, &'static [u8]>,
    ),
    redb::StorageError,
>;

impl Rows {
    fn next_back(&mut self) -> Option<Result<Pos>> {
        match self {
            Rows::Chunks(c) => c.next_back(),
            Rows::Ids(r) => r.next_back().map(|row| {
                let (k, _) = row.context("read view index")?;
                let (_, date, id) = k.value();
                Ok((date, id))
            }),
            Rows::Keys(r) => r.next_back().map(|row| {
                let (k, _) = row.context("read view index")?;
                let (_, date, id) = k.value();
                Ok((date, id))
            }),
        }
    }

    fn count(self) -> Result<u64> {
        match self {
            Rows::Chunks(c) => c.count(),
            Rows::Ids(r) => Ok(r.count() as u64),
            Rows::Keys(r) => Ok(r.count() as u64),
        }
    }
}

impl Index {
    pub(super) fn open(tx: &ReadTransaction) -> Result<Index> {
        Ok(Index {
            chunks: tx.open_table(VIEW_CHUNKS).context("open view index")?,
            entries: maybe(tx, VIEW_ENTRIES)?,
            legacy: maybe(tx, VIEW_INDEX)?,
        })
    }

    /// The entries of `scope` from `lo` to `hi`, both included, one
    /// [`Rows`] per table that may hold some.
    fn range(&self, scope: &Scope, lo: Pos, hi: Pos) -> Result<Vec<Rows>> {
        let mut out = Vec::new();
        if lo > hi {
            return Ok(out);
        }
        match (scope, &self.legacy) {
            (Scope::Id(s), _) => {
                // The chunk holding `lo` starts at or before it.
                let below = self.chunks.range((*s, i64::MIN, 0)..=(*s, lo.0, lo.1));
                let from = match below.context("read view index")?.next_back() {
                    Some(row) => row.context("read view index")?.0.value(),
                    None => (*s, lo.0, lo.1),
                };
                let rows = self.chunks.range(from..=(*s, hi.0, hi.1));
                out.push(Rows::Chunks(Chunked {
                    rows: rows.context("read view index")?,
                    lo,
                    hi,
                    buf: Vec::new(),
                }));
                if let Some(t) = &self.entries {
                    let r = t.range((*s, lo.0, lo.1)..=(*s, hi.0, hi.1));
                    out.push(Rows::Ids(r.context("read view index")?));
                }
            }
            (Scope::Legacy(s), Some(t)) => {
                let r = t.range((s.as_str(), lo.0, lo.1)..=(s.as_str(), hi.0, hi.1));
                out.push(Rows::Keys(r.context("read view index")?));
            }
            (Scope::Legacy(_), None) => {}
        }
        Ok(out)
    }
}

/// The bucket of `date` at `level`.
pub(super) fn bucket(level: u8, date: i64) -> i64 {
    match SHIFTS.get(usize::from(level)) {
        Some(s) => date >> s,
        None => 0,
    }
}

/// log2 of the width in seconds of a bucket at `level` (below [`TOP`]).
fn width(level: u8) -> u32 {
    SHIFTS.get(usize::from(level)).copied().unwrap_or(0)
}

/// Where `date`'s bucket at `level` sits in its parent's child array.
pub(super) fn slot(level: u8, date: i64) -> usize {
    // Arithmetic shifts floor, so this is in 0..FANOUT for every date.
    usize::try_from(bucket(level, date) - (bucket(level + 1, date) << WIDTH)).unwrap_or(0)
}

/// Sum of the `u64` counters of `scope` at `level` for buckets in `lo..=hi`.
fn sum(c: &Counters, level: u8, scope: &Scope, lo: i64, hi: i64) -> Result<u64> {
    let rows = c.rows(level, scope, lo, hi)?;
    Ok(rows.iter().fold(0u64, |n, (_, v)| n.saturating_add(*v)))
}

/// Entries of the scope, all dates.
pub(super) fn total(c: &Counters, scope: &Scope) -> Result<u64> {
    sum(c, TOP, scope, 0, 0)
}

/// Entries of the scope with `date <= x`.
pub(super) fn prefix(ix: &Index, c: &Counters, scope: &Scope, x: i64) -> Result<u64> {
    // Whole 34-year buckets before x's, then, level by level, the children
    // before x's inside x's parent.
    let mut n = sum(
        c,
        ARRAY_LEVELS,
        scope,
        i64::MIN,
        bucket(ARRAY_LEVELS, x) - 1,
    )?;
    for level in (FINEST..ARRAY_LEVELS).rev() {
        let children = c.children(level, scope, bucket(level + 1, x))?;
        let before: u64 = children.iter().take(slot(level, x)).sum();
        n = n.saturating_add(before);
    }
    let start = bucket(FINEST, x) << width(FINEST);
    for rows in ix.range(scope, (start, 0), (x, u64::MAX))? {
        n = n.saturating_add(rows.count()?);
    }
    Ok(n)
}

/// Entries of the union of `scopes` with `since <= date <= until`.
pub(super) fn count_between(
    ix: &Index,
    c: &Counters,
    scopes: &[Scope],
    since: Option<i64>,
    until: Option<i64>,
) -> Result<u64> {
    let mut n = 0u64;
    for s in scopes {
        let upto = match until {
            None => total(c, s)?,
            Some(u) => prefix(ix, c, s, u)?,
        };
        let before = match since.and_then(|t| t.checked_sub(1)) {
            None => 0,
            Some(t) => prefix(ix, c, s, t)?,
        };
        n = n.saturating_add(upto.saturating_sub(before));
    }
    Ok(n)
}

/// Where the entry with 0-based rank `r` (ascending (date, id) order over
/// the union of `scopes`) is: the newest date of its finest bucket, and how
/// many entries of that bucket come before it newest first. The caller's
/// newest-first [`Merge`] starts at that date and skips that many, so the
/// finest bucket is read once, by the merge that reads the page anyway.
/// None if there are not that many entries.
pub(super) fn locate(c: &Counters, scopes: &[Scope], r: u64) -> Result<Option<(i64, u64)>> {
    let mut r = r;
    // The 34-year buckets have no parent to bound them: a small map.
    let mut top: BTreeMap<i64, u64> = BTreeMap::new();
    for s in scopes {
        for (b, n) in c.rows(ARRAY_LEVELS, s, i64::MIN, i64::MAX)? {
            *top.entry(b).or_default() += n;
        }
    }
    let Some((mut parent, mut n)) = pick(top.into_iter(), &mut r) else {
        return Ok(None);
    };
    for level in (FINEST..ARRAY_LEVELS).rev() {
        let mut sums = [0u64; FANOUT];
        for s in scopes {
            for (sum, n) in sums.iter_mut().zip(c.children(level, s, parent)?) {
                *sum += n;
            }
        }
        match pick((parent << WIDTH..).zip(sums), &mut r) {
            Some(found) => (parent, n) = found,
            None => return Ok(None),
        }
    }
    let newest = (parent << width(FINEST)) | ((1 << width(FINEST)) - 1);
    Ok(Some((newest, n.saturating_sub(1).saturating_sub(r))))
}

/// The bucket holding 0-based rank `r` among `(bucket, count)` in
/// ascending order, with its count; `r` becomes the rank inside it.
fn pick(buckets: impl Iterator<Item = (i64, u64)>, r: &mut u64) -> Option<(i64, u64)> {
    for (bk, n) in buckets {
        if *r < n {
            return Some((bk, n));
        }
        *r -= n;
    }
    None
}

/// Newest-first merge of several scopes, starting at `start` (inclusive)
/// and stopping below `since`. A message is in at most one of the scopes a
/// view merges, so no entry is seen twice.
pub(super) struct Merge {
    heads: Vec<Option<Pos>>,
    iters: Vec<Rows>,
    since: i64,
}

impl Merge {
    pub(super) fn new(ix: &Index, scopes: &[Scope], start: Pos, since: i64) -> Result<Merge> {
        let mut m = Merge {
            heads: Vec::new(),
            iters: Vec::new(),
            since,
        };
        if since > start.0 {
            return Ok(m);
        }
        for s in scopes {
            for rows in ix.range(s, (since, 0), start)? {
                m.iters.push(rows);
                m.heads.push(None);
            }
        }
        for i in 0..m.iters.len() {
            m.advance(i)?;
        }
        Ok(m)
    }

    fn advance(&mut self, i: usize) -> Result<()> {
        self.heads[i] = match self.iters[i].next_back() {
            None => None,
            Some(pos) => Some(pos?).filter(|p| p.0 >= self.since),
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
