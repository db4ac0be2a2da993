//! Waiting for new mail with IDLE (RFC 2177) on the connection the account
//! task keeps open, so that the task fetches when mail arrives and a
//! FetchNow costs no new connection, TLS handshake or login.
//!
//! [`Connection::idle`] first makes sure INBOX matches the sync state the
//! last fetch left in the store (see `prepare`): mail that arrived between
//! that fetch and this IDLE would otherwise wait for the next timeout. Then
//! it idles until new mail, `max`, an error, or a wake-up ([`Wakes`]: the
//! task's requests). When INBOX is known to match the store, a fetch request
//! is answered right here: DONE, NOOP and a new IDLE go out in one write
//! (imap::idle_wire) and, if the server reports nothing new, the request
//! gets the report of a fetch that found nothing and the connection idles
//! on. Otherwise — the NOOP brought news, or the request needs the
//! connection for other work — IDLE ends properly with DONE (RFC 2177 §3)
//! and the request goes back to the task, which does it on this same
//! connection. IDLE is re-issued every [`REISSUE`] because RFC 2177 §3
//! lets servers drop an idling client after 30 minutes; Dovecot's
//! `* OK Still here` keepalives are ignored, and so is our outer timeout by
//! them (they would otherwise keep a wait alive past `max`).

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::connection::Connection;
use super::fetch::unchanged;
use super::idle_wire::{self as wire, Heard};
use super::session::LOGOUT_WAIT;
use super::syncstate::{self, SyncState};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::fetch::FetchReport;
use crate::net::{Timeouts, TlsContext};
use crate::store::Store;

/// Re-issue IDLE before 29 minutes (RFC 2177 §3: "at least every 29 minutes").
pub const REISSUE: Duration = Duration::from_secs(29 * 60);

/// What woke an IDLE.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake<F, O> {
    /// A fetch, which a check that finds nothing new answers on the spot.
    Fetch(F),
    /// Anything else that needs the connection (or the end of the asking).
    Other(O),
}

/// Who may interrupt an IDLE: the account task's requests.
pub trait Wakes {
    type Fetch;
    type Other;
    /// Completes when someone asks for something.
    fn next(&mut self) -> impl Future<Output = Wake<Self::Fetch, Self::Other>>;
    /// Answers a fetch with `report`: INBOX was checked, nothing is new.
    fn answer(&mut self, fetch: Self::Fetch, report: &FetchReport);
}

/// Why [`Connection::idle`] returned. After `Failed` (and after a wake-up
/// whose check failed) the connection is not [`Connection::usable`].
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<W> {
    /// INBOX has mail the last fetch did not see: fetch now.
    NewMail,
    /// `max` passed without news.
    Timeout,
    /// The server lacks IDLE: the caller polls instead.
    NoIdle,
    /// A wake-up to serve on the connection; IDLE was ended.
    Woken(W),
    Failed(Error),
}

/// The outcome of a wait that nobody can wake.
pub type IdleOutcome = Outcome<Infallible>;

/// Nobody wakes this IDLE.
struct Never;

impl Wakes for Never {
    type Fetch = Infallible;
    type Other = Infallible;
    fn next(&mut self) -> impl Future<Output = Wake<Infallible, Infallible>> {
        std::future::pending()
    }
    fn answer(&mut self, fetch: Infallible, _: &FetchReport) {
        match fetch {}
    }
}

/// Waits up to `max` for new mail on a connection of its own, then logs
/// out: [`Connection::idle`] for callers that keep no connection (tools,
/// tests).
pub async fn wait_for_change(
    account: &Account,
    password: &str,
    store: &Store,
    tls: &TlsContext,
    t: &Timeouts,
    max: Duration,
) -> Result<IdleOutcome> {
    let mut conn = Connection::open(account, password, tls, t).await?;
    let outcome = conn.idle(account, store, max, &mut Never).await;
    if conn.usable() {
        conn.logout(LOGOUT_WAIT).await;
    }
    match outcome {
        Outcome::Failed(e) => Err(e),
        Outcome::Woken(w) => match w {
            Wake::Fetch(never) | Wake::Other(never) => match never {},
        },
        Outcome::NewMail => Ok(Outcome::NewMail),
        Outcome::Timeout => Ok(Outcome::Timeout),
        Outcome::NoIdle => Ok(Outcome::NoIdle),
    }
}

/// How one IDLE … DONE round ended.
enum Round<W> {
    /// The slice passed without news; IDLE was ended with DONE.
    Quiet,
    News,
    /// A wake-up to serve; whether news came (INBOX no longer matches).
    Woken(W, bool),
    Failed(Error),
}

