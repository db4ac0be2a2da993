//! Office 365 accounts in their task: the access token each login uses,
//! the kept connection's token life, the device sign-in polled in the
//! background, and the `Authorized` flag on the board (docs/OAUTH.md).
//!
//! - **Logins** take [`crate::oauth::Office365::access_token`], which
//!   refreshes ahead of expiry and commits a rotated refresh token before
//!   the new access token is used.
//! - **A kept IMAP connection** outlives nothing: Office 365 ends a
//!   session whose token expired ("AccessTokenExpired") and fails its
//!   commands. So the IDLE on it ends when the token reaches the refresh
//!   margin ([`idle_limit`]), and the next turn logs in afresh with a new
//!   token instead of reusing it ([`stale`]). A session the server ends
//!   earlier is re-opened by the worker's usual reconnect, and a command
//!   refused as unauthenticated on a reused session counts the same
//!   ([`reconnects`]); neither shows an error.
//! - **A dead grant** (`invalid_grant`, revoked, declined, expired device
//!   code) is `NeedsAuthorization`: the task stops trying (no timer; the
//!   oauth module already deleted the tokens and logged one warning) until
//!   a Connect restarts it.
//! - **Connect("device")** stores the device code and restarts the task;
//!   the task then polls on a task of its own ([`DevicePoll`]), so that
//!   requests served meanwhile do not restart the poll (and lose a
//!   `slow_down`), and a daemon restart resumes it from the store. On
//!   success the account fetches at once. A failure that is not the
//!   user's (a wrong app registration) stops the poll with a clear
//!   `LastError`; an unreachable endpoint is waited out inside the poll.
//! - **Sending** (scheduler::sending, send::office365): while the account
//!   has no tokens its outbox is held instead of failing attempt after
//!   attempt; a completed device sign-in asks the task to deliver what
//!   waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::board::State;
use super::worker::Worker;
use super::Handle;
use crate::error::{Error, Result};
use crate::oauth::REFRESH_MARGIN;
use crate::store::Secret;

/// When the access token of the worker's last login was issued and
/// expires (unix seconds; 0 before any Office 365 login).
#[derive(Debug, Default)]
pub(super) struct TokenLife {
    issued_at: AtomicU64,
    expires_at: AtomicU64,
}

/// A fresh access token for the account's next login, noted as the one
/// the kept connection will run on.
pub(super) async fn login_token(me: &Worker) -> Result<Secret> {
    let token = me.rt.office365.access_token(&me.account).await?;
    me.token_life.issued_at.store(now(), Ordering::Relaxed);
    me.token_life
        .expires_at
        .store(token.expires_at(), Ordering::Relaxed);
    set_authorized(me, true);
    Ok(Secret::from(token.secret().to_string()))
}

/// Seconds left before the kept connection's token reaches the refresh
/// margin (the oauth module's rule: 5 minutes, or half its life).
fn left(me: &Worker) -> Option<u64> {
    if !me.account.kind.is_office365() {
        return None;
    }
    let issued = me.token_life.issued_at.load(Ordering::Relaxed);
    let expires = me.token_life.expires_at.load(Ordering::Relaxed);
    let margin = REFRESH_MARGIN
        .as_secs()
        .min(expires.saturating_sub(issued) / 2);
    Some(expires.saturating_sub(margin).saturating_sub(now()))
}

/// Whether a kept connection must not be reused: its token is about to
/// expire, and the server would end the session under us.
pub(super) fn stale(me: &Worker) -> bool {
    left(me) == Some(0)
}

/// How long an IDLE on the kept connection may last: `reissue`, or less
/// when the token runs out sooner (at least a second, so that a token
/// issued with no time left cannot spin).
pub(super) fn idle_limit(me: &Worker, reissue: Duration) -> Duration {
    match left(me) {
        Some(s) => reissue.min(Duration::from_secs(s.max(1))),
        None => reissue,
    }
}

/// Whether `e` on a reused Office 365 connection means "log in again":
/// a server that ended the session for its expired token refuses the
/// next command as unauthenticated.
pub(super) fn reconnects(me: &Worker, e: &Error) -> bool {
    match e {
        Error::Connection { .. } => true,
        Error::Authentication(_) => me.account.kind.is_office365(),
        _ => false,
    }
}

/// How an Office 365 account's task begins.
pub(super) struct Start {
    /// The device sign-in to wait for.
    pub poll: Option<DevicePoll>,
    /// Whether it may fetch: plain accounts always, Office 365 ones with
    /// tokens. One without waits for Connect instead of failing turns.
    pub may_fetch: bool,
}

