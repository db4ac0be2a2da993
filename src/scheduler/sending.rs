//! The delivery of an account's outbox: a task of its own beside the
//! account task's fetch loop ([`Courier`]), so that an SMTP server that
//! stalls (it may take 10 minutes to answer the body's final dot, RFC 5321
//! §4.5.3.2.6) never holds up FetchNow, IDLE or the polls. A turn
//! delivers the account's due mail, one after another (`send::deliver`),
//! hands the Sent copy of each accepted one to the account task (it owns
//! the IMAP connection: `scheduler::sent_copy`), then sleeps until the
//! soonest mail still queued is due (the outbox's backoff, `send::policy`)
//! or it is woken.
//!
//! When a turn runs:
//! - once when the account task starts: the daemon settled the queue at
//!   start (`send::resume`), and a restarted task (the account changed)
//!   picks up what its predecessor left;
//! - on [`Request::Deliver`] to the account task (SendMessage commits the
//!   mail, then asks; a completed Office 365 sign-in asks too), which
//!   wakes the courier;
//! - when the soonest queued mail is due.
//!
//! One courier per account task, and it races the task's stop: a Delete,
//! an Update or shutdown ends it at once, even while a server hangs, and
//! it is aborted with its task. A mail it leaves `sending` is settled like
//! one a stopped daemon left (`send::resume` at the next start), so
//! nothing is sent twice.
//!
//! Office 365 accounts log in with XOAUTH2 (`send::office365`: a token of
//! the sign-in, one refresh when the server refuses it). A mail their
//! sign-in cannot send stays queued and the account shows
//! needs-authorization with the reason. Without tokens (never connected,
//! or a dead grant) the outbox is held: no attempts and no timer, each
//! mail due at once and saying that it waits for Connect; the sign-in's
//! completion (a restarted task, or the device poll's end) sends them.
//! So a held mail never fails for its age, and never goes twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::board::State;
use super::request::Request;
use super::request::Stop;
use super::worker::Worker;
use super::Handle;
use crate::error::{Error, Result};
use crate::fetch::blocking;
use crate::send::queue::unix_now;
use crate::send::{self, Outcome, Transport};
use crate::store::OutboxState;

/// How long a turn waits after the store failed before trying again.
const STORE_RETRY: Duration = Duration::from_secs(30);

/// The error of a mail held for Connect that no attempt explained yet.
const HELD: &str = "waiting for the Office 365 sign-in: the account needs Connect";

impl Handle {
    /// Ask the account's task to deliver its due outbox mail now.
    pub fn deliver(&self, account: &str) {
        self.tell(account, Request::Deliver);
    }
}

/// The delivery task of one account task (module docs); aborted when
/// dropped, so it never outlives its account task.
pub(super) struct Courier {
    wake: Arc<Notify>,
    join: JoinHandle<()>,
}

impl Courier {
    /// Starts delivering for `me` until `stop` says so.
    pub fn spawn(me: Arc<Worker>, stop: watch::Receiver<Option<Stop>>) -> Courier {
        let wake = Arc::new(Notify::new());
        let woken = wake.clone();
        let join = tokio::spawn(courier(me, woken, stop));
        Courier { wake, join }
    }

