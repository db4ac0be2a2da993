//! One chunk of the packed word index (schema 10): up to [`CHUNK_MAX`]
//! postings of one word, stored as one row
//! `(word, oldest date, oldest id) -> packed postings`.
//!
//! Why chunks: one row per (word, date, id) cost a key of the word and 16
//! bytes of date and id, a place string of 10–20 bytes and redb's per-row
//! overhead for every posting, and since a mail's words land all over the
//! key space the leaf pages stayed about half full. A chunk stores the word
//! once and each further posting as a few bytes of varint deltas, so a
//! word in hundreds of mails takes a fraction of a page.
//!
//! Why keyed by the *oldest* posting: mail mostly arrives newest, so a new
//! posting usually extends the newest chunk of its word without changing
//! that chunk's key (a key change is a remove and an insert).
//!
//! The value, all numbers LEB128 varints:
//! - the number of distinct places P (>= 1), then each place as its byte
//!   length and its UTF-8 bytes;
//! - when P > 1, the place index of the key posting;
//! - for every further posting, oldest first: its step from the previous
//!   one (`crate::store::deltas`: date delta, then id delta); then, when
//!   P > 1, its place index.
//!
//! The places are listed per chunk rather than in a store-wide table: a
//! chunk is then read and written on its own (one row, no second lookup,
//! nothing to keep in step on delete or restore), and the postings of one
//! word mostly share one or two places (the account's inbox), so the list
//! costs one place string per chunk. docs/SEARCH.md has the measurements.

use crate::error::{Error, Result};
use crate::store::deltas;
use crate::store::varint::{self, Bad};

/// The most postings a chunk holds. Adding one rewrites its chunk, so a
/// word in every mail ("com") costs one chunk rewrite of at most this many
/// postings (about 4 bytes each) per fetched mail, at any store size; and
/// 128 of them stay well inside one 4 KiB page next to other chunks.
pub const CHUNK_MAX: usize = 128;

/// A decoded chunk: `(date, id, place index)` ascending, and its places.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk {
    pub entries: Vec<(i64, u64, usize)>,
    pub places: Vec<String>,
}

fn bad(why: &str) -> Error {
    Error::storage_msg(format!("search index chunk is damaged: {why}"))
}

fn put(out: &mut Vec<u8>, v: u64) {
    varint::put(out, v);
}

fn get(b: &[u8], at: &mut usize) -> Result<u64> {
    varint::get(b, at).map_err(|e| match e {
        Bad::CutOff => bad("cut off"),
        Bad::TooLong => bad("number too long"),
    })
}

