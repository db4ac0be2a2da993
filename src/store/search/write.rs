//! Writing the packed word index: each posting goes into the chunk of its
//! word that covers its (date, id), found with one range lookup, and only
//! that chunk is rewritten (`super::chunk` has the row format).
//!
//! A chunk that grows past [`CHUNK_MAX`] is split: when the new posting is
//! the newest of the chunk (mail arriving in date order) it starts a chunk
//! of its own, so the older chunk stays full; otherwise the chunk splits
//! in halves. A removal rewrites the one chunk, or deletes it when it
//! empties; chunks are not merged, since the next postings of the word
//! fill them again.
//!
//! The chunks are read and written through `super::cache`. Opened with
//! [`Postings::open`], every call writes its chunks before it returns;
//! opened with [`Postings::batch`] (a fetched batch), the chunks stay in
//! memory until [`Postings::finish`], so a word shared by the batch's
//! mails has its chunk written once, not once per mail. The steps on the
//! chunks are the same either way, so the rows are too.
//!
//! While a store is being converted from schema 9 (`super::pack`), some
//! postings are still rows of the old `search_index`; a removal removes
//! the posting there too, so that no old row outlives its message.

use redb::{Table, WriteTransaction};

use super::cache::ChunkCache;
use super::chunk::CHUNK_MAX;
use super::places::PlaceNumbers;
use super::{place, tokens};
use crate::error::Context;
use crate::error::Result;
use crate::store::meta::MessageMeta;
use crate::store::schema::{SEARCH_INDEX, SEARCH_POSTINGS};

type Legacy<'tx> = Table<'tx, (&'static str, i64, u64), &'static str>;

/// Whether the schema 9 table is still there (being converted).
pub(in crate::store) fn legacy_exists(tx: &WriteTransaction) -> Result<bool> {
    let name = redb::TableHandle::name(&SEARCH_INDEX);
    Ok(tx
        .list_tables()
        .context("list tables")?
        .any(|h| redb::TableHandle::name(&h) == name))
}

/// The word index of one write transaction.
pub(in crate::store) struct Postings<'tx> {
    chunks: ChunkCache<'tx>,
    legacy: Option<Legacy<'tx>>,
    /// Chunks stay in memory until [`Postings::finish`] (module docs).
    batch: bool,
}

impl<'tx> Postings<'tx> {
    /// Every call writes its chunks before it returns.
    pub(in crate::store) fn open(tx: &'tx WriteTransaction) -> Result<Postings<'tx>> {
        Self::opened(tx, false)
    }

    /// Chunks are written by [`Postings::finish`] only, which the caller
    /// must call before it commits (module docs).
    pub(in crate::store) fn batch(tx: &'tx WriteTransaction) -> Result<Postings<'tx>> {
        Self::opened(tx, true)
    }

    fn opened(tx: &'tx WriteTransaction, batch: bool) -> Result<Postings<'tx>> {
        let chunks = tx
            .open_table(SEARCH_POSTINGS)
            .context("open search index")?;
        let legacy = match legacy_exists(tx)? {
            true => Some(tx.open_table(SEARCH_INDEX).context("open search index")?),
            false => None,
        };
        Ok(Postings {
            chunks: ChunkCache::new(chunks, PlaceNumbers::open(tx)?),
            legacy,
            batch,
        })
    }

    /// Write the chunks changed since the last call.
    pub(in crate::store) fn finish(&mut self) -> Result<()> {
        self.chunks.flush()
    }

    /// Without [`Postings::batch`], write what the call changed.
    fn settle(&mut self) -> Result<()> {
        match self.batch {
            true => Ok(()),
            false => self.chunks.flush(),
        }
    }

    /// Index a message under each of its words.
    pub(in crate::store) fn add(&mut self, m: &MessageMeta) -> Result<()> {
        let place = self.chunks.place(&place(m))?;
        for t in tokens(m) {
            self.insert_one(&t, m.date, m.id, place)?;
        }
        self.settle()
    }

    /// Remove a message's postings (those [`Postings::add`] wrote for `m`).
    pub(in crate::store) fn remove(&mut self, m: &MessageMeta) -> Result<()> {
        for t in tokens(m) {
            self.delete(&t, m.date, m.id)?;
        }
        self.settle()
    }

    /// Follow a change of a message's summary; a change of `read` alone
    /// touches nothing.
    pub(in crate::store) fn change(
        &mut self,
        before: &MessageMeta,
        after: &MessageMeta,
    ) -> Result<()> {
        let same = |a: &MessageMeta, b: &MessageMeta| {
            (a.id, a.date, &a.subject, &a.from, &a.to, &a.cc)
                == (b.id, b.date, &b.subject, &b.from, &b.to, &b.cc)
        };
        if same(before, after) && place(before) == place(after) {
            return Ok(());
        }
        self.remove(before)?;
        self.add(after)
    }

    /// Add (or re-place) one posting.
    pub(super) fn insert(&mut self, word: &str, date: i64, id: u64, place: &str) -> Result<()> {
        let place = self.chunks.place(place)?;
        self.insert_one(word, date, id, place)?;
        self.settle()
    }

    fn insert_one(&mut self, word: &str, date: i64, id: u64, place: u32) -> Result<()> {
        let mut c = match self.chunks.below(word, (date, id))? {
            Some(c) => c,
            None => self.chunks.first(word)?.unwrap_or_default(),
        };
        let old_key = c.key();
        c.insert(date, id, place);
        if c.key() != old_key {
            self.chunks.drop_key(word, old_key);
        }
        if c.len() <= CHUNK_MAX {
            self.chunks.put(word, c);
            return Ok(());
        }
        let at = match c.entries.last() {
            Some(&(d, i, _)) if (d, i) == (date, id) => c.len() - 1,
            _ => c.len() / 2,
        };
        let upper = c.split_off(at);
        self.chunks.put(word, c);
        self.chunks.put(word, upper);
        Ok(())
    }

    /// Remove one posting, wherever it is.
    fn delete(&mut self, word: &str, date: i64, id: u64) -> Result<()> {
        if let Some(legacy) = &mut self.legacy {
            legacy
                .remove((word, date, id))
                .context("write search index")?;
        }
        let Some(mut c) = self.chunks.below(word, (date, id))? else {
            return Ok(());
        };
        let old_key = c.key();
        if !c.remove(date, id) {
            return Ok(());
        }
        if c.key() != old_key {
            self.chunks.drop_key(word, old_key);
        }
        self.chunks.put(word, c);
        Ok(())
    }
}
