//! Reading the word index: the postings of every word a query word is a
//! prefix of, merged newest first (date, then id, like the views).
//!
//! Each word's chunks are read newest first and decoded one at a time, so
//! a first page decodes the chunks that hold it and at most one more per
//! word. While a schema 9 store is being converted (`super::pack`), the
//! postings not yet moved are rows of the old table; they are merged in
//! the same way, so a search answers the same before, during and after.
//! Chunks name their places by number (schema 17) or, until
//! `super::places` has rewritten them, by string; each chunk's places are
//! turned into strings once, as it is decoded.

use std::collections::BTreeSet;
use std::ops::Bound;

use redb::{ReadOnlyTable, ReadTransaction, TableDefinition, TableError};

use super::chunk::Chunk;
use super::places::{Names, PlaceCache};
use crate::error::Context;
use crate::error::Result;
use crate::store::schema::{SEARCH_INDEX, SEARCH_POSTINGS};

type Key = (&'static str, i64, u64);
type ChunkRange = redb::Range<'static, Key, &'static [u8]>;
type LegacyRange = redb::Range<'static, Key, &'static str>;

/// At most this many indexed words are merged for one query word. A prefix
/// shared by more words (one or two letters, a number's first digits) is
/// common; the caller then reads the view newest first instead, which
/// fills a page quickly exactly when matches are common.
pub(in crate::store) const MERGE_MAX: usize = 256;

/// One posting: date, message id, place (`super::parse_place`).
pub(in crate::store) type Posting = (i64, u64, String);

/// The postings of one word in `since..=until`, newest first.
enum Source {
    Packed {
        chunks: ChunkRange,
        /// The decoded chunk, oldest first: the next posting is its last.
        chunk: Chunk,
        /// The places of `chunk`, by its place index.
        places: Vec<String>,
        since: i64,
        until: i64,
        done: bool,
    },
    Legacy(LegacyRange),
}

impl Source {
    fn next(&mut self, names: &mut Names) -> Result<Option<Posting>> {
        match self {
            Source::Legacy(rows) => match rows.next_back() {
                None => Ok(None),
                Some(row) => {
                    let (k, v) = row.context("read search index")?;
                    let (_, date, id) = k.value();
                    Ok(Some((date, id, v.value().to_string())))
                }
            },
            Source::Packed {
                chunks,
                chunk,
                places,
                since,
                until,
                done,
            } => loop {
                if let Some((date, id, p)) = chunk.entries.pop() {
                    if date > *until {
                        continue;
                    }
                    if date < *since {
                        *done = true;
                        return Ok(None);
                    }
                    let place = places.get(p).cloned().unwrap_or_default();
                    return Ok(Some((date, id, place)));
                }
                if *done {
                    return Ok(None);
                }
                let Some(row) = chunks.next_back() else {
                    *done = true;
                    return Ok(None);
                };
                let (k, v) = row.context("read search index")?;
                let (_, d, i) = k.value();
                *chunk = Chunk::decode(d, i, v.value())?;
                *places = chunk
                    .places
                    .iter()
                    .map(|p| names.name(p))
                    .collect::<Result<_>>()?;
            },
        }
    }
}

/// Newest-first postings of all words starting with a prefix, within
/// `since..=until`. A message found under two such words comes once.
pub(in crate::store) struct Candidates<'a> {
    names: Names<'a>,
    sources: Vec<Source>,
    heads: Vec<Option<Posting>>,
    last: Option<(i64, u64)>,
}

/// A table of `tx`, None when the store has none (the old table once
/// converted, the new one in a store not yet migrated).
fn open<V: redb::Value + 'static>(
    tx: &ReadTransaction,
    def: TableDefinition<Key, V>,
) -> Result<Option<ReadOnlyTable<Key, V>>> {
    match tx.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e).context("open search index"),
    }
}

