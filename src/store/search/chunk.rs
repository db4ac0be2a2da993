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
//! The value (schema 17), all numbers LEB128 varints:
//! - a 0 byte, which no schema 10 value starts with (those start with
//!   their number of places, at least 1);
//! - the number of distinct places P (>= 1), then each place's number in
//!   `search_places` (`super::places`);
//! - when P > 1, the place index of the key posting;
//! - for every further posting, oldest first: its step from the previous
//!   one (`crate::store::deltas`: date delta, then id delta); then, when
//!   P > 1, its place index.
//!
//! Schemas 10 to 16 wrote each place as its byte length and its UTF-8
//! bytes (no leading 0); such values are read as long as a store still
//! has them ([`Place::Name`]) and rewritten by `super::places`.
//!
//! Why the places are numbered: most chunks hold one or a few postings
//! (words met in one or few mails: a number, a customer's name), so the
//! place string (10-20 bytes) was most of such a row's value. Why still
//! per chunk, not per word or store-wide per posting: a chunk is then read
//! and written on its own (one row, plus a number looked up once per
//! place, not per posting), and the postings of one word mostly share one
//! or two places (the account's inbox). The numbering is add-only (a
//! number never changes or goes to another place), so nothing has to be
//! kept in step on delete or restore: a chunk's numbers stay right for
//! the life of the store and travel with it in a backup.
//! docs/PERFORMANCE.md ("Word index places by number") has the
//! measurements.

use crate::error::{Error, Result};
use crate::store::deltas;
use crate::store::varint::{self, Bad};

/// The most postings a chunk holds. Adding one rewrites its chunk, so a
/// word in every mail ("com") costs one chunk rewrite of at most this many
/// postings (about 4 bytes each) per fetched mail, at any store size; and
/// 128 of them stay well inside one 4 KiB page next to other chunks.
pub const CHUNK_MAX: usize = 128;

/// The first byte of a value of schema 17 (module docs).
const NUMBERED: u8 = 0;

/// A place of a chunk: its number, or (a value written before schema 17)
/// the place itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Id(u32),
    Name(String),
}

