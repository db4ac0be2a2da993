//! Servers without stable UIDs: GNU mailutils imap4d gives INBOX a new
//! UIDVALIDITY in every session once mail was appended to its mbox
//! (nothing writes its `X-IMAPbase` back while clients only EXAMINE), and
//! its bookkeeping fields (`X-UID`, `Status`, …) in the bytes change with
//! it. RFC 3501 §2.3.1.1 lets a server do so, and then every UID of the
//! old validity names nothing: a careful client reads the mailbox again.
//!
//! A mail seen again is recognised by its mail key, which leaves those
//! fields out (crate::store::digest), so nothing is stored twice and a
//! mail deleted in the CRM stays deleted. Downloading everything again is
//! fine after a rare change; on such a server it happens on every fetch.
//! So the sync state counts consecutive sessions with a new UIDVALIDITY
//! (`imap:INBOX:renumbered`); at [`SESSIONS`] the account counts as
//! renumbering, once said in LastError and the journal (the fetch still
//! succeeds), and from then on a new validity costs one
//! `UID FETCH <set> (UID RFC822.SIZE BODY.PEEK[HEADER])` of the listed
//! mails instead of their bodies: the header without the bookkeeping
//! fields and the body's length (RFC822.SIZE minus the header's) make the
//! header key, and only mails whose key the store does not know (or knows
//! for two different mails) are downloaded in full.
//!
//! The mark stays once set: on a server that turns stable it costs
//! nothing (a fetch under an unchanged validity is the usual one), and a
//! later change is still cheaper this way than with every body.

use std::collections::HashSet;

use super::uidset::{compress, server_id, COMMAND_UIDS};
use super::wire::{imap_error, next, timed, Session};
use crate::account::Account;
use crate::error::Result;
use crate::fetch::blocking;
use crate::fetch::deadline::Deadline;
use crate::net::Timeouts;
use crate::store::digest::header_key;
use crate::store::Store;

/// Sync-state key: consecutive sessions with a new UIDVALIDITY, or
/// `renumbers` once the account counts as renumbering.
pub const STATE_KEY: &str = "imap:INBOX:renumbered";
const MARK: &str = "renumbers";

/// Consecutive sessions with a new UIDVALIDITY that mark a server.
pub const SESSIONS: u32 = 3;

/// Deadline work (crate::fetch::deadline) allowed per mail for its header.
const HEADER_WORK: u64 = 64 * 1024;

/// What this session's UIDVALIDITY says about the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Renumbering {
    /// The validity differs from the last fetch's.
    pub changed: bool,
    /// The server counts as renumbering (maybe from this session on).
    pub marked: bool,
    /// It was marked by this session: say so, once.
    pub newly: bool,
}

impl Renumbering {
    /// Whether the listed mails are first recognised by their headers.
    pub fn by_header(&self) -> bool {
        self.changed && self.marked
    }
}

/// Counts this session (`changed`: its UIDVALIDITY differs from the last
/// fetch's) in the sync state.
pub(super) fn observe(store: &Store, account: &Account, changed: bool) -> Result<Renumbering> {
    let before = blocking(|| store.sync_state(&account.id, STATE_KEY))?;
    if before.as_deref() == Some(MARK) {
        return Ok(Renumbering {
            changed,
            marked: true,
            newly: false,
        });
    }
    let count: u32 = before.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0);
    let count = if changed { count.saturating_add(1) } else { 0 };
    let marked = count >= SESSIONS;
    let value = if marked {
        MARK.to_string()
    } else {
        count.to_string()
    };
    if before.as_deref().unwrap_or("0") != value {
        blocking(|| store.set_sync_state(&account.id, STATE_KEY, &value))?;
    }
    Ok(Renumbering {
        changed,
        marked,
        newly: marked,
    })
}

impl Renumbering {
    /// The warning of the session that marked the server, also journaled;
    /// None for any other.
    pub fn warning(&self, account: &Account) -> Option<String> {
        if !self.newly {
            return None;
        }
        let host = account.host.as_str();
        let text = format!(
            "{host} gave INBOX a new UIDVALIDITY in {SESSIONS} sessions in a row (RFC 3501 \
             §2.3.1.1; GNU imap4d does so after new mail): its mails are recognised by their \
             headers from now on instead of being downloaded again"
        );
        tracing::warn!(account_id = %account.id, host, "{text}");
        Some(text)
    }
}

/// Recognises `new` (UID, listed size) by their header keys: maps those
/// the store knows to their stored (or deleted) mail and returns the rest,
/// which must be downloaded.
pub(super) async fn recognise(
    session: &mut Session,
    store: &Store,
    (t, deadline): (&Timeouts, &Deadline),
    account: &Account,
    uidvalidity: u32,
    new: &[(u32, u64)],
) -> Result<Vec<(u32, u64)>> {
    let host = account.host.as_str();
    deadline.cap_more(new.iter().map(|(_, size)| (*size).min(HEADER_WORK)).sum());
    let what = "reading headers (UID FETCH BODY.PEEK[HEADER])";
    let mut left: HashSet<u32> = new.iter().map(|(uid, _)| *uid).collect();
    let uids: Vec<u32> = new.iter().map(|(uid, _)| *uid).collect();
    for chunk in uids.chunks(COMMAND_UIDS) {
        let wanted: HashSet<u32> = chunk.iter().copied().collect();
        let set = compress(chunk);
        let stream = timed(t, host, what, async {
            session
                .uid_fetch(&set, "(UID RFC822.SIZE BODY.PEEK[HEADER])")
                .await
                .map_err(|e| imap_error(host, what, e))
        })
        .await?;
        let mut stream = std::pin::pin!(stream);
        let mut keys = Vec::new();
        while let Some(item) = next(&mut stream, t, host, what).await? {
            let Some(uid) = item.uid.filter(|u| wanted.contains(u)) else {
                continue;
            };
            let (Some(header), Some(size)) = (item.header(), item.size) else {
                continue;
            };
            if let Some(key) = header_key(header, u64::from(size)) {
                keys.push((server_id(uidvalidity, uid), key, uid));
            }
        }
        let pairs: Vec<(String, String)> = keys
            .iter()
            .map(|(sid, key, _)| (sid.clone(), key.clone()))
            .collect();
        let unknown: HashSet<String> = blocking(|| store.adopt_by_header(&account.id, &pairs))?
            .into_iter()
            .collect();
        for (sid, _, uid) in &keys {
            if !unknown.contains(sid) {
                left.remove(uid);
            }
        }
    }
    Ok(new
        .iter()
        .copied()
        .filter(|(uid, _)| left.contains(uid))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::pop3;

    #[test]
    fn three_new_validities_in_a_row_mark_the_server_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        let seen: Vec<Renumbering> = [true, true, false, true, true, true, true, false]
            .into_iter()
            .map(|changed| observe(&store, &a, changed).unwrap())
            .collect();
        let newly: Vec<bool> = seen.iter().map(|r| r.newly).collect();
        assert_eq!(
            newly,
            [false, false, false, false, false, true, false, false]
        );
        let by_header: Vec<bool> = seen.iter().map(|r| r.by_header()).collect();
        assert_eq!(
            by_header,
            [false, false, false, false, false, true, true, false]
        );
    }
}
