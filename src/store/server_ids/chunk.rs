//! One chunk of IMAP server ids (schema 20): up to [`CHUNK_MAX`] pairs
//! (uid, message id) of one generation in one row
//! `(account, generation, first uid) -> packed pairs` of
//! [`SERVER_UIDS`](crate::store::schema::SERVER_UIDS).
//!
//! Only a canonical IMAP id is kept here ([`canonical`]): one that is its
//! generation (`imap:<folder>:<uidvalidity>:`) followed by a UID that
//! formats back to exactly the same text, so that the id read back from
//! a chunk is byte for byte the one the fetcher stored (invariant 2
//! compares them as strings). Anything else stays a row of `server_ids`.
//!
//! The value is the first pair's message id as a varint, then each further
//! pair as the step from the one before (`crate::store::deltas`, with the
//! UID in the place of the date): UIDs ascend strictly, so the UID step is
//! at least 1, and the message id step is zigzag-encoded, since a mail
//! seen again maps to an older id and a deleted one to the tombstone 0.
//! UIDs of one generation mostly arrive ascending with ascending message
//! ids, about 2 bytes a pair.

use crate::error::{Error, Result};
use crate::store::deltas;
use crate::store::varint;

/// One entry: (uid, message id).
pub type Pair = (u32, u64);

/// The most pairs a chunk is written with: a single insert outside a
/// batch rewrites its chunk, about 2 bytes a pair, while the key (account
/// and generation, some 30 bytes) and redb's per-row overhead spread over
/// all of them.
pub const CHUNK_MAX: usize = 128;

/// The most pairs a chunk is read with: room for a later, larger
/// [`CHUNK_MAX`], while a damaged row cannot make a reader allocate
/// without bound.
const READ_MAX: usize = CHUNK_MAX * 4;

fn bad(why: &str) -> Error {
    Error::storage_msg(format!("server id chunk is damaged: {why}"))
}

/// Split a canonical IMAP server id into its generation (ending in `:`)
/// and UID; None for any other form (module docs).
pub fn canonical(sid: &str) -> Option<(&str, u32)> {
    let cut = sid.rfind(':')? + 1;
    let (generation, digits) = sid.split_at(cut);
    if !generation.starts_with("imap:") || generation.len() <= "imap:".len() {
        return None;
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    let uid = digits.parse::<u32>().ok()?;
    Some((generation, uid))
}

/// The value of the chunk holding `pairs` (uids ascending, not empty: the
/// first uid is the row's key).
pub fn encode(pairs: &[Pair]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pairs.len() * 2 + 8);
    if let Some(first) = pairs.first() {
        varint::put(&mut out, first.1);
    }
    for w in pairs.windows(2) {
        deltas::put(&mut out, pos(w[0]), pos(w[1]));
    }
    out
}

fn pos(p: Pair) -> deltas::Pos {
    (i64::from(p.0), p.1)
}

/// The pairs of the row keyed `first` with value `b`, uids ascending. A
/// damaged value is an error, never a guess.
pub fn decode(first: u32, b: &[u8]) -> Result<Vec<Pair>> {
    let mut at = 0;
    let id = varint::get(b, &mut at).map_err(|_| bad("first id cut off"))?;
    let mut out = Vec::with_capacity((b.len() / 2 + 1).min(READ_MAX));
    out.push((first, id));
    let mut prev = pos((first, id));
    while at < b.len() {
        if out.len() >= READ_MAX {
            return Err(bad("too many pairs"));
        }
        let next = deltas::get(b, &mut at, prev).map_err(|e| bad(e.why()))?;
        if next.0 <= prev.0 {
            return Err(bad("uids not ascending"));
        }
        let uid = u32::try_from(next.0).map_err(|_| bad("uid out of range"))?;
        out.push((uid, next.1));
        prev = next;
    }
    Ok(out)
}

/// Cut `pairs` (ascending) into chunks of at most [`CHUNK_MAX`]. With
/// `appended` (the pairs that came last went after all others: UIDs
/// arriving in order) every piece but the last is full, so the older
/// chunks stay full for good; otherwise the pieces are even, so that UIDs
/// filed later between them find room.
pub fn pieces(pairs: &[Pair], appended: bool) -> impl Iterator<Item = &[Pair]> {
    let n = pairs.len().div_ceil(CHUNK_MAX).max(1);
    let size = match appended {
        true => CHUNK_MAX,
        false => pairs.len().div_ceil(n).max(1),
    };
    pairs.chunks(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_imap_ids_parse() {
        assert_eq!(canonical("imap:INBOX:7:42"), Some(("imap:INBOX:7:", 42)));
        assert_eq!(canonical("imap:a:b:c:0"), Some(("imap:a:b:c:", 0)));
        let max = format!("imap:INBOX:1:{}", u32::MAX);
        assert_eq!(canonical(&max), Some(("imap:INBOX:1:", u32::MAX)));
        for odd in [
            "imap:INBOX:1:007",
            "imap:INBOX:1:+7",
            "imap:INBOX:1:-7",
            "imap:INBOX:1:",
            "imap:INBOX:1:4294967296",
            "imap:INBOX:1:7 ",
            "imap:7",
            "pop3:x",
            "pop3:1:2",
            "",
            "IMAP:INBOX:1:7",
        ] {
            assert_eq!(canonical(odd), None, "{odd}");
        }
    }

    #[test]
    fn chunks_round_trip_and_stay_short() {
        for list in [
            vec![(5, 9)],
            vec![(5, 0), (6, 10), (9, 3), (10, 0), (11, u64::MAX)],
            vec![(0, u64::MAX), (1, 0), (u32::MAX, 1)],
        ] {
            let v = encode(&list);
            assert_eq!(decode(list[0].0, &v).unwrap(), list);
        }
        let run: Vec<Pair> = (0..100)
            .map(|i| (1000 + i, 50_000 + u64::from(i)))
            .collect();
        assert_eq!(encode(&run).len(), 3 + 99 * 2, "2 bytes a pair");
    }

    #[test]
    fn damaged_chunks_are_errors_not_panics() {
        let good = encode(&[(1, 1), (2, 2), (300, 3)]);
        for cut in 0..good.len() {
            let _ = decode(1, &good[..cut]);
        }
        assert!(decode(1, &[]).is_err(), "first id missing");
        assert!(decode(1, &[1, 1]).is_err(), "id step missing");
        assert!(decode(1, &[0x80]).is_err(), "number cut off");
        assert!(decode(1, &[1, 0, 0]).is_err(), "uid not ascending");
        assert!(decode(u32::MAX, &[1, 1, 0]).is_err(), "uid out of range");
        let endless = [vec![1u8], vec![1u8; 2 * READ_MAX + 2]].concat();
        assert!(decode(1, &endless).is_err(), "too many pairs");
    }

    #[test]
    fn cutting_fills_when_appended_and_evens_otherwise() {
        let list: Vec<Pair> = (0..300).map(|i| (i, 0)).collect();
        let sizes = |appended| {
            pieces(&list, appended)
                .map(<[Pair]>::len)
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(true), vec![128, 128, 44]);
        assert_eq!(sizes(false), vec![100, 100, 100]);
        let one: Vec<usize> = pieces(&list[..128], false).map(<[Pair]>::len).collect();
        assert_eq!(one, vec![128]);
    }
}
