//! The chunks of the word index as one write transaction sees them, each
//! read and decoded at most once and written at most once.
//!
//! Why: a fetched batch of mails shares many words ("re", the sender's
//! domain, the recipient), and adding its postings one by one read,
//! decoded, re-encoded and rewrote the newest chunk of such a word once
//! per mail: a batch of 1,000 mails rewrote the chunk of "com" 1,000
//! times. [`ChunkCache`] keeps the chunks a transaction has touched in
//! memory and writes the changed ones in [`ChunkCache::flush`], so that
//! chunk is written once per batch. `super::write` runs exactly the same
//! steps on the chunks as before, in the same order; only where the
//! chunks live between the steps changed, so the rows written are the
//! same as adding the postings one by one.
//!
//! The cache answers "the newest chunk of a word at or before (date, id)"
//! from memory where it can prove that no row of the table it has not
//! seen could be the answer: per word it notes the key `known_from` above
//! which every row of the table is in the cache (read, or noted as
//! present but not yet decoded). Mail arriving in date order only ever
//! asks above that key, so after the first posting of a word a batch
//! reads that word from memory alone. A posting older than `known_from`
//! reads the table again, and notes the rows between it and `known_from`
//! (at most [`NOTE_MAX`] per word, so a word with thousands of chunks
//! costs no more than a lookup per posting, as before).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use redb::{ReadableTable, Table};

use super::chunk::Chunk;
use super::places::PlaceNumbers;
use crate::error::Context;
use crate::error::{Error, Result};

/// The word index table: `(word, oldest date, oldest id) -> chunk`.
pub(super) type Chunks<'tx> = Table<'tx, (&'static str, i64, u64), &'static [u8]>;

/// The (date, id) of a chunk's key posting.
type Key = (i64, u64);

const LOWEST: Key = (i64::MIN, 0);
const HIGHEST: Key = (i64::MAX, u64::MAX);

/// Most rows of one word noted while proving that the cache covers a
/// range of keys; past it the word is looked up in the table per posting.
pub(super) const NOTE_MAX: usize = 64;

/// One key of a word as the transaction sees it.
enum Slot {
    /// A row of the table, not read yet.
    Stored,
    /// A row of the table, read and unchanged.
    Clean(Chunk),
    /// To be written.
    Dirty(Chunk),
    /// To be removed (or never written, if made and dropped meanwhile).
    Gone,
}

impl Slot {
    fn present(&self) -> bool {
        !matches!(self, Slot::Gone)
    }
}

/// The cache of one word (module docs).
#[derive(Default)]
struct Word {
    slots: BTreeMap<Key, Slot>,
    /// Every row of the table with a key at or above this is in `slots`.
    known_from: Option<Key>,
    /// Noting rows hit [`NOTE_MAX`] once: the table decides from then on.
    gave_up: bool,
}

impl Word {
    fn newest_present(&self, lo: Key, hi: Key) -> Option<Key> {
        if lo > hi {
            return None;
        }
        self.slots
            .range(lo..=hi)
            .rev()
            .find(|(_, s)| s.present())
            .map(|(k, _)| *k)
    }

    fn oldest_present(&self) -> Option<Key> {
        self.slots
            .iter()
            .find(|(_, s)| s.present())
            .map(|(k, _)| *k)
    }

    fn gone(&self, k: &Key) -> bool {
        matches!(self.slots.get(k), Some(Slot::Gone))
    }
}

/// The word index of one write transaction, cached (module docs).
pub(super) struct ChunkCache<'tx> {
    table: Chunks<'tx>,
    /// Place numbers, assigned in this transaction where new; a chunk of
    /// the older form read here gets its numbers as it is decoded.
    numbers: PlaceNumbers<'tx>,
    words: HashMap<String, Word>,
}

