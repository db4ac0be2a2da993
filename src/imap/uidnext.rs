//! "Nothing new" without UIDNEXT.
//!
//! RFC 3501 §7.1 makes the `[UIDNEXT]` response code of SELECT/EXAMINE a
//! MUST, but Courier-IMAP 5 sends none. Without it the UIDNEXT shortcut of
//! imap::fetch never applies, and every fetch of an idle account lists all
//! UIDs of INBOX (0.14–0.49 s for 3,000 mails). So the sync state keeps a
//! UIDNEXT of our own for such servers: one above the highest UID of the
//! last complete listing ([`stand_in`]); every UID below it was listed and
//! stored then. The next fetch asks `UID SEARCH UID n:*` ([`any_from`]),
//! whose answer is a few bytes whatever the size of INBOX; only when it
//! names a UID at or above `n` is INBOX listed.
//!
//! RFC 3501 §6.4.8 / §9 ("seq-range"): `n:*` is the range between `n` and
//! the highest UID in use, in either order, so with nothing new it still
//! returns the last mail's UID (below `n`). Only UIDs ≥ `n` count.
//!
//! Mails expunged by others do not matter here: a UIDNEXT from the server
//! does not tell about them either, and deletes on the server only follow
//! a fetch that found something new.

use std::collections::HashSet;

use super::syncstate::SyncState;
use super::wire::{imap_error, timed, Session};
use crate::error::Result;
use crate::net::Timeouts;

/// The UIDNEXT to remember after a complete fetch: the server's when it
/// sent one, else one above the highest UID listed, never below what the
/// last complete fetch of the same UIDVALIDITY remembered (an emptied
/// INBOX lists nothing, yet its old UIDs stay used, RFC 3501 §2.3.1.1).
pub(super) fn stand_in(
    server: Option<u32>,
    previous: Option<SyncState>,
    uidvalidity: u32,
    listed: &[(u32, u64)],
) -> u32 {
    if let Some(n) = server.filter(|n| *n != 0) {
        return n;
    }
    let highest = listed.iter().map(|(uid, _)| *uid).max().unwrap_or(0);
    let before = previous
        .filter(|p| p.uidvalidity == uidvalidity)
        .map_or(0, |p| p.uidnext);
    highest.saturating_add(1).max(before).max(1)
}

/// Whether the server holds a mail with a UID of at least `from`, asked
/// with `UID SEARCH UID from:*` (see the module docs).
pub(super) async fn any_from(
    session: &mut Session,
    t: &Timeouts,
    host: &str,
    from: u32,
) -> Result<bool> {
    let what = "looking for new mail (UID SEARCH)";
    let found = timed(t, host, what, async {
        session
            .uid_search(format!("UID {from}:*"))
            .await
            .map_err(|e| imap_error(host, what, e))
    })
    .await?;
    Ok(at_or_above(&found, from))
}

/// Whether `found` names a UID ≥ `from` (the answer to `n:*` may name the
/// highest UID in use below `n`).
fn at_or_above(found: &HashSet<u32>, from: u32) -> bool {
    found.iter().any(|uid| *uid >= from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: u32 = 7;

    fn state(uidnext: u32) -> Option<SyncState> {
        Some(SyncState {
            uidvalidity: V,
            uidnext,
        })
    }

    #[test]
    fn the_servers_uidnext_wins() {
        assert_eq!(stand_in(Some(40), state(90), V, &[(3, 1)]), 40);
    }

    #[test]
    fn without_one_the_highest_listed_uid_plus_one() {
        assert_eq!(stand_in(None, None, V, &[(3, 1), (9, 1), (4, 1)]), 10);
        assert_eq!(stand_in(Some(0), None, V, &[(3, 1)]), 4);
    }

    #[test]
    fn an_emptied_inbox_keeps_the_remembered_value_of_its_validity() {
        assert_eq!(stand_in(None, state(10), V, &[]), 10);
        assert_eq!(stand_in(None, state(10), V + 1, &[]), 1);
        assert_eq!(stand_in(None, None, V, &[]), 1);
    }

    #[test]
    fn the_last_uid_below_n_is_not_new() {
        // `UID SEARCH UID 10:*` with UIDs 1..=9 answers `* SEARCH 9`.
        assert!(!at_or_above(&HashSet::from([9]), 10));
        assert!(!at_or_above(&HashSet::new(), 10));
        assert!(at_or_above(&HashSet::from([9, 10]), 10));
        assert!(at_or_above(&HashSet::from([12]), 10));
    }
}
