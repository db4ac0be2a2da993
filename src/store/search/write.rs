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
//! While a store is being converted from schema 9 (`super::pack`), some
//! postings are still rows of the old `search_index`; a removal removes
//! the posting there too, so that no old row outlives its message.

use redb::{ReadableTable, Table, WriteTransaction};

use super::chunk::{Chunk, CHUNK_MAX};
use super::{place, tokens};
use crate::error::Context;
use crate::error::Result;
use crate::store::messages::MessageMeta;
use crate::store::schema::{SEARCH_INDEX, SEARCH_POSTINGS};

type Chunks<'tx> = Table<'tx, (&'static str, i64, u64), &'static [u8]>;
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
    chunks: Chunks<'tx>,
    legacy: Option<Legacy<'tx>>,
}

impl<'tx> Postings<'tx> {
    pub(in crate::store) fn open(tx: &'tx WriteTransaction) -> Result<Postings<'tx>> {
        let chunks = tx
            .open_table(SEARCH_POSTINGS)
            .context("open search index")?;
        let legacy = match legacy_exists(tx)? {
            true => Some(tx.open_table(SEARCH_INDEX).context("open search index")?),
            false => None,
        };
        Ok(Postings { chunks, legacy })
    }

    /// Index a message under each of its words.
    pub(in crate::store) fn add(&mut self, m: &MessageMeta) -> Result<()> {
        let place = place(m);
        for t in tokens(m) {
            self.insert(&t, m.date, m.id, &place)?;
        }
        Ok(())
    }

    /// Remove a message's postings (those [`Postings::add`] wrote for `m`).
    pub(in crate::store) fn remove(&mut self, m: &MessageMeta) -> Result<()> {
        for t in tokens(m) {
            self.delete(&t, m.date, m.id)?;
        }
        Ok(())
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

    /// The chunk of `word` whose key is the newest at or before (date,
    /// id): the one a posting there belongs to.
    fn below(&self, word: &str, date: i64, id: u64) -> Result<Option<Chunk>> {
        let mut r = self
            .chunks
            .range((word, i64::MIN, 0u64)..=(word, date, id))
            .context("read search index")?;
        match r.next_back() {
            None => Ok(None),
            Some(row) => {
                let (k, v) = row.context("read search index")?;
                let (_, d, i) = k.value();
                Chunk::decode(d, i, v.value()).map(Some)
            }
        }
    }

    /// The oldest chunk of `word`, for a posting older than all of them.
    fn first(&self, word: &str) -> Result<Option<Chunk>> {
        let mut r = self
            .chunks
            .range((word, i64::MIN, 0u64)..=(word, i64::MAX, u64::MAX))
            .context("read search index")?;
        match r.next() {
            None => Ok(None),
            Some(row) => {
                let (k, v) = row.context("read search index")?;
                let (_, d, i) = k.value();
                Chunk::decode(d, i, v.value()).map(Some)
            }
        }
    }

    fn put(&mut self, word: &str, c: &Chunk) -> Result<()> {
        if let Some((d, id)) = c.key() {
            self.chunks
                .insert((word, d, id), c.encode().as_slice())
                .context("write search index")?;
        }
        Ok(())
    }

    fn drop_key(&mut self, word: &str, key: Option<(i64, u64)>) -> Result<()> {
        if let Some((d, id)) = key {
            self.chunks
                .remove((word, d, id))
                .context("write search index")?;
        }
        Ok(())
    }

    /// Add (or re-place) one posting.
    pub(super) fn insert(&mut self, word: &str, date: i64, id: u64, place: &str) -> Result<()> {
        let mut c = match self.below(word, date, id)? {
            Some(c) => c,
            None => self.first(word)?.unwrap_or_default(),
        };
        let old_key = c.key();
        c.insert(date, id, place);
        if c.key() != old_key {
            self.drop_key(word, old_key)?;
        }
        if c.len() <= CHUNK_MAX {
            return self.put(word, &c);
        }
        let at = match c.entries.last() {
            Some(&(d, i, _)) if (d, i) == (date, id) => c.len() - 1,
            _ => c.len() / 2,
        };
        let upper = c.split_off(at);
        self.put(word, &c)?;
        self.put(word, &upper)
    }

    /// Remove one posting, wherever it is.
    fn delete(&mut self, word: &str, date: i64, id: u64) -> Result<()> {
        if let Some(legacy) = &mut self.legacy {
            legacy
                .remove((word, date, id))
                .context("write search index")?;
        }
        let Some(mut c) = self.below(word, date, id)? else {
            return Ok(());
        };
        let old_key = c.key();
        if !c.remove(date, id) {
            return Ok(());
        }
        if c.key() != old_key {
            self.drop_key(word, old_key)?;
        }
        self.put(word, &c)
    }
}
