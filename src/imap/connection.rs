//! One IMAP connection of one account, as its task keeps it between turns:
//! the logged-in session, its capabilities, the selected mailbox and what
//! is known about INBOX. Everything the account does over IMAP is a method
//! of [`Connection`], each in the file of its topic, all built on the one
//! command plumbing of imap::wire:
//!
//! - `fetch` (imap::fetch): INBOX -> store -> delete on server;
//! - `idle` (imap::idle): wait for news, answering FetchNow on the spot;
//! - `move_to`, `append`, `list_folders` (imap::folders).
//!
//! What is known about INBOX, so that a round over idle accounts costs the
//! server as little as the protocol allows: when the last command that
//! looked at INBOX — an EXAMINE whose UIDVALIDITY and UIDNEXT equal the
//! store's state of a *complete* fetch, or a check like the one below —
//! found nothing new, the connection remembers INBOX's message count
//! ([`Connection::inbox_known`]). From then on the server tells what
//! changes (imap::news), so a FetchNow asks with `NOOP` — RFC 3501 §6.1.2:
//! "can be used as a periodic poll for new messages" — instead of a new
//! EXAMINE that reopens the mailbox, and the IDLE after it needs no EXAMINE
//! at all. On an idling connection the three go out in one write
//! (imap::idle_wire::recheck). That replaced DONE, EXAMINE, EXAMINE, IDLE,
//! four round trips (docs/PERFORMANCE.md, the warm IMAP round). Anything
//! that could hide news, a full channel of unsolicited responses included
//! (async-imap drops what does not fit), forgets the count, and the next
//! fetch EXAMINEs as before. The count is only ever known while INBOX is
//! the selected mailbox: selecting anything else forgets it.
//!
//! A method that fails may leave the session mid-reply; it then marks the
//! connection unusable ([`Connection::usable`]) and the owner drops it. A
//! folder the server does not have (`FolderUnknown`) is a complete reply
//! and leaves the connection usable.

use std::time::Duration;

use async_imap::types::Mailbox;

use super::news;
use super::session::{self, Caps, Session};
use super::wire::{imap_error, timed};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::net::{Timeouts, TlsContext};

/// The mailbox a connection has selected (RFC 3501 §6.3.1, §6.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub name: String,
    /// SELECT (read-write) rather than EXAMINE (read-only).
    pub writable: bool,
}

/// A logged-in IMAP connection; see the module docs.
#[derive(Debug)]
pub struct Connection {
    pub(super) session: Session,
    pub(super) host: String,
    pub(super) t: Timeouts,
    /// Asked once per connection: the capabilities of an authenticated
    /// session do not change until it ends (RFC 3501 §6.1.1 only lists
    /// STARTTLS and login as changing them).
    caps: Option<Caps>,
    pub(super) selected: Option<Selected>,
    /// INBOX's message count while it is known to match the store's state
    /// of a complete fetch; `None`: unknown, the next fetch or IDLE EXAMINEs.
    pub(super) inbox: Option<u32>,
    pub(super) usable: bool,
}

impl Connection {
    /// Connects and logs in with the account's settings (imap::session).
    pub async fn open(
        account: &Account,
        password: &str,
        tls: &TlsContext,
        t: &Timeouts,
    ) -> Result<Connection> {
        let session = session::open(account, password, tls, t).await?;
        Ok(Connection::new(session, &account.host, t))
    }

    /// A connection on a session logged in by other means.
    pub fn new(session: Session, host: &str, t: &Timeouts) -> Connection {
        Connection {
            session,
            host: host.to_string(),
            t: *t,
            caps: None,
            selected: None,
            inbox: None,
            usable: true,
        }
    }

    /// Whether the connection can take the next command: false after any
    /// failure, which may have left a reply half read.
    pub fn usable(&self) -> bool {
        self.usable
    }

    /// INBOX's message count if INBOX is known to match the store.
    pub fn inbox_known(&self) -> Option<u32> {
        self.inbox
    }

