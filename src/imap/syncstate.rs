//! The INBOX sync state of an IMAP account: `imap:INBOX` =
//! `<uidvalidity>:<uidnext>` in the store, what the last complete fetch saw
//! (see imap::fetch for how fetches use it), what a change of UIDVALIDITY
//! means for the server ids already stored, and where on the server a
//! stored mail is now ([`locate`]).

use super::uidset;
use crate::account::Account;
use crate::error::Result;
use crate::fetch::blocking;
use crate::store::Store;

/// Sync-state key of the INBOX in the store.
pub const STATE_KEY: &str = "imap:INBOX";

/// The parsed `imap:INBOX` sync state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncState {
    pub uidvalidity: u32,
    /// UIDNEXT when the last complete fetch selected the INBOX; 0 = unknown,
    /// or the last fetch did not store every mail it listed (then the next
    /// fetch lists the mailbox again instead of trusting UIDNEXT).
    pub uidnext: u32,
}

impl SyncState {
    pub fn parse(s: &str) -> Option<SyncState> {
        let (v, n) = s.split_once(':').unwrap_or((s, "0"));
        Some(SyncState {
            uidvalidity: v.parse().ok()?,
            uidnext: n.parse().ok()?,
        })
    }

    pub fn render(&self) -> String {
        format!("{}:{}", self.uidvalidity, self.uidnext)
    }
}

/// The state the last fetch of `account` left, if any (an unreadable one
/// counts as none: the next fetch then lists the whole mailbox).
pub(super) fn load(store: &Store, account: &Account) -> Result<Option<SyncState>> {
    Ok(blocking(|| store.sync_state(&account.id, STATE_KEY))?
        .as_deref()
        .and_then(SyncState::parse))
}

/// After a UIDVALIDITY change, forgets the server ids of the old validity:
/// they name nothing any more, and if the server ever reused that validity
/// value for other mail, stale ids would make us skip (lose) new mail.
pub(super) fn forget_old_validity(
    store: &Store,
    account: &Account,
    previous: Option<SyncState>,
    uidvalidity: u32,
    prefix: &str,
    renumbers: bool,
) -> Result<()> {
    let Some(previous) = previous else {
        return Ok(());
    };
    if previous.uidvalidity == uidvalidity {
        return Ok(());
    }
    // A server marked as renumbering in every session was named once
    // (imap::unstable); its every session is not worth a warning.
    if renumbers {
        tracing::debug!(account_id = %account.id, new = uidvalidity, "INBOX renumbered again");
    } else {
        tracing::warn!(
            account_id = %account.id,
            old = previous.uidvalidity,
            new = uidvalidity,
            "INBOX UIDVALIDITY changed; re-reading the mailbox, stored mails are recognised by content"
        );
    }
    let stale: Vec<String> = blocking(|| store.known_server_ids(&account.id, "imap:INBOX:"))?
        .into_iter()
        .filter(|id| !id.starts_with(prefix))
        .collect();
    blocking(|| store.forget_server_ids(&account.id, &stale))
}

/// Where stored message `message` of `account` is in INBOX now: its UID
/// under the UIDVALIDITY of the last fetch, if the store has one. None: the
/// mail was seen under an older UIDVALIDITY (its UID names nothing any
/// more, RFC 3501 §2.3.1.1), was already deleted on the server, or never
/// came over IMAP.
pub fn locate(store: &Store, account: &str, message: u64) -> Result<Option<(u32, u32)>> {
    let Some(state) = store
        .sync_state(account, STATE_KEY)?
        .as_deref()
        .and_then(SyncState::parse)
    else {
        return Ok(None);
    };
    let prefix = uidset::prefix(state.uidvalidity);
    Ok(store
        .server_ids(message)?
        .iter()
        .find_map(|sid| uidset::uid_of(sid, &prefix))
        .map(|uid| (state.uidvalidity, uid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_state_round_trip_and_legacy_form() {
        let s = SyncState {
            uidvalidity: 1700000000,
            uidnext: 42,
        };
        assert_eq!(SyncState::parse(&s.render()), Some(s));
        assert_eq!(
            SyncState::parse("77"),
            Some(SyncState {
                uidvalidity: 77,
                uidnext: 0
            })
        );
        assert_eq!(SyncState::parse("x:1"), None);
        assert_eq!(SyncState::parse(""), None);
    }
}
