//! The places of the word index by number (schema 17): each place (`c`/`n`,
//! account, folder; `super::place`) is given a `u32` once, in
//! [`SEARCH_PLACES`] and back in [`SEARCH_PLACE_NAMES`]
//! (`crate::store::numbers`), and a chunk names its places by number
//! (`super::chunk` says why).
//!
//! Writers assign numbers in their transaction; searches turn numbers
//! back into places through [`PlaceCache`], filled from read transactions
//! only, so a number of an aborted write is never cached.
//!
//! Chunks of schema 10 to 14 name their places by string. [`pack_legacy`]
//! rewrites them at open, in transactions of at most [`PACK_CHUNKS`] rows
//! in key order, each moving the mark [`KEY_PLACES`] in the same commit:
//! a kill at any point leaves rows of either form, all readable (every
//! number a committed row names is committed with it), and the next open
//! goes on from the mark. Until then a write that touches an older chunk
//! numbers its places on the way, and searches read both forms.

use std::ops::Bound;

use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableTable, TableDefinition, TableError,
    WriteTransaction,
};

use super::chunk::{Chunk, Place};
use crate::error::{Context, Error, Result};
use crate::store::numbers::{Kind, NumberCache, Numbers};
use crate::store::schema::{META, SEARCH_PLACES, SEARCH_PLACE_NAMES, SEARCH_POSTINGS};
use crate::store::write_txn;

/// The numbering of the word index's places.
pub(in crate::store) struct Places;

impl Kind for Places {
    const FORWARD: TableDefinition<'static, &'static str, u32> = SEARCH_PLACES;
    const BACK: Option<TableDefinition<'static, u32, &'static str>> = Some(SEARCH_PLACE_NAMES);
    const WHAT: &'static str = "search place";
    const OPEN: &'static str = "open search places";
    const READ: &'static str = "read search places";
    const WRITE: &'static str = "write search places";
}

/// The place numbers of one write transaction.
pub(super) type PlaceNumbers<'tx> = Numbers<'tx, Places>;

/// Places by number, as read from committed snapshots of one database.
pub(in crate::store) type PlaceCache = NumberCache<u32, String>;

/// Rows read per transaction of [`pack_legacy`] (a chunk is a few bytes
/// to a few hundred).
pub const PACK_CHUNKS: usize = 2_000;

/// In `meta`, present while chunks of the older form may be left: the key
/// of the last row rewritten (date and id big-endian, then the word), or
/// empty for none yet. The schema step to 15 sets it; the last
/// transaction of [`pack_legacy`] removes it.
pub const KEY_PLACES: &str = "search_places_upto";

type Key = (String, i64, u64);

/// Set the mark at the first row (the schema step to 15).
pub(in crate::store) fn start(tx: &WriteTransaction) -> Result<()> {
    let mut meta = tx.open_table(META).context("open meta")?;
    meta.insert(KEY_PLACES, [].as_slice())
        .context("write meta")?;
    Ok(())
}

pub(super) fn mark(tx: &WriteTransaction) -> Result<Option<Option<Key>>> {
    let meta = tx.open_table(META).context("open meta")?;
    let Some(v) = meta.get(KEY_PLACES).context("read meta")? else {
        return Ok(None);
    };
    let b = v.value();
    if b.is_empty() {
        return Ok(Some(None));
    }
    let bad = || Error::storage_msg(format!("meta value {KEY_PLACES} is damaged"));
    let (date, rest) = b.split_first_chunk::<8>().ok_or_else(bad)?;
    let (id, word) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
    let word = std::str::from_utf8(word).map_err(|_| bad())?;
    Ok(Some(Some((
        word.to_string(),
        i64::from_be_bytes(*date),
        u64::from_be_bytes(*id),
    ))))
}

fn set_mark(tx: &WriteTransaction, k: &Key) -> Result<()> {
    let mut v = Vec::with_capacity(16 + k.0.len());
    v.extend_from_slice(&k.1.to_be_bytes());
    v.extend_from_slice(&k.2.to_be_bytes());
    v.extend_from_slice(k.0.as_bytes());
    let mut meta = tx.open_table(META).context("open meta")?;
    meta.insert(KEY_PLACES, v.as_slice())
        .context("write meta")?;
    Ok(())
}

