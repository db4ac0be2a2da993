//! Waiting for new mail with IDLE (RFC 2177) on the session the account
//! task keeps open, so that the scheduler fetches when mail arrives and a
//! FetchNow costs no new connection, TLS handshake or login.
//!
//! [`hold`] takes the task's open session ([`Held`]), EXAMINEs INBOX and
//! compares UIDVALIDITY/UIDNEXT with the sync state the last fetch left in
//! the store: mail that arrived between that fetch and this IDLE would
//! otherwise wait for the next timeout. Then it idles until new mail, `max`,
//! an error, or the caller's wake-up future (a FetchNow) completes. A wake-up
//! ends IDLE properly with DONE (RFC 2177 §3) and hands the session back, so
//! the fetch runs on the same connection; cancelling the future instead
//! would drop the session mid-IDLE. IDLE is re-issued every [`REISSUE`]
//! because RFC 2177 §3 lets servers drop an idling client after 30 minutes;
//! Dovecot's `* OK Still here` keepalives are untagged OK data, which
//! async-imap's idle stream skips, and which our outer timeout ignores on
//! purpose (they would otherwise keep a wait alive past `max`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{MailboxDatum, Response, Status};
use tokio::time::Instant;

use super::fetch::SyncState;
pub use super::kept::Held;
use super::session::{self, imap_error, timed, Session};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::net::{Timeouts, TlsContext};
use crate::store::Store;

/// Re-issue IDLE before 29 minutes (RFC 2177 §3: "at least every 29 minutes").
pub const REISSUE: Duration = Duration::from_secs(29 * 60);

/// Why [`hold`] returned.
#[derive(Debug)]
pub enum Wait<W> {
    /// INBOX has mail the last fetch did not see: fetch now.
    NewMail,
    /// `max` passed without news.
    Timeout,
    /// The server lacks IDLE: the caller polls instead.
    NoIdle,
    /// The wake-up future completed (with its output); IDLE was ended.
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
    let never = std::future::pending::<std::convert::Infallible>();
    let (end, held) = hold(Held::new(session), account, store, t, max, never).await;
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

/// Idles on `held` for up to `max`, or until `wake` completes; see the
/// module docs. The session comes back unless it failed; after
/// [`Wait::NoIdle`] it comes back without INBOX news having been checked.
pub async fn hold<W: Future>(
    mut held: Held,
    account: &Account,
    store: &Store,
    t: &Timeouts,
    max: Duration,
    wake: W,
) -> (Wait<W::Output>, Option<Held>) {
    let deadline = Instant::now() + max;
    let host = account.host.as_str();
    let mut exists = match prepare(&mut held, account, store, t).await {
        Err(e) => return (Wait::Failed(e), None),
        Ok(Ready::NoIdle) => return (Wait::NoIdle, Some(held)),
        Ok(Ready::Missed) => return (Wait::NewMail, Some(held)),
        Ok(Ready::Exists(n)) => n,
    };
    let mut wake = std::pin::pin!(wake);
    let caps = held.known_caps();
    let mut session = held.session;
    // Handed back with the count IDLE kept up to date: nothing new was
    // seen, so the session still matches the store (see imap::kept).
    let back = |session, inbox| Some(Held::again(session, caps.clone(), inbox));
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (Wait::Timeout, back(session, Some(exists)));
        }
        let slice = left.min(REISSUE);
        let (ended, s) = idle_once(session, t, host, slice, &mut exists, wake.as_mut()).await;
        match (ended, s) {
            (Ended::Quiet, Some(s)) => session = s,
            (Ended::Quiet, None) => {
                return (
                    Wait::Failed(Error::Connection(format!("{host}: IDLE ended"))),
                    None,
                )
            }
            (Ended::News, s) => return (Wait::NewMail, s.and_then(|s| back(s, None))),
            (Ended::Woken(w), s) => return (Wait::Woken(w), s.and_then(|s| back(s, Some(exists)))),
            (Ended::Failed(e), _) => return (Wait::Failed(e), None),
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

/// How one IDLE … DONE round ended.
enum Ended<W> {
    Quiet,
    News,
    Woken(W),
    Failed(Error),
}

/// One IDLE … DONE round of at most `slice`, or until `wake` completes.
/// Returns the session unless it failed. News and a wake-up still count
/// when the DONE after them fails: the caller then fetches on a new session.
async fn idle_once<W: Future>(
    session: Session,
    t: &Timeouts,
    host: &str,
    slice: Duration,
    exists: &mut u32,
    mut wake: Pin<&mut W>,
) -> (Ended<W::Output>, Option<Session>) {
    let mut handle = session.idle();
    let started = timed(t, host, "starting IDLE", async {
        handle.init().await.map_err(|e| imap_error(host, "IDLE", e))
    })
    .await;
    if let Err(e) = started {
        return (Ended::Failed(e), None);
    }
    let end = Instant::now() + slice;
    let mut ended = Ended::Quiet;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let (wait, stop) = handle.wait_with_timeout(left);
        let got = tokio::select! {
            got = tokio::time::timeout(left, wait) => got,
            w = wake.as_mut() => {
                ended = Ended::Woken(w);
                break;
            }
        };
        drop(stop);
        match got {
            Err(_) | Ok(Ok(IdleResponse::Timeout | IdleResponse::ManualInterrupt)) => break,
            Ok(Err(e)) => return (Ended::Failed(imap_error(host, "IDLE", e)), None),
            Ok(Ok(IdleResponse::NewData(resp))) => {
                if let Response::Data {
                    status: Status::Bye,
                    outcome,
                } = resp.parsed()
                {
                    let e = Error::Connection(format!(
                        "{host}: the server ended the IDLE session: {}",
                        outcome.information.as_deref().unwrap_or("BYE")
                    ));
                    return (Ended::Failed(e), None);
                }
                if is_new_mail(resp.parsed(), exists) {
                    ended = Ended::News;
                    break;
                }
            }
        }
    }
    let done = timed(t, host, "ending IDLE (DONE)", async {
        handle
            .done()
            .await
            .map_err(|e| imap_error(host, "IDLE DONE", e))
    })
    .await;
    match (done, ended) {
        (Ok(s), ended) => (ended, Some(s)),
        (Err(e), Ended::Quiet) => (Ended::Failed(e), None),
        (Err(e), ended) => {
            tracing::debug!(host, error = %e, "DONE failed; the next fetch reconnects");
            (ended, None)
        }
    }
}
/// EXISTS above the count we know, or RECENT > 0, means new mail (RFC 3501
/// §7.3.1, §7.3.2); EXPUNGE lowers the count; anything else (flag changes
/// as FETCH) is not news.
fn is_new_mail(resp: &Response<'_>, exists: &mut u32) -> bool {
    match resp {
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
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exists_growth_is_news_and_expunge_lowers_the_count() {
        let mut exists = 3;
        assert!(!is_new_mail(
            &Response::MailboxData(MailboxDatum::Exists(3)),
            &mut exists
        ));
        assert!(!is_new_mail(&Response::Expunge(1), &mut exists));
        assert_eq!(exists, 2);
        assert!(is_new_mail(
            &Response::MailboxData(MailboxDatum::Exists(3)),
            &mut exists
        ));
        assert!(is_new_mail(
            &Response::MailboxData(MailboxDatum::Recent(1)),
            &mut exists
        ));
        assert!(!is_new_mail(
            &Response::MailboxData(MailboxDatum::Recent(0)),
            &mut exists
        ));
    }

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
