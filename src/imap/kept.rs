//! The session an account task keeps between fetches, and what it knows
//! about INBOX, so that a round over idle accounts costs the server as
//! little as the protocol allows.
//!
//! A kept session is left in INBOX (selected or examined). When the last
//! command that looked at INBOX — an EXAMINE whose UIDVALIDITY and UIDNEXT
//! equal the store's state of a *complete* fetch, or a check like the one
//! below — found nothing new, the session remembers INBOX's message count
//! ([`Held::inbox`]). From then on the server itself tells what changes:
//! RFC 3501 §7.3.1 / §7.4.1 oblige it to report EXISTS and EXPUNGE to the
//! session that has the mailbox selected (during IDLE as they happen, RFC
//! 2177; otherwise with the next command's reply). So a FetchNow on such a
//! session asks with `NOOP` — RFC 3501 §6.1.2: "can be used as a periodic
//! poll for new messages" — instead of a new EXAMINE that reopens the
//! mailbox, and the IDLE after it needs no EXAMINE at all. On an idling
//! session the three go out in one write (imap::idle_wire::recheck); a
//! fetch on a session that is not idling asks NOOP here
//! ([`Held::unchanged_after_noop`]). That replaced DONE, EXAMINE, EXAMINE,
//! IDLE, four round trips (`scripts/bench --only poll-imap-tls`: 0.62 s →
//! 0.24 s for 1,000 accounts). Anything that could hide news — an EXISTS above the
//! count, an EXPUNGE followed by an EXISTS, RECENT, a UIDVALIDITY code, a
//! full channel of unsolicited responses (async-imap drops what does not fit)
//! — forgets the count, and the fetch then EXAMINEs as before.

use async_imap::imap_proto::{MailboxDatum, Response, ResponseCode};
use async_imap::types::UnsolicitedResponse;

use super::session::{imap_error, timed, Caps, Session};
use crate::error::Result;
use crate::net::Timeouts;

/// An authenticated session an account task keeps between fetches.
#[derive(Debug)]
pub struct Held {
    pub session: Session,
    /// The session's capabilities, asked once per connection: those of an
    /// authenticated session do not change until it ends (RFC 3501 §6.1.1
    /// only lists STARTTLS and login as changing them), so each fetch and
    /// IDLE on a kept session saves the CAPABILITY round trip.
    caps: Option<Caps>,
    /// INBOX's message count when it was last known to match the store's
    /// state of a complete fetch (see the module docs); `None`: unknown, the
    /// next fetch or IDLE EXAMINEs.
    pub inbox: Option<u32>,
}

impl Held {
    pub fn new(session: Session) -> Held {
        Held {
            session,
            caps: None,
            inbox: None,
        }
    }

    /// The capabilities, asked from the server on first use.
    pub async fn caps(&mut self, t: &Timeouts, host: &str) -> Result<Caps> {
        if let Some(c) = &self.caps {
            return Ok(c.clone());
        }
        let c = Caps::of_session(&mut self.session, t, host).await?;
        self.caps = Some(c.clone());
        Ok(c)
    }

    /// Whether INBOX is unchanged since it was last known to match the
    /// store: the unsolicited responses that came since, then those of a
    /// NOOP. Keeps the (updated) count when unchanged; forgets it
    /// otherwise, or when nothing was known (then the caller EXAMINEs).
    pub async fn unchanged_after_noop(&mut self, t: &Timeouts, host: &str) -> Result<bool> {
        if self.unchanged_since_known().is_none() {
            return Ok(false);
        }
        let session = &mut self.session;
        timed(t, host, "checking INBOX (NOOP)", async {
            session
                .noop()
                .await
                .map_err(|e| imap_error(host, "NOOP", e))
        })
        .await?;
        Ok(self.unchanged_since_known().is_some())
    }

    /// INBOX's count if it is unchanged since it was last known to match
    /// the store, judged by the unsolicited responses alone (no command;
    /// for IDLE, which starts right after a fetch that just looked). Keeps
    /// the updated count; forgets it on news.
    pub(super) fn unchanged_since_known(&mut self) -> Option<u32> {
        let mut exists = self.inbox.take()?;
        if self.news_since(&mut exists) {
            return None;
        }
        self.inbox = Some(exists);
        Some(exists)
    }

    /// Drains the unsolicited responses; true if any could mean new mail.
    fn news_since(&mut self, exists: &mut u32) -> bool {
        let rx = &self.session.unsolicited_responses;
        // async-imap drops what does not fit into its bounded channel, so a
        // full one may have lost an EXISTS.
        let mut news = rx.capacity().is_some_and(|c| rx.len() >= c);
        while let Ok(r) = rx.try_recv() {
            news |= is_news(&r, exists);
        }
        news
    }
}

/// An unsolicited response judged by [`is_news_for`].
fn is_news(r: &UnsolicitedResponse, exists: &mut u32) -> bool {
    let r = match r {
        UnsolicitedResponse::Exists(n) => Response::MailboxData(MailboxDatum::Exists(*n)),
        UnsolicitedResponse::Recent(n) => Response::MailboxData(MailboxDatum::Recent(*n)),
        UnsolicitedResponse::Expunge(n) => Response::Expunge(*n),
        UnsolicitedResponse::Other(data) => return is_news_for(data.parsed(), exists),
        _ => return false,
    };
    is_news_for(&r, exists)
}

/// Whether a response means INBOX no longer matches the count `exists`
/// (updated as it goes), for a kept session and for IDLE alike: EXISTS
/// above the count (after EXPUNGEs lowered it), RECENT > 0 (RFC 3501
/// §7.3.1, §7.3.2, §7.4.1), or a new UIDVALIDITY (§2.3.1.1) mean news;
/// flag changes and status lines do not.
pub(super) fn is_news_for(r: &Response<'_>, exists: &mut u32) -> bool {
    match r {
        Response::MailboxData(MailboxDatum::Exists(n)) => {
            let grew = *n > *exists;
            *exists = *n;
            grew
        }
        Response::MailboxData(MailboxDatum::Recent(n)) => *n > 0,
        Response::Expunge(_) => {
            *exists = exists.saturating_sub(1);
            false
        }
        Response::Data { outcome, .. } => {
            matches!(outcome.code, Some(ResponseCode::UidValidity(_)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exists_growth_after_expunge_is_news_flags_are_not() {
        let mut exists = 3;
        assert!(!is_news(&UnsolicitedResponse::Exists(3), &mut exists));
        assert!(!is_news(&UnsolicitedResponse::Expunge(2), &mut exists));
        assert_eq!(exists, 2);
        // One deleted, one arrived: the count is back to 3, which is news.
        assert!(is_news(&UnsolicitedResponse::Exists(3), &mut exists));
        assert!(is_news(&UnsolicitedResponse::Recent(1), &mut exists));
        assert!(!is_news(&UnsolicitedResponse::Recent(0), &mut exists));
    }
}

#[cfg(test)]
#[path = "kept_tests.rs"]
mod session_tests;