/// Number the places of every older chunk (module docs); returns how many
/// chunks were rewritten. Without the mark (a current or new store)
/// nothing is written.
pub(in crate::store) fn pack_legacy(db: &Database) -> Result<u64> {
    let mut packed = 0u64;
    loop {
        let tx = write_txn(db)?;
        let Some(from) = mark(&tx)? else {
            return Ok(packed);
        };
        let (n, done) = pack_some(&tx, from)?;
        tx.commit().context("commit numbered search places")?;
        packed += n;
        tracing::info!(packed, done, "numbering the word index places (schema 17)");
        if done {
            return Ok(packed);
        }
    }
}

/// One transaction of [`pack_legacy`]: (chunks rewritten, all done).
pub(super) fn pack_some(tx: &WriteTransaction, from: Option<Key>) -> Result<(u64, bool)> {
    let mut numbers = PlaceNumbers::open(tx)?;
    let mut chunks = tx
        .open_table(SEARCH_POSTINGS)
        .context("open search index")?;
    let lower = match &from {
        Some((w, d, i)) => Bound::Excluded((w.as_str(), *d, *i)),
        None => Bound::Unbounded,
    };
    let rows: Vec<(Key, Vec<u8>)> = chunks
        .range::<(&str, i64, u64)>((lower, Bound::Unbounded))
        .context("read search index")?
        .take(PACK_CHUNKS)
        .map(|row| {
            let (k, v) = row.context("read search index")?;
            let (w, d, i) = k.value();
            Ok(((w.to_string(), d, i), v.value().to_vec()))
        })
        .collect::<Result<_>>()?;
    let mut rewritten = 0;
    for ((w, d, i), v) in &rows {
        let mut c = match Chunk::decode(*d, *i, v) {
            Ok(c) if c.numbered() => continue,
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("word index chunk left as it is: {e}");
                continue;
            }
        };
        c.number(|p| numbers.assign(p))?;
        chunks
            .insert((w.as_str(), *d, *i), c.encode()?.as_slice())
            .context("write search index")?;
        rewritten += 1;
    }
    match rows.last() {
        Some((last, _)) if rows.len() == PACK_CHUNKS => {
            set_mark(tx, last)?;
            Ok((rewritten, false))
        }
        _ => {
            let mut meta = tx.open_table(META).context("open meta")?;
            meta.remove(KEY_PLACES).context("write meta")?;
            Ok((rewritten, true))
        }
    }
}

/// Places by number in one read transaction, through the cache; the
/// table is opened only for a number the cache does not hold.
pub(super) struct Names<'a> {
    tx: &'a ReadTransaction,
    /// None until opened; then None inside if the store has no such table.
    table: Option<Option<ReadOnlyTable<u32, &'static str>>>,
    cache: &'a PlaceCache,
}

impl<'a> Names<'a> {
    pub(super) fn new(tx: &'a ReadTransaction, cache: &'a PlaceCache) -> Names<'a> {
        Names {
            tx,
            table: None,
            cache,
        }
    }

    /// The place `p` names; a number no place has is damage.
    pub(super) fn name(&mut self, p: &Place) -> Result<String> {
        let n = match p {
            Place::Name(s) => return Ok(s.clone()),
            Place::Id(n) => *n,
        };
        if let Some(s) = self.cache.get(&n) {
            return Ok(s);
        }
        if self.table.is_none() {
            self.table = Some(match self.tx.open_table(SEARCH_PLACE_NAMES) {
                Ok(t) => Some(t),
                Err(TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e).context("open search places"),
            });
        }
        let found = match self.table.as_ref().and_then(Option::as_ref) {
            Some(t) => t.get(n).context("read search places")?,
            None => None,
        };
        let s = found.map(|g| g.value().to_string()).ok_or_else(|| {
            Error::storage_msg(format!("search index chunk names unknown place {n}"))
        })?;
        self.cache.put(n, s.clone());
        Ok(s)
    }
}