impl<'tx> ChunkCache<'tx> {
    pub(super) fn new(table: Chunks<'tx>, numbers: PlaceNumbers<'tx>) -> ChunkCache<'tx> {
        ChunkCache {
            table,
            numbers,
            words: HashMap::new(),
        }
    }

    /// The number of `place`, assigned now if it has none.
    pub(super) fn place(&mut self, place: &str) -> Result<u32> {
        self.numbers.assign(place)
    }

    fn word(&mut self, word: &str) -> &mut Word {
        self.words.entry(word.to_string()).or_default()
    }

    /// The chunk of `word` whose key is the newest at or before `at`.
    pub(super) fn below(&mut self, word: &str, at: Key) -> Result<Option<Chunk>> {
        match self.locate(word, at)? {
            Some(k) => self.chunk(word, k).map(Some),
            None => Ok(None),
        }
    }

    /// The oldest chunk of `word`.
    pub(super) fn first(&mut self, word: &str) -> Result<Option<Chunk>> {
        let known = self.words.get(word).and_then(|w| w.known_from);
        if known != Some(LOWEST) {
            let stored = self.stored(word, HIGHEST, false)?;
            if let Some(k) = stored {
                self.word(word).slots.entry(k).or_insert(Slot::Stored);
            }
        }
        match self.words.get(word).and_then(Word::oldest_present) {
            Some(k) => self.chunk(word, k).map(Some),
            None => Ok(None),
        }
    }

    /// Put `c` under its key (nothing for an empty chunk).
    pub(super) fn put(&mut self, word: &str, c: Chunk) {
        if let Some(k) = c.key() {
            self.word(word).slots.insert(k, Slot::Dirty(c));
        }
    }

    /// Remove the chunk keyed `key`.
    pub(super) fn drop_key(&mut self, word: &str, key: Option<Key>) {
        if let Some(k) = key {
            self.word(word).slots.insert(k, Slot::Gone);
        }
    }

    /// Write every changed chunk, in key order, and forget them all.
    pub(super) fn flush(&mut self) -> Result<()> {
        let mut words: Vec<(String, Word)> = self.words.drain().collect();
        words.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (word, w) in words {
            for ((d, i), slot) in w.slots {
                match slot {
                    Slot::Dirty(c) => {
                        self.table
                            .insert((word.as_str(), d, i), c.encode()?.as_slice())
                            .context("write search index")?;
                    }
                    Slot::Gone => {
                        self.table
                            .remove((word.as_str(), d, i))
                            .context("write search index")?;
                    }
                    Slot::Stored | Slot::Clean(_) => {}
                }
            }
        }
        Ok(())
    }

    /// The key of the newest chunk at or before `at`, noted in the cache.
    fn locate(&mut self, word: &str, at: Key) -> Result<Option<Key>> {
        if let Some(w) = self.words.get(word) {
            if let Some(from) = w.known_from {
                if let Some(k) = w.newest_present(from, at) {
                    return Ok(Some(k));
                }
                if from == LOWEST {
                    return Ok(None);
                }
            }
        }
        let stored = self.stored(word, at, true)?;
        if let Some(k) = stored {
            self.word(word).slots.entry(k).or_insert(Slot::Stored);
        }
        self.note_above(word, at, stored)?;
        Ok(self
            .words
            .get(word)
            .and_then(|w| w.newest_present(LOWEST, at)))
    }

    /// The key of the oldest (or, `newest`, the newest) row of `word` at
    /// or before `hi` in the table that this transaction has not removed.
    fn stored(&self, word: &str, hi: Key, newest: bool) -> Result<Option<Key>> {
        let w = self.words.get(word);
        let mut r = self
            .table
            .range((word, LOWEST.0, LOWEST.1)..=(word, hi.0, hi.1))
            .context("read search index")?;
        loop {
            let row = match newest {
                true => r.next_back(),
                false => r.next(),
            };
            let Some(row) = row else {
                return Ok(None);
            };
            let (k, _) = row.context("read search index")?;
            let (_, d, i) = k.value();
            if !w.is_some_and(|w| w.gone(&(d, i))) {
                return Ok(Some((d, i)));
            }
        }
    }

    /// Note the rows of `word` above `at` up to `known_from`; when they
    /// all fit, everything from `stored` (the newest row at or before
    /// `at`) up is known.
    fn note_above(&mut self, word: &str, at: Key, stored: Option<Key>) -> Result<()> {
        let w = self.words.get(word);
        if w.is_some_and(|w| w.gave_up) {
            return Ok(());
        }
        let upper = match w.and_then(|w| w.known_from) {
            // Everything above `at` is known already.
            Some(k) if k <= at => None,
            Some(k) => Some(Bound::Excluded((word, k.0, k.1))),
            None => Some(Bound::Included((word, HIGHEST.0, HIGHEST.1))),
        };
        let mut rows = Vec::new();
        let mut fits = true;
        if let Some(upper) = upper {
            let r = self
                .table
                .range::<(&str, i64, u64)>((Bound::Excluded((word, at.0, at.1)), upper))
                .context("read search index")?;
            for row in r {
                let (k, _) = row.context("read search index")?;
                let (_, d, i) = k.value();
                if w.is_some_and(|w| w.slots.contains_key(&(d, i))) {
                    continue;
                }
                if rows.len() == NOTE_MAX {
                    fits = false;
                    break;
                }
                rows.push((d, i));
            }
        }
        let w = self.word(word);
        for k in rows {
            w.slots.entry(k).or_insert(Slot::Stored);
        }
        if fits {
            w.known_from = Some(stored.unwrap_or(LOWEST));
        } else {
            w.gave_up = true;
        }
        Ok(())
    }

    /// The chunk keyed `k` (present in the cache), decoded once.
    fn chunk(&mut self, word: &str, k: Key) -> Result<Chunk> {
        let stored = matches!(
            self.words.get(word).and_then(|w| w.slots.get(&k)),
            Some(Slot::Stored)
        );
        if stored {
            let mut c = {
                let v = self
                    .table
                    .get((word, k.0, k.1))
                    .context("read search index")?;
                let v = v.ok_or_else(|| {
                    Error::storage_msg("search index chunk missing from its transaction".into())
                })?;
                Chunk::decode(k.0, k.1, v.value())?
            };
            c.number(|p| self.numbers.assign(p))?;
            self.word(word).slots.insert(k, Slot::Clean(c));
        }
        match self.words.get(word).and_then(|w| w.slots.get(&k)) {
            Some(Slot::Clean(c) | Slot::Dirty(c)) => Ok(c.clone()),
            _ => Err(Error::storage_msg(
                "search index chunk missing from its transaction's cache".into(),
            )),
        }
    }
}
