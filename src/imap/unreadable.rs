//! Mails whose FETCH reply async-imap cannot parse, so that one such mail
//! costs that mail alone instead of blocking the whole account.
//!
//! A reply that is not IMAP as RFC 3501 §7.4.2 defines it — GNU imap4d
//! answers a partial fetch past the end with `* 2 FETCH (UID 2 BODY[])`,
//! a `BODY[]` without its nstring — ends async-imap's reader for good: its
//! stream reports the parse error once and then nothing, so the session is
//! lost. What was read before it is still good. The fetcher therefore keeps
//! and stores the mails read before the bad reply, names the mail whose
//! reply it was ([`blame`]), and remembers that UID here, in the store's
//! sync state under [`KEY`] (`<uidvalidity>:<uid>,<uid>`), so that every
//! later fetch downloads it alone, after everything else and after the
//! deletes on the server: should its reply still be unreadable, the fetch
//! loses only its session, reports the mail (LastError, journal) and the
//! mail stays on the server, to be tried again at the next fetch. A mail
//! whose fetch succeeds, or that is no longer on the server, leaves the
//! list; a mail that failed again goes to its end, so that one mail that
//! always fails never keeps another (perhaps wrongly blamed) from its turn.
//!
//! The parse error's text carries the reader's whole buffer, mail content
//! included: only the first line of the bad reply, capped, is ever shown
//! (imap::wire::describe_unreadable).

use super::wire::{bad_reply, describe_unreadable as describe, imap_error};
use crate::account::Account;
use crate::error::Result;
use crate::fetch::blocking;
use crate::net::Timeouts;
use crate::store::Store;

/// Sync-state key of the mails to fetch alone.
pub const KEY: &str = "imap:INBOX:unreadable";

/// At most this many UIDs are remembered; past it the oldest are dropped
/// (they are then fetched in a batch again, and blamed again if bad).
const MAX: usize = 1000;

/// One item of a FETCH stream.
pub(super) enum Next<T> {
    Item(T),
    End,
    /// A reply that could not be parsed (its first line); the session is
    /// lost.
    Unreadable(String),
}

/// imap::wire::next, telling an unparsable reply from other failures.
pub(super) async fn next<S, T>(
    stream: &mut S,
    t: &Timeouts,
    host: &str,
    what: &str,
) -> Result<Next<T>>
where
    S: futures::Stream<Item = async_imap::error::Result<T>> + Unpin,
{
    match super::wire::next_raw(stream, t, host, what).await? {
        None => Ok(Next::End),
        Some(Ok(item)) => Ok(Next::Item(item)),
        Some(Err(e)) => match bad_reply(&e) {
            Some(line) => Ok(Next::Unreadable(line)),
            None => Err(imap_error(host, what, e)),
        },
    }
}

/// Which of `missing` (wanted, not yet read, ascending) the unreadable
/// reply `line` was about: the UID it names if it names one of them, else
/// the first (servers answer a UID FETCH in message order).
pub(super) fn blame(line: &str, missing: &[u32]) -> Option<u32> {
    let named = line
        .split_once("UID ")
        .and_then(|(_, rest)| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        })
        .filter(|uid| missing.contains(uid));
    named.or_else(|| missing.first().copied())
}

/// The remembered mails of this fetch: those of the current validity
/// that are still listed and not stored, with their listed sizes.
pub(super) struct Suspects {
    uidvalidity: u32,
    /// The stored value, to write only on change.
    before: Option<String>,
    listed: Vec<(u32, u64)>,
}

impl Suspects {
    /// The remembered mails among `new` (listed, not stored), in the order
    /// to try them.
    pub fn load(
        store: &Store,
        account: &Account,
        uidvalidity: u32,
        new: &[(u32, u64)],
    ) -> Result<Suspects> {
        let before = blocking(|| store.sync_state(&account.id, KEY))?;
        let listed = parse(before.as_deref(), uidvalidity)
            .into_iter()
            .filter_map(|uid| new.iter().find(|(u, _)| *u == uid).copied())
            .collect();
        Ok(Suspects {
            uidvalidity,
            before,
            listed,
        })
    }

