//! The SMTP turn of an account's task: deliver the account's due outbox
//! mail, one after another (`send::deliver`), then the Sent copy of each
//! accepted one on the task's kept IMAP connection, then arm a timer for
//! the soonest mail still queued (the outbox's backoff, `send::policy`).
//!
//! When a turn runs:
//! - once when the task starts: the daemon settled the queue at start
//!   (`send::resume`), and a restarted task (the account changed) picks up
//!   what its predecessor left;
//! - on [`Request::Deliver`]: SendMessage commits the mail, then asks;
//! - when the retry timer fires: it is a task of its own that hands the
//!   task a `Deliver`, so a task waiting in IDLE wakes like for any other
//!   request. The timer belongs to the [`Outbox`] of the running task and
//!   is aborted with it.
//!
//! Office 365 accounts log in with XOAUTH2 (`send::office365`: a token of
//! the sign-in, one refresh when the server refuses it). A mail their
//! sign-in cannot send stays queued and the account shows
//! needs-authorization with the reason. Without tokens (never connected,
//! or a dead grant) the outbox is held: no attempts and no timer, each
//! mail due at once and saying that it waits for Connect; the sign-in's
//! completion (a restarted task, or the device poll's end) sends them.
//! So a held mail never fails for its age, and never goes twice.
//!
//! The Sent copy (`SaveSentCopy`, IMAP accounts only): the composed bytes
//! exactly as sent, APPENDed with `\Seen` (RFC 3501 §6.3.11) to
//! `SentFolder`. Bcc recipients are in the envelope only, so the copy does
//! not show them. The mail is `sent` before the copy is tried: an APPEND
//! that fails (a missing folder, a broken connection) leaves it `sent` and
//! says so in its `error`; the copy is not retried, because a retry that
//! raced a slow server could leave two copies. POP3 accounts have no
//! folders on the server, so no Sent copy.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::board::State;
use super::request::Request;
use super::worker::{no_password, Slot, Work, Worker};
use super::Handle;
use crate::error::{Error, Result};
use crate::fetch::blocking;
use crate::imap::Connection;
use crate::send::queue::unix_now;
use crate::send::{self, Outcome, Transport};
use crate::store::OutboxState;

/// How long a turn waits after the store failed before trying again.
const STORE_RETRY: Duration = Duration::from_secs(30);

/// The error of a mail held for Connect that no attempt explained yet.
const HELD: &str = "waiting for the Office 365 sign-in: the account needs Connect";

/// IMAP flags of the Sent copy: the sender has read it.
const SENT_FLAGS: &[&str] = &["\\Seen"];

impl Handle {
    /// Ask the account's task to deliver its due outbox mail now.
    pub fn deliver(&self, account: &str) {
        self.tell(account, Request::Deliver);
    }
}

/// The sending state of one account task: its retry timer.
#[derive(Default)]
pub(super) struct Outbox {
    timer: Option<JoinHandle<()>>,
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
    }
}

impl Outbox {
    /// One SMTP turn (module docs); returns the connection it was given or
    /// opened, if still usable.
    pub async fn turn(&mut self, me: &Worker, mut conn: Option<Connection>) -> Option<Connection> {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
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
                    self.arm(me, STORE_RETRY);
                    return conn;
                }
            };
            if held {
                self.hold(me, &queued, now);
                break;
            }
            let due = queued
                .iter()
                .find(|(mail, at)| *at <= now && !tried.contains(mail));
            let Some(&(mail, _)) = due else {
                if let Some(at) = queued.iter().map(|(_, at)| *at).min() {
                    let wait = u64::try_from(at - now).unwrap_or(0).max(1);
                    self.arm(me, Duration::from_secs(wait));
                }
                break;
            };
            tried.insert(mail);
            match send::deliver(&me.rt.store, &transport, mail).await {
                Ok(Outcome::Sent(_)) => {
                    tracing::info!(account_id = %id, message = mail, "mail sent");
                    conn = self.sent_copy(me, conn, mail).await;
                    me.rt.handle.notifier().messages_changed(vec![mail]);
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
                    self.arm(me, STORE_RETRY);
                    return conn;
                }
            }
        }
        conn
    }

    /// Mails held for Connect (`send_held`): not tried, and no timer
    /// (Connect restarts the task, whose first turn sends them). Each is
    /// due from now on, so that it goes out at once after Connect, and
    /// says why it waits unless an attempt already said more.
    fn hold(&self, me: &Worker, queued: &[(u64, i64)], now: i64) {
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

    /// A `Deliver` to this account's task after `wait`.
    fn arm(&mut self, me: &Worker, wait: Duration) {
        let (handle, id) = (me.rt.handle.clone(), me.account.id.clone());
        self.timer = Some(tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            handle.deliver(&id);
        }));
    }

    /// The Sent copy of outbox mail `mail` (module docs).
    async fn sent_copy(
        &self,
        me: &Worker,
        conn: Option<Connection>,
        mail: u64,
    ) -> Option<Connection> {
        let a = &me.account;
        if !a.kind.is_imap() || !a.save_sent_copy || a.sent_folder.is_empty() {
            return conn;
        }
        let store = &me.rt.store;
        let raw = match blocking(|| store.raw(mail)) {
            Ok(Some(raw)) => raw,
            Ok(None) => return conn,
            Err(e) => {
                self.copy_failed(me, mail, &e);
                return conn;
            }
        };
        let work = Append {
            folder: &a.sent_folder,
            flags: SENT_FLAGS,
            message: &raw,
        };
        let (r, back) = me
            .on_connection(conn, &Slot::new(None), &no_password, &work)
            .await;
        match r {
            Ok(()) => {
                tracing::info!(account_id = %a.id, message = mail, folder = %a.sent_folder, "Sent copy saved");
            }
            Err(e) => self.copy_failed(me, mail, &e),
        }
        back
    }

    /// Records in the mail's `error` that it was sent without its copy.
    fn copy_failed(&self, me: &Worker, mail: u64, e: &Error) {
        let a = &me.account;
        let store = &me.rt.store;
        let e = crate::redact::account_error(store, a, e);
        let error = crate::redact::cap(&format!(
            "sent, but the copy in the Sent folder {:?} could not be saved: {e}",
            a.sent_folder
        ));
        tracing::warn!(account_id = %a.id, message = mail, error = %error, "Sent copy failed");
        let r = blocking(|| {
            let Some(mut rec) = store.outbox_record(mail)? else {
                return Ok(());
            };
            rec.error = error;
            store.set_outbox_record(mail, OutboxState::Sent, &rec)
        });
        if let Err(e) = r {
            tracing::error!(account_id = %a.id, message = mail, error = %e, "cannot record the Sent copy's failure");
        }
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

/// An APPEND of one message.
pub(super) struct Append<'a> {
    pub folder: &'a str,
    pub flags: &'a [&'a str],
    pub message: &'a [u8],
}

impl Work for Append<'_> {
    type Out = ();
    fn run<'c>(&'c self, c: &'c mut Connection) -> impl Future<Output = Result<()>> + Send + 'c {
        c.append(self.folder, self.flags, self.message)
    }
}
