//! Waiting for new mail with IDLE (RFC 2177) on the session the account
//! task keeps open, so that the scheduler fetches when mail arrives and a
//! FetchNow costs no new connection, TLS handshake or login.
//!
//! [`hold`] takes the task's open session ([`Held`]) and makes sure INBOX
//! matches the sync state the last fetch left in the store (see
//! [`prepare`]): mail that arrived between that fetch and this IDLE would
//! otherwise wait for the next timeout. Then it idles until new mail, `max`,
//! an error, or a wake-up ([`Wakes`], a FetchNow). When INBOX is known to
//! match the store, a FetchNow is answered right here: DONE, NOOP and a new
//! IDLE go out in one write (imap::idle_wire) and, if the server reports
//! nothing new, the request gets the report of a fetch that found nothing
//! and the session idles on. Otherwise — or if the NOOP brought news — IDLE
//! ends properly with DONE (RFC 2177 §3) and the session goes back to the
//! task, so the fetch runs on the same connection. IDLE is re-issued every
//! [`REISSUE`] because RFC 2177 §3 lets servers drop an idling client after
//! 30 minutes; Dovecot's `* OK Still here` keepalives are ignored, and so
//! is our outer timeout by them (they would otherwise keep a wait alive
//! past `max`).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::fetch::SyncState;
use super::idle_round::{idle_once, Ended};
pub use super::kept::Held;
use super::session::{self, imap_error, timed};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::fetch::FetchReport;
use crate::net::{Timeouts, TlsContext};
use crate::store::Store;

/// Re-issue IDLE before 29 minutes (RFC 2177 §3: "at least every 29 minutes").
pub const REISSUE: Duration = Duration::from_secs(29 * 60);

/// Who may interrupt an IDLE: the account task's FetchNow requests.
pub trait Wakes {
    type Out;
    /// Completes when someone asks for a fetch (or the asking ends).
    fn next(&mut self) -> impl Future<Output = Self::Out>;
    /// Answers `out` with `report` — INBOX was checked and nothing is new —
    /// and takes it; gives it back if it is no request to answer.
    fn answer(&mut self, out: Self::Out, report: &FetchReport) -> Option<Self::Out>;
}

/// Nobody wakes this IDLE.
struct Never;

impl Wakes for Never {
    type Out = std::convert::Infallible;
    fn next(&mut self) -> impl Future<Output = Self::Out> {
        std::future::pending()
    }
    fn answer(&mut self, out: Self::Out, _: &FetchReport) -> Option<Self::Out> {
        Some(out)
    }
}

/// Why [`hold`] returned.
#[derive(Debug)]
pub enum Wait<W> {
    /// INBOX has mail the last fetch did not see: fetch now.
    NewMail,
    /// `max` passed without news.
    Timeout,
    /// The server lacks IDLE: the caller polls instead.
    NoIdle,
    /// A wake-up that needs a fetch (with its output); IDLE was ended.
    Woken(W),
    /// The session failed; it is not handed back.
    Failed(Error),
}

/// Why [`wait_for_change`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleOutcome {
    /// INBOX has mail the last fetch did not see: fetch now.
    NewMail,
    /// `max` passed without news.
    Timeout,
    /// The server lacks IDLE: the scheduler polls instead.
    NoIdle,
}

/// Waits up to `max` for new mail on a connection of its own, then logs
/// out: [`hold`] for callers that keep no session (tools, tests).
pub async fn wait_for_change(
    account: &Account,
    password: &str,
    store: &Store,
    tls: &TlsContext,
    t: &Timeouts,
    max: Duration,
) -> Result<IdleOutcome> {
    let session = session::open(account, password, tls, t).await?;
    let (end, held) = hold(Held::new(session), account, store, t, max, &mut Never).await;
    if let Some(h) = held {
        session::logout(h.session, t).await;
    }
    match end {
        Wait::NewMail => Ok(IdleOutcome::NewMail),
        Wait::Timeout => Ok(IdleOutcome::Timeout),
        Wait::NoIdle => Ok(IdleOutcome::NoIdle),
        Wait::Failed(e) => Err(e),
        Wait::Woken(never) => match never {},
    }
}