    /// A turn now, or right after the one under way (a wake-up that comes
    /// during a turn is kept, so mail committed meanwhile is not missed).
    pub fn deliver(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Courier {
    fn drop(&mut self) {
        self.join.abort();
    }
}

/// The courier's task: turns until the account's stop.
async fn courier(me: Arc<Worker>, wake: Arc<Notify>, mut stop: watch::Receiver<Option<Stop>>) {
    tokio::select! {
        _ = stop.wait_for(Option::is_some) => {}
        () = deliver_forever(&me, &wake) => {}
    }
}

async fn deliver_forever(me: &Worker, wake: &Notify) {
    loop {
        // Boxed: the SMTP session's state lives on the heap only while a
        // turn runs, not in every idle account's courier.
        let next = Box::pin(turn(me)).await;
        let timer = async {
            match next {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wake.notified() => {}
            () = timer => {}
        }
    }
}

/// One turn (module docs); returns when the next is due by itself
/// (None: only when woken).
async fn turn(me: &Worker) -> Option<Duration> {
    let id = me.account.id.clone();
    let transport = Transport {
        tls: me.rt.tls.clone(),
        timeouts: me.rt.timeouts,
        office365: Some(me.rt.office365.clone()),
    };
    // Each mail at most once per turn: a mail that comes back due at
    // once waits for the timer, so a turn always ends.
    let mut tried = HashSet::new();
    let mut held = send_held(me).await;
    loop {
        let now = unix_now();
        let queued = match queued(me) {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(account_id = %id, error = %e, "cannot read the outbox");
                return Some(STORE_RETRY);
            }
        };
        if held {
            hold(me, &queued, now);
            return None;
        }
        let due = queued
            .iter()
            .find(|(mail, at)| *at <= now && !tried.contains(mail));
        let Some(&(mail, _)) = due else {
            let soonest = queued.iter().map(|(_, at)| *at).min()?;
            let wait = u64::try_from(soonest - now).unwrap_or(0).max(1);
            return Some(Duration::from_secs(wait));
        };
        tried.insert(mail);
        match send::deliver(&me.rt.store, &transport, mail).await {
            Ok(Outcome::Sent(_)) => {
                tracing::info!(account_id = %id, message = mail, "mail sent");
                me.rt.handle.notifier().messages_changed(vec![mail]);
                if super::sent_copy::wanted(&me.account) {
                    me.rt.handle.tell(&id, Request::SentCopy(mail));
                }
            }
            Ok(Outcome::Retry(at, error)) => {
                tracing::warn!(account_id = %id, message = mail, next_at = at, error = %error, "mail not sent; will retry");
                me.rt.handle.notifier().messages_changed(vec![mail]);
            }
            Ok(Outcome::Unauthorized(at, error)) => {
                tracing::warn!(account_id = %id, message = mail, next_at = at, error = %error, "mail not sent: the Office 365 sign-in cannot send; it needs Connect");
                me.rt.handle.notifier().messages_changed(vec![mail]);
                cannot_send(me, &error).await;
                held = send_held(me).await;
            }
            Ok(Outcome::Failed(error)) => {
                tracing::warn!(account_id = %id, message = mail, error = %error, "mail failed");
                me.rt.handle.notifier().messages_changed(vec![mail]);
            }
            // Another turn (an older task) took it, or it is gone.
            Ok(Outcome::Skipped) => {}
            Err(e) => {
                tracing::error!(account_id = %id, message = mail, error = %e, "outbox write failed");
                me.rt.handle.notifier().messages_changed(vec![mail]);
                return Some(STORE_RETRY);
            }
        }
    }
}

/// Mails held for Connect (`send_held`): not tried, and no timer
/// (Connect restarts the task, whose first turn sends them). Each is
/// due from now on, so that it goes out at once after Connect, and
/// says why it waits unless an attempt already said more.
fn hold(me: &Worker, queued: &[(u64, i64)], now: i64) {
    let store = &me.rt.store;
    let mut changed = Vec::new();
    for &(mail, at) in queued {
        let r = blocking(|| {
            let Some(mut rec) = store.outbox_record(mail)? else {
                return Ok(false);
            };
            if rec.state != OutboxState::Queued || (at <= now && !rec.error.is_empty()) {
                return Ok(false);
            }
            rec.next_at = now.min(at);
            if rec.error.is_empty() {
                rec.error = HELD.into();
            }
            store.set_outbox_record(mail, OutboxState::Queued, &rec)?;
            Ok(true)
        });
        match r {
            Ok(true) => changed.push(mail),
            Ok(false) | Err(Error::Busy(_) | Error::NotFound(_)) => {}
            Err(e) => {
                tracing::error!(account_id = %me.account.id, message = mail, error = %e, "cannot mark the mail as waiting for Connect");
            }
        }
    }
    if !changed.is_empty() {
        tracing::info!(account_id = %me.account.id, mails = changed.len(), "mail waits for the Office 365 sign-in (Connect)");
        me.rt.handle.notifier().messages_changed(changed);
    }
}

/// Whether the outbox must wait for Connect: an Office 365 account that
/// logs in to SMTP and has no tokens (never connected, or a dead grant).
/// Sending would only fail without asking anyone; Connect restarts the
/// task, whose first turn sends (scheduler::sending).
async fn send_held(me: &Worker) -> bool {
    let a = &me.account;
    a.kind.is_office365()
        && a.smtp_login
        && matches!(me.rt.office365.is_authorized(&a.id).await, Ok(false))
}

/// After a mail could not go out because the sign-in cannot send: the
/// account shows needs-authorization with the mail's error, and
/// `Authorized` follows the tokens (a dead grant deleted them; a server
/// that refuses fresh tokens leaves them).
async fn cannot_send(me: &Worker, error: &str) {
    let authorized = me
        .rt
        .office365
        .is_authorized(&me.account.id)
        .await
        .unwrap_or(false);
    me.set(|s| {
        s.authorized = authorized;
        s.state = State::NeedsAuthorization;
        s.last_error = crate::redact::cap(error);
    });
}

/// This account's queued mails as (id, due), soonest first.
pub(super) fn queued(me: &Worker) -> Result<Vec<(u64, i64)>> {
    let store = &me.rt.store;
    let all = blocking(|| store.pending_outbox(OutboxState::Queued))?;
    Ok(all
        .into_iter()
        .filter(|p| p.account == me.account.id)
        .map(|p| (p.id, p.at))
        .collect())
}