impl Chunk {
    /// The (date, id) of the key posting; None for an empty chunk.
    pub fn key(&self) -> Option<(i64, u64)> {
        self.entries.first().map(|e| (e.0, e.1))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add or replace the posting at (date, id).
    pub fn insert(&mut self, date: i64, id: u64, place: &str) {
        let p = match self.places.iter().position(|x| x == place) {
            Some(p) => p,
            None => {
                self.places.push(place.to_string());
                self.places.len() - 1
            }
        };
        match self
            .entries
            .binary_search_by(|e| (e.0, e.1).cmp(&(date, id)))
        {
            Ok(i) => self.entries[i].2 = p,
            Err(i) => self.entries.insert(i, (date, id, p)),
        }
    }

    /// Remove the posting at (date, id); whether it was there.
    pub fn remove(&mut self, date: i64, id: u64) -> bool {
        match self
            .entries
            .binary_search_by(|e| (e.0, e.1).cmp(&(date, id)))
        {
            Ok(i) => {
                self.entries.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Split off the postings from `at` on into a chunk of their own.
    pub fn split_off(&mut self, at: usize) -> Chunk {
        Chunk {
            entries: self.entries.split_off(at),
            places: self.places.clone(),
        }
    }

    /// The value of this chunk's row (module docs); places no posting
    /// uses any more are left out.
    pub fn encode(&self) -> Vec<u8> {
        let mut map = vec![usize::MAX; self.places.len()];
        let mut used: Vec<&str> = Vec::new();
        for e in &self.entries {
            if let Some(slot) = map.get_mut(e.2) {
                if *slot == usize::MAX {
                    *slot = used.len();
                    used.push(self.places.get(e.2).map_or("", String::as_str));
                }
            }
        }
        let mut out = Vec::with_capacity(8 + self.entries.len() * 5);
        put(&mut out, used.len() as u64);
        for p in &used {
            put(&mut out, p.len() as u64);
            out.extend_from_slice(p.as_bytes());
        }
        let index = |e: &(i64, u64, usize)| map.get(e.2).copied().unwrap_or(0) as u64;
        let many = used.len() > 1;
        let mut prev: Option<(i64, u64)> = None;
        for e in &self.entries {
            if let Some(p) = prev {
                deltas::put(&mut out, p, (e.0, e.1));
            }
            if many {
                put(&mut out, index(e));
            }
            prev = Some((e.0, e.1));
        }
        out
    }

    /// The chunk of a row keyed `(word, date, id)`. A damaged value is an
    /// error, never a guess: postings must ascend and places exist.
    pub fn decode(date: i64, id: u64, b: &[u8]) -> Result<Chunk> {
        let mut at = 0;
        let n = get(b, &mut at)?;
        if n == 0 || n > CHUNK_MAX as u64 * 4 {
            return Err(bad("impossible number of places"));
        }
        let mut places = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let len = usize::try_from(get(b, &mut at)?).map_err(|_| bad("place too long"))?;
            let end = at.checked_add(len).ok_or_else(|| bad("place too long"))?;
            let s = b.get(at..end).ok_or_else(|| bad("cut off"))?;
            places.push(String::from_utf8(s.to_vec()).map_err(|_| bad("place not UTF-8"))?);
            at = end;
        }
        let many = places.len() > 1;
        let place = |at: &mut usize| -> Result<usize> {
            if !many {
                return Ok(0);
            }
            let p = get(b, at)?;
            if p >= n {
                return Err(bad("unknown place"));
            }
            Ok(p as usize)
        };
        let mut entries = vec![(date, id, place(&mut at)?)];
        let (mut d, mut i) = (date, id);
        while at < b.len() {
            if entries.len() >= CHUNK_MAX * 4 {
                return Err(bad("too many postings"));
            }
            (d, i) = deltas::get(b, &mut at, (d, i)).map_err(|e| bad(e.why()))?;
            entries.push((d, i, place(&mut at)?));
        }
        Ok(Chunk { entries, places })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(entries: &[(i64, u64, &str)]) -> Chunk {
        let mut c = Chunk::default();
        for (d, id, p) in entries {
            c.insert(*d, *id, p);
        }
        c
    }

    #[test]
    fn chunks_round_trip_with_one_and_many_places() {
        for c in [
            chunk(&[(5, 9, "na\x1finbox")]),
            chunk(&[(5, 9, "p"), (5, 10, "p"), (5, 12, "p"), (9, 3, "p")]),
            chunk(&[(-3, u64::MAX, "a"), (i64::MAX, 0, "b"), (7, 1, "a")]),
            chunk(&[(i64::MIN, 0, "x"), (i64::MIN, 1, "y"), (i64::MAX, 5, "z")]),
        ] {
            let (d, id) = c.key().unwrap();
            let back = Chunk::decode(d, id, &c.encode()).unwrap();
            assert_eq!(back.entries.len(), c.entries.len());
            for (a, b) in back.entries.iter().zip(&c.entries) {
                assert_eq!((a.0, a.1), (b.0, b.1));
                assert_eq!(back.places[a.2], c.places[b.2]);
            }
        }
    }

    #[test]
    fn unused_places_are_dropped_and_one_place_costs_no_index() {
        let mut c = chunk(&[(1, 1, "old"), (2, 2, "new"), (3, 3, "new")]);
        assert!(c.remove(1, 1));
        assert!(!c.remove(1, 1));
        let back = Chunk::decode(2, 2, &c.encode()).unwrap();
        assert_eq!(back.places, vec!["new".to_string()]);
        // 1 (count) + 1 + 3 (place) + 2 (one more posting): no indexes.
        assert_eq!(c.encode().len(), 7);
    }

    #[test]
    fn damaged_chunks_are_errors() {
        let good = chunk(&[(1, 1, "a"), (2, 2, "b")]).encode();
        for cut in 0..good.len() - 1 {
            // Every strict prefix but the header-only one fails or yields
            // fewer postings; none panics.
            let _ = Chunk::decode(1, 1, &good[..cut]);
        }
        assert!(Chunk::decode(1, 1, &[]).is_err());
        assert!(Chunk::decode(1, 1, &[0]).is_err(), "no places");
        assert!(Chunk::decode(1, 1, &[1, 5, b'a']).is_err(), "cut place");
        assert!(Chunk::decode(1, 1, &[2, 1, b'a', 1, b'b', 7]).is_err());
        assert!(Chunk::decode(1, 1, &[1, 1, 0xff]).is_err(), "not UTF-8");
        assert!(Chunk::decode(i64::MAX, 1, &[1, 1, b'a', 1, 0]).is_err());
        assert!(Chunk::decode(1, u64::MAX, &[1, 1, b'a', 0, 0]).is_err());
    }
}
