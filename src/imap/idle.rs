//! Waiting for new mail with IDLE (RFC 2177), so that the scheduler fetches
//! when mail arrives instead of on a timer.
//!
//! One call opens its own connection, EXAMINEs INBOX and idles until new
//! mail, `max`, or an error. Before idling it compares UIDVALIDITY/UIDNEXT
//! with the sync state the last fetch left in the store: mail that arrived
//! between that fetch and this IDLE would otherwise wait for the next
//! timeout. IDLE is re-issued every [`REISSUE`] because RFC 2177 §3 lets
//! servers drop an idling client after 30 minutes; Dovecot's `* OK Still
//! here` keepalives are untagged OK data, which async-imap's idle stream
//! skips, and which our outer timeout ignores on purpose (they would
//! otherwise keep a wait alive past `max`).

use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{MailboxDatum, Response, Status};
use tokio::time::Instant;

use super::fetch::{blocking, SyncState, STATE_KEY};
use super::session::{self, imap_error, timed, Caps, Session};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::net::{Timeouts, TlsContext};
use crate::store::Store;

/// Re-issue IDLE before 29 minutes (RFC 2177 §3: "at least every 29 minutes").
pub const REISSUE: Duration = Duration::from_secs(29 * 60);

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

/// Waits up to `max` for new mail in INBOX; see the module docs.
pub async fn wait_for_change(
    account: &Account,
    password: &str,
    store: &Store,
    tls: &TlsContext,
    t: &Timeouts,
    max: Duration,
) -> Result<IdleOutcome> {
    let deadline = Instant::now() + max;
    let host = account.host.as_str();
    let mut session = session::open(account, password, tls, t).await?;
    if !Caps::of_session(&mut session, t, host).await?.has("IDLE") {
        session::logout(session, t).await;
        return Ok(IdleOutcome::NoIdle);
    }
    let mailbox = timed(t, host, "examining INBOX", async {
        session
            .examine("INBOX")
            .await
            .map_err(|e| imap_error(host, "EXAMINE INBOX", e))
    })
    .await?;
    let state = blocking(|| store.sync_state(&account.id, STATE_KEY))?
        .as_deref()
        .and_then(SyncState::parse);
    if missed_mail(
        state,
        mailbox.uid_validity,
        mailbox.uid_next,
        mailbox.exists,
    ) {
        session::logout(session, t).await;
        return Ok(IdleOutcome::NewMail);
    }
    let mut exists = mailbox.exists;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            session::logout(session, t).await;
            return Ok(IdleOutcome::Timeout);
        }
        let (next, news) = idle_once(session, t, host, left.min(REISSUE), &mut exists).await?;
        session = next;
        if news {
            session::logout(session, t).await;
            return Ok(IdleOutcome::NewMail);
        }
    }
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

/// One IDLE … DONE round of at most `slice`; returns the session and
/// whether new mail showed up.
async fn idle_once(
    session: Session,
    t: &Timeouts,
    host: &str,
    slice: Duration,
    exists: &mut u32,
) -> Result<(Session, bool)> {
    let mut handle = session.idle();
    timed(t, host, "starting IDLE", async {
        handle.init().await.map_err(|e| imap_error(host, "IDLE", e))
    })
    .await?;
    let end = Instant::now() + slice;
    let mut news = false;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let (wait, stop) = handle.wait_with_timeout(left);
        let got = tokio::time::timeout(left, wait).await;
        drop(stop);
        match got {
            Err(_) | Ok(Ok(IdleResponse::Timeout | IdleResponse::ManualInterrupt)) => break,
            Ok(Err(e)) => return Err(imap_error(host, "IDLE", e)),
            Ok(Ok(IdleResponse::NewData(resp))) => {
                if let Response::Data {
                    status: Status::Bye,
                    outcome,
                } = resp.parsed()
                {
                    return Err(Error::Connection(format!(
                        "{host}: the server ended the IDLE session: {}",
                        outcome.information.as_deref().unwrap_or("BYE")
                    )));
                }
                if is_new_mail(resp.parsed(), exists) {
                    news = true;
                    break;
                }
            }
        }
    }
    let session = timed(t, host, "ending IDLE (DONE)", async {
        handle
            .done()
            .await
            .map_err(|e| imap_error(host, "IDLE DONE", e))
    })
    .await?;
    Ok((session, news))
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