/// Idles on `held` for up to `max`, answering or returning wake-ups; see
/// the module docs. The session comes back unless it failed (a wake-up
/// whose check failed returns as [`Wait::Woken`] without it: the fetch then
/// opens a new one); after [`Wait::NoIdle`] it comes back without INBOX
/// news having been checked.
pub async fn hold<K: Wakes>(
    mut held: Held,
    account: &Account,
    store: &Store,
    t: &Timeouts,
    max: Duration,
    wakes: &mut K,
) -> (Wait<K::Out>, Option<Held>) {
    let deadline = Instant::now() + max;
    let host = account.host.as_str();
    let mut exists = match prepare(&mut held, account, store, t).await {
        Err(e) => return (Wait::Failed(e), None),
        Ok(Ready::NoIdle) => return (Wait::NoIdle, Some(held)),
        Ok(Ready::Missed) => return (Wait::NewMail, Some(held)),
        Ok(Ready::Exists(n)) => n,
    };
    // Whether INBOX matches the store: only then may a FetchNow be answered
    // by a NOOP, and only then does the session go back known.
    let known = held.inbox.take().is_some();
    let unchanged = match held.caps(t, host).await {
        Ok(caps) => super::fetch::unchanged(account, &caps),
        Err(e) => return (Wait::Failed(e), None),
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            held.inbox = known.then_some(exists);
            return (Wait::Timeout, Some(held));
        }
        let slice = left.min(REISSUE);
        let session = &mut held.session;
        let ended = idle_once(
            session,
            t,
            host,
            slice,
            &mut exists,
            known,
            wakes,
            &unchanged,
        )
        .await;
        match ended {
            Ended::Quiet => {}
            Ended::News { usable } => return (Wait::NewMail, usable.then_some(held)),
            Ended::Woken {
                out,
                usable: true,
                news,
            } => {
                held.inbox = (known && !news).then_some(exists);
                return (Wait::Woken(out), Some(held));
            }
            Ended::Woken { out, .. } => return (Wait::Woken(out), None),
            Ended::Failed(e) => return (Wait::Failed(e), None),
        }
    }
}

/// What [`prepare`] found.
enum Ready {
    NoIdle,
    /// INBOX changed since the last complete fetch.
    Missed,
    /// Ready to idle; INBOX has this many messages.
    Exists(u32),
}

/// Asks for IDLE once per connection. When the fetch just before left
/// INBOX known to match the store (imap::kept), the unsolicited responses
/// since then tell whether anything changed, and IDLE starts without
/// another command. Otherwise it EXAMINEs INBOX (read-only, RFC 3501
/// §6.3.2; a SELECT of the fetch before is left without an expunge) and
/// compares it with the store's sync state; unsolicited responses the fetch
/// left behind are dropped: this EXAMINE tells the truth they were about.
async fn prepare(held: &mut Held, account: &Account, store: &Store, t: &Timeouts) -> Result<Ready> {
    let host = account.host.as_str();
    let idle = held.caps(t, host).await?.has("IDLE");
    if !idle {
        return Ok(Ready::NoIdle);
    }
    if held.inbox.is_some() {
        return Ok(match held.unchanged_since_known() {
            Some(exists) => Ready::Exists(exists),
            None => Ready::Missed,
        });
    }
    while held.session.unsolicited_responses.try_recv().is_ok() {}
    let session = &mut held.session;
    let mailbox = timed(t, host, "examining INBOX", async {
        session
            .examine("INBOX")
            .await
            .map_err(|e| imap_error(host, "EXAMINE INBOX", e))
    })
    .await?;
    let state = super::syncstate::load(store, account)?;
    if missed_mail(
        state,
        mailbox.uid_validity,
        mailbox.uid_next,
        mailbox.exists,
    ) {
        return Ok(Ready::Missed);
    }
    let seen = mailbox.uid_validity.zip(mailbox.uid_next);
    if matches!((state, seen), (Some(s), Some((v, n))) if s.uidnext != 0 && s == SyncState { uidvalidity: v, uidnext: n })
    {
        held.inbox = Some(mailbox.exists);
    }
    Ok(Ready::Exists(mailbox.exists))
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
mod tests {
    use super::*;

    #[test]
    fn missed_mail_compares_with_the_last_fetch() {
        let s = Some(SyncState {
            uidvalidity: 5,
            uidnext: 10,
        });
        assert!(!missed_mail(s, Some(5), Some(10), 9));
        assert!(missed_mail(s, Some(5), Some(11), 9));
        assert!(missed_mail(s, Some(6), Some(10), 9));
        assert!(missed_mail(None, Some(5), Some(1), 1));
        assert!(!missed_mail(None, Some(5), Some(1), 0));
    }
}