/// At task start: publishes `Authorized` and starts polling a pending
/// device sign-in (Connect, or one a restart interrupted).
pub(super) async fn begin(me: &Worker) -> Start {
    if !me.account.kind.is_office365() {
        return Start {
            poll: None,
            may_fetch: true,
        };
    }
    let o365 = &me.rt.office365;
    let id = &me.account.id;
    let authorized = o365.is_authorized(id).await.unwrap_or(false);
    set_authorized(me, authorized);
    let pending = matches!(o365.pending_flow(id).await, Ok(Some("device")));
    if !authorized {
        let why = if pending {
            String::new()
        } else {
            "the Office 365 account is not connected; Connect to sign in".to_string()
        };
        me.set(|s| {
            s.state = State::NeedsAuthorization;
            s.last_error = why;
        });
    }
    let poll = pending.then(|| {
        tracing::info!(account_id = %id, "waiting for the Office 365 device sign-in");
        let (o365, account) = (o365.clone(), me.account.clone());
        DevicePoll {
            join: tokio::spawn(async move { o365.finish_device(&account).await }),
            result: None,
        }
    });
    Start {
        poll,
        may_fetch: authorized,
    }
}

/// The device sign-in being polled; dropping it (the task stops) stops
/// the poll, and the device code stays in the store for the next task.
pub(super) struct DevicePoll {
    join: JoinHandle<Result<()>>,
    result: Option<Result<()>>,
}

impl DevicePoll {
    /// Waits for the poll's end and reports it on the board and in the
    /// journal; whether the account may fetch now (signed in, or still
    /// holding the tokens of an earlier sign-in).
    pub async fn outcome(&mut self, me: &Worker) -> bool {
        // Cancel-safe: the task's wait drops this future when a request
        // comes first, so the poll's result is kept until reported.
        if self.result.is_none() {
            let r = match (&mut self.join).await {
                Ok(r) => r,
                Err(e) => Err(Error::storage("the sign-in poll failed", e)),
            };
            self.result = Some(r);
        }
        let id = &me.account.id;
        let authorized = me.rt.office365.is_authorized(id).await.unwrap_or(false);
        let Some(r) = self.result.take() else {
            return authorized;
        };
        match r {
            Ok(()) => {
                tracing::info!(account_id = %id, "Office 365 sign-in completed");
                set_authorized(me, true);
                // Mail held for the sign-in goes now (scheduler::sending).
                if super::sending::queued(me).is_ok_and(|q| !q.is_empty()) {
                    me.rt.handle.deliver(id);
                }
                me.set(|s| {
                    s.state = State::Idle;
                    s.last_error.clear();
                });
                true
            }
            Err(e) => {
                me.rt.handle.sign_in_failed(id, authorized, &e);
                authorized
            }
        }
    }
}

impl Drop for DevicePoll {
    fn drop(&mut self) {
        self.join.abort();
    }
}

impl Handle {
    /// A sign-in that failed (the device poll, or CompleteConnect outside
    /// the task): the journal, `LastError` with Microsoft's reason, and
    /// the state — unchanged work for an account that still holds the
    /// tokens of an earlier sign-in, else needs-authorization (the user
    /// declined, the code expired …) or error (a wrong app registration,
    /// the sign-in server unreachable).
    pub fn sign_in_failed(&self, account: &str, authorized: bool, e: &Error) {
        tracing::warn!(account_id = %account, error_kind = e.name(), error = %e, "Office 365 sign-in failed");
        let state = match (e, authorized) {
            (_, true) => State::Idle,
            (Error::NeedsAuthorization(_), false) => State::NeedsAuthorization,
            _ => State::Error,
        };
        let changed = self.board().update(account, |s| {
            s.authorized = authorized;
            s.state = state;
            s.last_error = crate::redact::cap(&e.to_string());
        });
        if changed {
            self.notifier().status(account);
        }
    }
}

/// After a failed fetch: a dead grant also clears `Authorized`.
pub(super) async fn after_failure(me: &Worker, e: &Error) {
    if me.account.kind.is_office365() && matches!(e, Error::NeedsAuthorization(_)) {
        let authorized = me
            .rt
            .office365
            .is_authorized(&me.account.id)
            .await
            .unwrap_or(false);
        set_authorized(me, authorized);
    }
}

fn set_authorized(me: &Worker, authorized: bool) {
    me.set(|s| s.authorized = authorized);
}

fn now() -> u64 {
    crate::oauth::unix_now()
}
