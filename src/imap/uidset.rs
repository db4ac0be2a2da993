//! UID sets and server ids: pure functions, no I/O. (Fetch batches are
//! cut by `crate::pipeline::split`.)
//!
//! Why compress: RFC 3501 §9 `sequence-set` allows ranges (`3:7`), and a
//! command line listing 1,000 single UIDs would be needlessly long; servers
//! cap line length (Dovecot: 64 KiB, RFC 7162 §4 recommends clients stay
//! under 8 KiB).

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
    fn server_ids_do_not_collide_across_uidvalidity() {
        let id = server_id(123, 7);
        assert_eq!(id, "imap:INBOX:123:7");
        assert_eq!(uid_of(&id, &prefix(123)), Some(7));
        assert_eq!(uid_of(&id, &prefix(12)), None);
        assert_eq!(uid_of("imap:INBOX:123:x", &prefix(123)), None);
    }
}
