//! UID sets and fetch batches: pure functions, no I/O.
//!
//! Why compress: RFC 3501 §9 `sequence-set` allows ranges (`3:7`), and a
//! command line listing 1,000 single UIDs would be needlessly long; servers
//! cap line length (Dovecot: 64 KiB, RFC 7162 §4 recommends clients stay
//! under 8 KiB). Why batch: one durable store transaction per batch (group
//! commit, DESIGN.md §5) bounds both the memory a batch holds and the work
//! lost when the connection breaks.

/// Most mails per fetch batch.
pub const BATCH_MAILS: usize = 100;
/// Most bytes (by RFC822.SIZE) per fetch batch; a single larger mail still
/// forms a batch of its own.
pub const BATCH_BYTES: u64 = 16 * 1024 * 1024;
/// Most UIDs in one STORE/EXPUNGE command, so that even a worst-case set of
/// scattered UIDs stays far below the servers' command line limits.
pub const COMMAND_UIDS: usize = 500;

/// Compresses UIDs into an IMAP sequence set, e.g. `[1,2,3,7,9,10]` ->
/// `"1:3,7,9:10"`. Input order does not matter; duplicates are dropped.
pub fn compress(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// Splits `(uid, size)` pairs, in the given order, into batches of at most
/// [`BATCH_MAILS`] mails and [`BATCH_BYTES`] bytes.
pub fn batches(mails: &[(u32, u64)]) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    let mut cur: Vec<u32> = Vec::new();
    let mut bytes = 0u64;
    for &(uid, size) in mails {
        if !cur.is_empty() && (cur.len() >= BATCH_MAILS || bytes.saturating_add(size) > BATCH_BYTES)
        {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        cur.push(uid);
        bytes = bytes.saturating_add(size);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The server id of an INBOX mail: `imap:INBOX:<uidvalidity>:<uid>`. A
/// UID means something only together with its UIDVALIDITY (RFC 3501 §2.3.1.1).
pub fn server_id(uidvalidity: u32, uid: u32) -> String {
    format!("{}{uid}", prefix(uidvalidity))
}

/// The server id prefix of every INBOX mail under one UIDVALIDITY; ends in
/// `:` so that UIDVALIDITY 12 never matches ids of UIDVALIDITY 123.
pub fn prefix(uidvalidity: u32) -> String {
    format!("imap:INBOX:{uidvalidity}:")
}

/// The UID of a server id under the given prefix, if it is one.
pub fn uid_of(server_id: &str, prefix: &str) -> Option<u32> {
    server_id.strip_prefix(prefix)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compresses_runs_and_singles() {
        assert_eq!(compress(&[]), "");
        assert_eq!(compress(&[5]), "5");
        assert_eq!(compress(&[10, 9, 1, 2, 3, 7, 3]), "1:3,7,9:10");
        assert_eq!(compress(&[u32::MAX - 1, u32::MAX]), "4294967294:4294967295");
    }

    #[test]
    fn batches_by_count() {
        let mails: Vec<(u32, u64)> = (1..=250).map(|u| (u, 10)).collect();
        let b = batches(&mails);
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        assert_eq!(b[2][0], 201);
    }

    #[test]
    fn batches_by_bytes_and_oversized_alone() {
        let mb = 1024 * 1024;
        let mails = vec![(1, 10 * mb), (2, 10 * mb), (3, 40 * mb), (4, 1)];
        let b = batches(&mails);
        assert_eq!(b, vec![vec![1], vec![2], vec![3], vec![4]]);
        let small = vec![(1, 8 * mb), (2, 8 * mb), (3, 1)];
        assert_eq!(batches(&small), vec![vec![1, 2], vec![3]]);
    }

    #[test]
    fn server_ids_do_not_collide_across_uidvalidity() {
        let id = server_id(123, 7);
        assert_eq!(id, "imap:INBOX:123:7");
        assert_eq!(uid_of(&id, &prefix(123)), Some(7));
        assert_eq!(uid_of(&id, &prefix(12)), None);
        assert_eq!(uid_of("imap:INBOX:123:x", &prefix(123)), None);
    }
}