impl Connection {
    /// Idles for up to `max`, answering or returning wake-ups; see the
    /// module docs.
    pub async fn idle<K: Wakes>(
        &mut self,
        account: &Account,
        store: &Store,
        max: Duration,
        wakes: &mut K,
    ) -> Outcome<Wake<K::Fetch, K::Other>> {
        let deadline = Instant::now() + max;
        let mut exists = match self.prepare(account, store).await {
            Err(e) => return self.failed(e),
            Ok(Ready::NoIdle) => return Outcome::NoIdle,
            Ok(Ready::Missed) => return Outcome::NewMail,
            Ok(Ready::Exists(n)) => n,
        };
        // Whether INBOX matches the store: only then may a fetch be answered
        // by a NOOP, and only then is it known again afterwards.
        let known = self.inbox.take().is_some();
        let nothing_new = match self.caps().await {
            Ok(caps) => unchanged(account, &caps),
            Err(e) => return self.failed(e),
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.inbox = known.then_some(exists);
                return Outcome::Timeout;
            }
            let slice = left.min(REISSUE);
            match self
                .round(slice, &mut exists, known, wakes, &nothing_new)
                .await
            {
                Round::Quiet => {}
                Round::News => return Outcome::NewMail,
                Round::Woken(w, news) => {
                    self.inbox = (known && !news && self.usable).then_some(exists);
                    return Outcome::Woken(w);
                }
                Round::Failed(e) => return self.failed(e),
            }
        }
    }

    fn failed<W>(&mut self, e: Error) -> Outcome<W> {
        self.usable = false;
        Outcome::Failed(e)
    }

    /// One IDLE … DONE round of at most `slice`. Fetch wake-ups are
    /// answered on the connection while INBOX is `known` and the pipelined
    /// check finds nothing; a connection whose DONE or check failed is
    /// marked unusable (the task then serves the wake-up on a new one).
    async fn round<K: Wakes>(
        &mut self,
        slice: Duration,
        exists: &mut u32,
        known: bool,
        wakes: &mut K,
        nothing_new: &FetchReport,
    ) -> Round<Wake<K::Fetch, K::Other>> {
        let (t, host, session) = (&self.t, self.host.as_str(), &mut self.session);
        let mut news = false;
        let mut idling = match wire::start(session, t, host, exists, &mut news).await {
            Ok(i) => i,
            Err(e) => return Round::Failed(e),
        };
        let end = Instant::now() + slice;
        let woken = loop {
            let left = end.saturating_duration_since(Instant::now());
            if news || left.is_zero() {
                break None;
            }
            tokio::select! {
                heard = tokio::time::timeout(left, wire::next(session, host, exists)) => {
                    match heard {
                        Err(_) | Ok(Ok(Heard::Nothing)) => {}
                        Ok(Ok(Heard::News)) => news = true,
                        Ok(Err(e)) => return Round::Failed(e),
                    }
                }
                w = wakes.next() => match w {
                    Wake::Fetch(f) if known => {
                        match wire::recheck(session, idling, t, host, exists).await {
                            Ok((i, false)) => {
                                idling = i;
                                wakes.answer(f, nothing_new);
                            }
                            Ok((i, true)) => {
                                idling = i;
                                news = true;
                                break Some(Wake::Fetch(f));
                            }
                            Err(e) => {
                                tracing::debug!(host, error = %e, "the check on the idling session failed");
                                self.usable = false;
                                return Round::Woken(Wake::Fetch(f), true);
                            }
                        }
                    }
                    w => break Some(w),
                },
            }
        };
        let ended = wire::done(session, idling, t, host, exists).await;
        let ended = match ended {
            Ok(more) => Ok(news || more),
            Err(e) if news || woken.is_some() => {
                tracing::debug!(host, error = %e, "DONE failed; the next command reconnects");
                self.usable = false;
                Ok(true)
            }
            Err(e) => Err(e),
        };
        match (ended, woken) {
            (Ok(news), Some(w)) => Round::Woken(w, news),
            (Ok(true), None) => Round::News,
            (Ok(false), None) => Round::Quiet,
            (Err(e), _) => Round::Failed(e),
        }
    }

    /// Asks for IDLE once per connection. When the fetch just before left
    /// INBOX known to match the store, the unsolicited responses since then
    /// tell whether anything changed, and IDLE starts without another
    /// command. Otherwise it EXAMINEs INBOX (read-only, RFC 3501 §6.3.2; a
    /// SELECT of the fetch before is left without an expunge) and compares
    /// it with the store's sync state; unsolicited responses the fetch left
    /// behind are dropped: this EXAMINE tells the truth they were about.
    async fn prepare(&mut self, account: &Account, store: &Store) -> Result<Ready> {
        if !self.caps().await?.has("IDLE") {
            return Ok(Ready::NoIdle);
        }
        if self.inbox.is_some() {
            return Ok(match self.unchanged_since_known() {
                Some(exists) => Ready::Exists(exists),
                None => Ready::Missed,
            });
        }
        self.forget_unsolicited();
        let mailbox = self.open_inbox(false).await?;
        let state = syncstate::load(store, account)?;
        let (validity, next) = (mailbox.uid_validity, mailbox.uid_next);
        if missed_mail(state, validity, next, mailbox.exists) {
            return Ok(Ready::Missed);
        }
        let seen = validity.zip(next).map(|(uidvalidity, uidnext)| SyncState {
            uidvalidity,
            uidnext,
        });
        if matches!(state, Some(s) if s.uidnext != 0 && Some(s) == seen) {
            self.inbox = Some(mailbox.exists);
        }
        Ok(Ready::Exists(mailbox.exists))
    }
}

/// What `prepare` found.
enum Ready {
    NoIdle,
    /// INBOX changed since the last complete fetch.
    Missed,
    /// Ready to idle; INBOX has this many messages.
    Exists(u32),
}

/// Whether INBOX changed since the last complete fetch: another validity,
/// a higher UIDNEXT, or no fetch yet while mail is there.
fn missed_mail(
    state: Option<SyncState>,
    uidvalidity: Option<u32>,
    uidnext: Option<u32>,
    exists: u32,
) -> bool {
    match state {
        None => exists > 0,
        Some(s) => {
            uidvalidity != Some(s.uidvalidity)
                || matches!(uidnext, Some(n) if s.uidnext != 0 && n > s.uidnext)
        }
    }
}

#[cfg(test)]
mod tests;