/// Adds the indexed words of `t` starting with `prefix` to `out`; false
/// once `out` holds more than [`MERGE_MAX`]. One seek per word: each skips
/// that word's rows.
fn words_with_prefix<V: redb::Value + 'static>(
    t: &ReadOnlyTable<Key, V>,
    prefix: &str,
    out: &mut BTreeSet<String>,
) -> Result<bool> {
    let mut last: Option<String> = None;
    loop {
        let from = match &last {
            None => Bound::Included((prefix, i64::MIN, 0u64)),
            Some(w) => Bound::Excluded((w.as_str(), i64::MAX, u64::MAX)),
        };
        let mut rows = t
            .range::<(&str, i64, u64)>((from, Bound::Unbounded))
            .context("read search index")?;
        let Some(row) = rows.next() else {
            return Ok(true);
        };
        let (k, _) = row.context("read search index")?;
        let word = k.value().0;
        if !word.starts_with(prefix) {
            return Ok(true);
        }
        out.insert(word.to_string());
        if out.len() > MERGE_MAX {
            return Ok(false);
        }
        last = Some(word.to_string());
    }
}

impl<'a> Candidates<'a> {
    /// None when `prefix` starts more than [`MERGE_MAX`] indexed words.
    /// `places` is the cache of the database `tx` reads
    /// (`crate::store::ReadTx::places`).
    pub(in crate::store) fn new(
        tx: &'a ReadTransaction,
        places: &'a PlaceCache,
        prefix: &str,
        since: i64,
        until: i64,
    ) -> Result<Option<Candidates<'a>>> {
        let packed = open(tx, SEARCH_POSTINGS)?;
        let legacy = open(tx, SEARCH_INDEX)?;
        let (mut in_packed, mut in_legacy) = (BTreeSet::new(), BTreeSet::new());
        if let Some(t) = &packed {
            if !words_with_prefix(t, prefix, &mut in_packed)? {
                return Ok(None);
            }
        }
        if let Some(t) = &legacy {
            if !words_with_prefix(t, prefix, &mut in_legacy)? {
                return Ok(None);
            }
        }
        if in_packed.union(&in_legacy).count() > MERGE_MAX {
            return Ok(None);
        }
        let mut c = Candidates {
            names: Names::new(tx, places),
            sources: Vec::new(),
            heads: Vec::new(),
            last: None,
        };
        if since > until {
            return Ok(Some(c));
        }
        if let Some(t) = &packed {
            for w in &in_packed {
                // A chunk keyed before `since` may still hold postings in
                // range; one keyed after `until` cannot.
                let chunks = t
                    .range((w.as_str(), i64::MIN, 0u64)..=(w.as_str(), until, u64::MAX))
                    .context("read search index")?;
                c.sources.push(Source::Packed {
                    chunks,
                    chunk: Chunk::default(),
                    places: Vec::new(),
                    since,
                    until,
                    done: false,
                });
            }
        }
        if let Some(t) = &legacy {
            for w in &in_legacy {
                let rows = t
                    .range((w.as_str(), since, 0u64)..=(w.as_str(), until, u64::MAX))
                    .context("read search index")?;
                c.sources.push(Source::Legacy(rows));
            }
        }
        for i in 0..c.sources.len() {
            c.heads.push(None);
            c.advance(i)?;
        }
        Ok(Some(c))
    }

    fn advance(&mut self, i: usize) -> Result<()> {
        self.heads[i] = self.sources[i].next(&mut self.names)?;
        Ok(())
    }

    /// The next posting, newest first.
    pub(in crate::store) fn next_posting(&mut self) -> Result<Option<Posting>> {
        loop {
            let best = self
                .heads
                .iter()
                .enumerate()
                .filter_map(|(i, h)| h.as_ref().map(|p| ((p.0, p.1), i)))
                .max();
            let Some((pos, i)) = best else {
                return Ok(None);
            };
            let head = self.heads[i].take();
            self.advance(i)?;
            if self.last == Some(pos) {
                continue;
            }
            self.last = Some(pos);
            return Ok(head);
        }
    }
}