    /// The selected mailbox, if any.
    pub fn selected(&self) -> Option<&Selected> {
        self.selected.as_ref()
    }

    /// The capabilities, asked from the server on first use.
    pub async fn caps(&mut self) -> Result<Caps> {
        if let Some(c) = &self.caps {
            return Ok(c.clone());
        }
        let c = Caps::of_session(&mut self.session, &self.t, &self.host).await;
        let c = self.checked(c)?;
        self.caps = Some(c.clone());
        Ok(c)
    }

    /// LOGOUT (RFC 3501 §6.1.3), waiting at most `bound` for its answer.
    pub async fn logout(self, bound: Duration) {
        session::logout(self.session, bound).await;
    }

    /// `r`, marking the connection unusable when it is an error that may
    /// have left a reply half read. A missing folder is no such error: the
    /// server's tagged NO was read to its end.
    pub(super) fn checked<T>(&mut self, r: Result<T>) -> Result<T> {
        if matches!(r, Err(ref e) if !matches!(e, Error::FolderUnknown(_))) {
            self.usable = false;
        }
        r
    }

    /// SELECT (`writable`) or EXAMINE INBOX; the count known before is
    /// forgotten, the caller decides from the reply what is known now.
    pub(super) async fn open_inbox(&mut self, writable: bool) -> Result<Mailbox> {
        self.inbox = None;
        self.selected = None;
        let (host, session) = (self.host.as_str(), &mut self.session);
        let (what, command) = if writable {
            ("selecting INBOX", "SELECT INBOX")
        } else {
            ("examining INBOX", "EXAMINE INBOX")
        };
        let mailbox = timed(&self.t, host, what, async {
            let r = if writable {
                session.select("INBOX").await
            } else {
                session.examine("INBOX").await
            };
            r.map_err(|e| imap_error(host, command, e))
        })
        .await;
        let mailbox = self.checked(mailbox)?;
        self.selected = Some(Selected {
            name: "INBOX".into(),
            writable,
        });
        Ok(mailbox)
    }

    /// Whether INBOX is unchanged since it was last known to match the
    /// store: the unsolicited responses that came since, then those of a
    /// NOOP. Keeps the (updated) count when unchanged; forgets it
    /// otherwise, or when nothing was known (then the caller EXAMINEs).
    pub(super) async fn unchanged_after_noop(&mut self) -> Result<bool> {
        if self.unchanged_since_known().is_none() {
            return Ok(false);
        }
        let (host, session) = (self.host.as_str(), &mut self.session);
        let noop = timed(&self.t, host, "checking INBOX (NOOP)", async {
            session
                .noop()
                .await
                .map_err(|e| imap_error(host, "NOOP", e))
        })
        .await;
        self.checked(noop)?;
        Ok(self.unchanged_since_known().is_some())
    }

    /// INBOX's count if it is unchanged since it was last known to match
    /// the store, judged by the unsolicited responses alone (no command;
    /// for IDLE, which starts right after a fetch that just looked). Keeps
    /// the updated count; forgets it on news.
    pub(super) fn unchanged_since_known(&mut self) -> Option<u32> {
        let mut exists = self.inbox.take()?;
        let rx = &self.session.unsolicited_responses;
        // async-imap drops what does not fit into its bounded channel, so a
        // full one may have lost an EXISTS.
        let mut changed = rx.capacity().is_some_and(|c| rx.len() >= c);
        while let Ok(r) = rx.try_recv() {
            changed |= news::is_news(&r, &mut exists);
        }
        if changed {
            return None;
        }
        self.inbox = Some(exists);
        Some(exists)
    }

    /// Drops the unsolicited responses collected so far: an EXAMINE about
    /// to be sent tells the truth they were about.
    pub(super) fn forget_unsolicited(&mut self) {
        while self.session.unsolicited_responses.try_recv().is_ok() {}
    }
}
