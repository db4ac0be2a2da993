//! Office 365 accounts in their task: the access token each login uses,
//! the kept connection's token life, the device sign-in polled in the
//! background, and the `Authorized` flag on the board (docs/OAUTH.md).
//!
//! - **Logins** take [`crate::oauth::Office365::access_token`], which
//!   refreshes ahead of expiry and commits a rotated refresh token before
//!   the new access token is used.
//! - **A kept IMAP connection** outlives nothing: its token's life is
//!   `super::token`, which the worker reads.
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

use tokio::task::JoinHandle;

use super::board::State;
use super::worker::Worker;
use super::Handle;
use crate::error::{Error, Result};

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
