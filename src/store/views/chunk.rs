//! One chunk of a view list (schema 16): up to [`CHUNK_MAX`] entries of
//! one scope in one row `(scope, oldest date, oldest id) -> packed steps`
//! of [`VIEW_CHUNKS`](crate::store::schema::VIEW_CHUNKS).
//!
//! Why chunks: one row per entry (schema 14's `view_entries`) cost a 20
//! byte key and redb's per-row overhead for every entry, five per mail,
//! and entries arriving out of date order left the leaf pages about half
//! full. A chunk names its scope and oldest entry once and every further
//! entry as the step from the one before (`crate::store::deltas`, the
//! encoding the word index chunks use), 3–4 bytes for mail a few minutes
//! apart. Keyed by the oldest entry as the word index chunks are: mail
//! mostly arrives newest, so a new entry extends the newest chunk of its
//! scope without changing its key.
//!
//! The value is the steps of the entries after the key entry, oldest
//! first; an empty value is a chunk of the key entry alone.

use crate::error::{Error, Result};
use crate::store::deltas::{self, Pos};

/// The most entries a chunk is written with. Adding one entry outside a
/// batch rewrites its chunk, about 4 bytes an entry, so 128 keeps that
/// rewrite near half a KiB while the 20 bytes of key and redb's per-row
/// overhead spread over 128 entries. (The measurements are in
/// docs/PERFORMANCE.md, "View lists in chunks".)
pub const CHUNK_MAX: usize = 128;

/// The most entries a chunk is read with: room for a later, larger
/// [`CHUNK_MAX`], while a damaged row cannot make a reader allocate
/// without bound.
const READ_MAX: usize = CHUNK_MAX * 4;

fn bad(why: &str) -> Error {
    Error::storage_msg(format!("view list chunk is damaged: {why}"))
}

/// The value of the chunk holding `entries` (ascending, not empty: the
/// first is the row's key).
pub fn encode(entries: &[Pos]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 4);
    for pair in entries.windows(2) {
        deltas::put(&mut out, pair[0], pair[1]);
    }
    out
}

/// The entries of the row keyed `key` with value `b`, ascending. A damaged
/// value is an error, never a guess.
pub fn decode(key: Pos, b: &[u8]) -> Result<Vec<Pos>> {
    let mut out = Vec::with_capacity((b.len() / 3 + 1).min(READ_MAX));
    out.push(key);
    let mut at = 0;
    let mut prev = key;
    while at < b.len() {
        if out.len() >= READ_MAX {
            return Err(bad("too many entries"));
        }
        prev = deltas::get(b, &mut at, prev).map_err(|e| bad(e.why()))?;
        out.push(prev);
    }
    Ok(out)
}

/// Cut `entries` (ascending) into chunks of at most [`CHUNK_MAX`]. With
/// `fill` (the new entries all came after the old ones: mail arriving in
/// date order) every chunk but the newest is full, so the older chunks
/// stay full for good; otherwise the pieces are even, so that entries
/// filed later between them find room.
pub fn cut(entries: Vec<Pos>, fill: bool) -> Vec<Vec<Pos>> {
    if entries.len() <= CHUNK_MAX {
        return vec![entries];
    }
    let pieces = entries.len().div_ceil(CHUNK_MAX);
    let size = if fill {
        CHUNK_MAX
    } else {
        entries.len().div_ceil(pieces)
    };
    entries.chunks(size).map(<[Pos]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip() {
        for list in [
            vec![(5, 9)],
            vec![(5, 9), (5, 10), (5, 12), (9, 3)],
            vec![(i64::MIN, 0), (i64::MIN, 1), (-3, u64::MAX), (i64::MAX, 0)],
        ] {
            let v = encode(&list);
            assert_eq!(decode(list[0], &v).unwrap(), list);
        }
        assert!(encode(&[(5, 9)]).is_empty(), "the key entry costs nothing");
        let day: Vec<Pos> = (0..100)
            .map(|i| (1_700_000_000 + i * 300, 50 + i as u64))
            .collect();
        assert_eq!(
            encode(&day).len(),
            99 * 3,
            "3 bytes a mail five minutes apart"
        );
    }

    #[test]
    fn damaged_chunks_are_errors_not_panics() {
        let good = encode(&[(1, 1), (2, 2), (300, 3)]);
        for cut in 0..good.len() {
            // Every strict prefix fails or yields fewer entries; none panics.
            let _ = decode((1, 1), &good[..cut]);
        }
        assert!(decode((1, 1), &[1]).is_err(), "id missing");
        assert!(decode((1, 1), &[0x80]).is_err(), "number cut off");
        assert!(decode((i64::MAX, 1), &[1, 0]).is_err(), "date out of range");
        assert!(decode((1, u64::MAX), &[0, 0]).is_err(), "id out of range");
        let endless = vec![0u8; 2 * READ_MAX + 2];
        assert!(decode((1, 1), &endless).is_err(), "too many entries");
    }

    #[test]
    fn cutting_fills_in_date_order_and_halves_otherwise() {
        let list: Vec<Pos> = (0..300).map(|i| (i, 0)).collect();
        let sizes = |v: Vec<Vec<Pos>>| v.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(cut(list.clone(), true)), vec![128, 128, 44]);
        assert_eq!(sizes(cut(list.clone(), false)), vec![100, 100, 100]);
        assert_eq!(sizes(cut(list[..129].to_vec(), false)), vec![65, 64]);
        assert_eq!(sizes(cut(list[..128].to_vec(), false)), vec![128]);
    }
}