    pub fn contains(&self, uid: u32) -> bool {
        self.listed.iter().any(|(u, _)| *u == uid)
    }

    /// The mails to fetch alone, in order.
    pub fn listed(&self) -> Vec<(u32, u64)> {
        self.listed.clone()
    }

    /// `uid` is stored: forget it.
    pub fn stored(&mut self, uid: u32) {
        self.listed.retain(|(u, _)| *u != uid);
    }

    /// `uid` (listed with `size`) had an unreadable reply: last in line.
    pub fn blame(&mut self, uid: u32, size: u64) {
        self.stored(uid);
        self.listed.push((uid, size));
    }

    /// Writes the list if it changed.
    pub fn save(&self, store: &Store, account: &Account) -> Result<()> {
        let uids: Vec<u32> = self.listed.iter().map(|(u, _)| *u).collect();
        let value = render(self.uidvalidity, &uids);
        let unchanged = match &self.before {
            Some(before) => *before == value,
            None => uids.is_empty(),
        };
        if unchanged {
            return Ok(());
        }
        blocking(|| store.set_sync_state(&account.id, KEY, &value))
    }
}

/// What the report and the journal say about an unreadable reply about
/// mail `uid` (listed with `size`), if one is to blame.
pub(super) fn warning(host: &str, blamed: Option<(u32, u64)>, line: &str) -> String {
    let what = "fetching";
    let e = describe(host, what, line);
    match blamed {
        Some((uid, size)) => format!(
            "mail UID {uid} ({size} bytes) could not be fetched: {e}; it stays on the server \
             and is fetched alone, after the others, at every fetch"
        ),
        None => format!("{e}; the fetch goes on on a new connection"),
    }
}

fn parse(value: Option<&str>, uidvalidity: u32) -> Vec<u32> {
    let Some((v, uids)) = value.and_then(|v| v.split_once(':')) else {
        return Vec::new();
    };
    if v.parse::<u32>().ok() != Some(uidvalidity) {
        return Vec::new();
    }
    uids.split(',').filter_map(|u| u.parse().ok()).collect()
}

fn render(uidvalidity: u32, uids: &[u32]) -> String {
    let skip = uids.len().saturating_sub(MAX);
    let list: Vec<String> = uids[skip..].iter().map(u32::to_string).collect();
    format!("{uidvalidity}:{}", list.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::error::Error as ImapError;

    #[test]
    fn the_list_belongs_to_one_validity() {
        assert_eq!(parse(Some(&render(7, &[3, 9])), 7), vec![3, 9]);
        assert!(parse(Some("7:3,9"), 8).is_empty());
        assert!(parse(Some("7:"), 7).is_empty());
        assert!(parse(None, 7).is_empty());
        assert!(parse(Some("garbage"), 7).is_empty());
    }

    #[test]
    fn the_list_is_bounded() {
        let many: Vec<u32> = (1..=2000).collect();
        let kept = parse(Some(&render(1, &many)), 1);
        assert_eq!(kept.len(), MAX);
        assert_eq!(kept.first(), Some(&1001));
    }

    #[test]
    fn only_the_first_line_of_the_buffer_is_shown() {
        let io = std::io::Error::other(format!(
            "Error(...) during parsing of {:?}",
            "* 2 FETCH (UID 2 BODY[])\r\n* 3 FETCH (UID 3 BODY[] {5}\r\nsecret)\r\n"
        ));
        let line = bad_reply(&ImapError::Io(io)).expect("a parse error");
        assert_eq!(line, "* 2 FETCH (UID 2 BODY[])");
        let e = describe("h", "fetching (UID FETCH)", &line);
        assert!(!e.to_string().contains("secret"), "{e}");
        assert_eq!(blame(&line, &[1, 2, 3]), Some(2));
        assert_eq!(blame(&line, &[3]), Some(3));
        let plain = std::io::Error::other("connection reset");
        assert!(bad_reply(&ImapError::Io(plain)).is_none());
    }

    #[test]
    fn a_long_line_is_capped() {
        let e = describe("h", "w", &"x".repeat(500));
        assert!(e.to_string().len() < 250, "{e}");
    }
}