/// A decoded chunk: `(date, id, place index)` ascending, and its places.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk {
    pub entries: Vec<(i64, u64, usize)>,
    pub places: Vec<Place>,
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

    /// Whether every place is a number (nothing left of schema 10).
    pub fn numbered(&self) -> bool {
        self.places.iter().all(|p| matches!(p, Place::Id(_)))
    }

    /// Give every place written as a string its number.
    pub fn number(&mut self, mut f: impl FnMut(&str) -> Result<u32>) -> Result<()> {
        for p in &mut self.places {
            if let Place::Name(name) = p {
                *p = Place::Id(f(name)?);
            }
        }
        Ok(())
    }

    /// Add or replace the posting at (date, id).
    pub fn insert(&mut self, date: i64, id: u64, place: u32) {
        let p = match self.places.iter().position(|x| *x == Place::Id(place)) {
            Some(p) => p,
            None => {
                self.places.push(Place::Id(place));
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
    /// uses any more are left out. A place not numbered yet
    /// ([`Chunk::number`]) is an error.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut map = vec![usize::MAX; self.places.len()];
        let mut used: Vec<u32> = Vec::new();
        for e in &self.entries {
            if let Some(slot) = map.get_mut(e.2) {
                if *slot == usize::MAX {
                    *slot = used.len();
                    match self.places.get(e.2) {
                        Some(Place::Id(n)) => used.push(*n),
                        _ => return Err(bad("a place without its number")),
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(4 + used.len() * 2 + self.entries.len() * 4);
        out.push(NUMBERED);
        put(&mut out, used.len() as u64);
        for n in &used {
            put(&mut out, u64::from(*n));
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
        Ok(out)
    }

    /// The places of a value, numbered or (before schema 17) named.
    fn decode_places(b: &[u8], at: &mut usize) -> Result<Vec<Place>> {
        let numbered = b.first() == Some(&NUMBERED);
        if numbered {
            *at += 1;
        }
        let n = get(b, at)?;
        if n == 0 || n > CHUNK_MAX as u64 * 4 {
            return Err(bad("impossible number of places"));
        }
        let mut places = Vec::with_capacity(n as usize);
        for _ in 0..n {
            if numbered {
                let id = u32::try_from(get(b, at)?).map_err(|_| bad("place number too big"))?;
                places.push(Place::Id(id));
                continue;
            }
            let len = usize::try_from(get(b, at)?).map_err(|_| bad("place too long"))?;
            let end = at.checked_add(len).ok_or_else(|| bad("place too long"))?;
            let s = b.get(*at..end).ok_or_else(|| bad("cut off"))?;
            let s = String::from_utf8(s.to_vec()).map_err(|_| bad("place not UTF-8"))?;
            places.push(Place::Name(s));
            *at = end;
        }
        Ok(places)
    }

    /// The chunk of a row keyed `(word, date, id)`, of either form. A
    /// damaged value is an error, never a guess: postings must ascend and
    /// places exist (whether a place number is known is the reader's
    /// check).
    pub fn decode(date: i64, id: u64, b: &[u8]) -> Result<Chunk> {
        let mut at = 0;
        let places = Self::decode_places(b, &mut at)?;
        let n = places.len() as u64;
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

    fn chunk(entries: &[(i64, u64, u32)]) -> Chunk {
        let mut c = Chunk::default();
        for (d, id, p) in entries {
            c.insert(*d, *id, *p);
        }
        c
    }

    /// A value as schema 10 to 14 wrote it: places by name.
    fn named(places: &[&str], rest: &[u8]) -> Vec<u8> {
        let mut out = vec![places.len() as u8];
        for p in places {
            out.push(p.len() as u8);
            out.extend_from_slice(p.as_bytes());
        }
        out.extend_from_slice(rest);
        out
    }

    #[test]
    fn chunks_round_trip_with_one_and_many_places() {
        for c in [
            chunk(&[(5, 9, 1)]),
            chunk(&[(5, 9, 7), (5, 10, 7), (5, 12, 7), (9, 3, 7)]),
            chunk(&[(-3, u64::MAX, 1), (i64::MAX, 0, 300), (7, 1, 1)]),
            chunk(&[(i64::MIN, 0, 1), (i64::MIN, 1, 2), (i64::MAX, 5, u32::MAX)]),
        ] {
            let (d, id) = c.key().unwrap();
            let back = Chunk::decode(d, id, &c.encode().unwrap()).unwrap();
            assert_eq!(back.entries.len(), c.entries.len());
            for (a, b) in back.entries.iter().zip(&c.entries) {
                assert_eq!((a.0, a.1), (b.0, b.1));
                assert_eq!(back.places[a.2], c.places[b.2]);
            }
        }
    }

    #[test]
    fn unused_places_are_dropped_and_one_place_costs_no_index() {
        let mut c = chunk(&[(1, 1, 4), (2, 2, 9), (3, 3, 9)]);
        assert!(c.remove(1, 1));
        assert!(!c.remove(1, 1));
        let back = Chunk::decode(2, 2, &c.encode().unwrap()).unwrap();
        assert_eq!(back.places, vec![Place::Id(9)]);
        // 1 (form) + 1 (count) + 1 (place) + 2 (one more posting: date
        // +1, id +1 zigzagged).
        assert_eq!(c.encode().unwrap(), vec![0, 1, 9, 1, 2]);
        // A posting alone: its key says the rest.
        assert_eq!(chunk(&[(1, 1, 4)]).encode().unwrap(), vec![0, 1, 4]);
    }

    #[test]
    fn schema_10_values_are_read_and_numbered() {
        // Postings (1, 1, "a"), (2, 3, "bb"), (2, 4, "a").
        let old = named(&["a", "bb"], &[0, 1, 4, 1, 0, 0, 0]);
        let mut c = Chunk::decode(1, 1, &old).unwrap();
        assert!(!c.numbered());
        assert_eq!(c.entries, vec![(1, 1, 0), (2, 3, 1), (2, 4, 0)]);
        assert_eq!(c.places[1], Place::Name("bb".into()));
        assert!(c.encode().is_err(), "a place without its number");
        c.number(|p| Ok(p.len() as u32 + 10)).unwrap();
        assert!(c.numbered());
        let back = Chunk::decode(1, 1, &c.encode().unwrap()).unwrap();
        assert_eq!(back.places, vec![Place::Id(11), Place::Id(12)]);
        assert_eq!(back.entries, c.entries);
    }

    #[test]
    fn damaged_chunks_are_errors() {
        let good = chunk(&[(1, 1, 1), (2, 2, 2)]).encode().unwrap();
        for cut in 0..good.len() - 1 {
            // Every strict prefix fails or yields fewer postings; none
            // panics.
            let _ = Chunk::decode(1, 1, &good[..cut]);
        }
        assert!(Chunk::decode(1, 1, &[]).is_err());
        assert!(Chunk::decode(1, 1, &[0]).is_err(), "no count");
        assert!(Chunk::decode(1, 1, &[0, 0]).is_err(), "no places");
        assert!(Chunk::decode(1, 1, &[0, 2, 1]).is_err(), "cut places");
        let big = [0, 1, 0x80, 0x80, 0x80, 0x80, 0x10];
        assert!(Chunk::decode(1, 1, &big).is_err(), "number past u32");
        assert!(Chunk::decode(1, 1, &[0, 2, 1, 2, 7]).is_err(), "index 7");
        assert!(Chunk::decode(1, 1, &[1, 5, b'a']).is_err(), "cut place");
        assert!(Chunk::decode(1, 1, &named(&["a", "b"], &[7])).is_err());
        assert!(Chunk::decode(1, 1, &[1, 1, 0xff]).is_err(), "not UTF-8");
        assert!(Chunk::decode(i64::MAX, 1, &[0, 1, 1, 1, 0]).is_err());
        assert!(Chunk::decode(1, u64::MAX, &[0, 1, 1, 0, 0]).is_err());
        assert!(Chunk::decode(i64::MAX, 1, &named(&["a"], &[1, 0])).is_err());
    }
}
