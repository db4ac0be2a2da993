//! The work of one account for its task: a fetch, a Trash move, each on the
//! kept connection or a new one (connection permit, password), and what the
//! world learns of it (the board, notices, the answers to the callers).

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::board::{State, Status};
use super::request::Reply;
use super::token::{reconnects, TokenLife};
use super::Runtime;
use crate::account::Account;
use crate::error::{Error, Result};
use crate::fetch::{blocking, FetchReport};
use crate::imap::{self, Connection};
use crate::store::SecretKind;

/// How long one opening session may hold a connection permit. The permits
/// bound how many sessions are being opened at once (connect, TLS, login),
/// so that a restart with hundreds of accounts does not storm the servers;
/// a server that accepts and then hangs keeps only its own account waiting
/// (up to the timeouts) and releases its permit after this slot, so a few
/// dead hosts cannot starve every other account (invariant 5).
const OPEN_SLOT: Duration = Duration::from_secs(2);

/// The connection permit of one piece of work, released as soon as its
/// session is open (or after [`OPEN_SLOT`]).
pub(super) type Slot = Mutex<Option<OwnedSemaphorePermit>>;

fn release(slot: &Slot) {
    if let Ok(mut p) = slot.lock() {
        p.take();
    }
}

/// What an account task needs while it works; the task's queue and timers
/// stay with the task loop, so that a wait can listen on them while a fetch
/// or an IDLE borrows this.
pub(super) struct Worker {
    pub account: Account,
    pub rt: Runtime,
    /// Held by the task and by every LOGOUT it sends off, so that shutdown
    /// can await them all (see `owner`).
    pub done: mpsc::Sender<()>,
    /// Office 365: the life of the token the last login used.
    pub token_life: TokenLife,
}

impl Worker {
    /// One fetch. IMAP runs on `kept` when the task kept a connection, else
    /// on a new one, which comes back when the fetch succeeded; on any
    /// error it is dropped (it may be dead or mid-reply).
    pub async fn fetch(
        &self,
        kept: Option<Connection>,
    ) -> (Result<FetchReport>, Option<Connection>) {
        self.set(|s| {
            s.state = State::Fetching;
            s.progress = (0, 0);
        });
        let a = &self.account;
        let slot = Slot::new(None);
        let last = Mutex::new(Instant::now());
        let progress = |done: u32, total: u32| {
            // The session is open: its opening no longer needs the permit.
            release(&slot);
            self.progress(&last, done, total);
        };
        if !a.kind.is_imap() {
            let fetch = async {
                let secret = self.credential().await?.ok_or_else(no_password)?;
                crate::pop3::fetch::fetch(
                    a,
                    secret.expose(),
                    &self.rt.store,
                    &self.rt.tls,
                    &self.rt.timeouts,
                    &progress,
                )
                .await
            };
            return (self.with_permit(&slot, fetch).await, None);
        }
        let work = FetchInbox {
            account: a,
            store: &self.rt.store,
            progress: &progress,
        };
        self.on_connection(kept, &slot, &no_password, &work).await
    }

    /// The Trash move of stored message `message` (see `Request::Trash`);
    /// a saved draft is removed from its Drafts folder instead. Nothing to
    /// do without a Trash folder or a UID known under INBOX's
    /// current UIDVALIDITY; otherwise a move on the kept connection or a
    /// new one. On any error the caller keeps the mail locally.
    pub async fn trash(
        &self,
        kept: Option<Connection>,
        message: u64,
    ) -> (Result<()>, Option<Connection>) {
        let a = &self.account;
        let store = &self.rt.store;
        if !a.kind.is_imap() || a.trash_folder.is_empty() {
            return (Ok(()), kept);
        }
        let place = blocking(|| imap::syncstate::locate(store, &a.id, message));
        let (validity, uid) = match place {
            Ok(Some(place)) => place,
            Ok(None) => return (Ok(()), kept),
            Err(e) => return (Err(e), kept),
        };
        let no_password = || {
            Error::Authentication(format!(
                "account {} has no password set, so the mail cannot be moved to its Trash \
                 folder; set the password, or clear trash_folder to delete locally only",
                a.id
            ))
        };
        let work = MoveTo {
            folder: &a.trash_folder,
            validity,
            uid,
        };
        let (r, back) = self
            .on_connection(kept, &Slot::new(None), &no_password, &work)
            .await;
        if let Ok(moved) = &r {
            tracing::info!(account_id = %a.id, message, "{}", moved.journal());
        }
        let r = r.map_err(|e| imap::folders::by_folder_list(e, &a.trash_folder, &a.folders));
        (r.map(|_| ()), back)
    }

    /// Runs `work` on `kept`, or on a new connection. A kept connection that
    /// fails with a connection error is replaced once: servers end idle
    /// sessions (restarts, autologout) and that is no failure of the
    /// account. The connection comes back if it is still usable.
    pub(super) async fn on_connection<W: Work>(
        &self,
        kept: Option<Connection>,
        slot: &Slot,
        no_password: &(dyn Fn() -> Error + Sync),
        work: &W,
    ) -> (Result<W::Out>, Option<Connection>) {
        let kept = match kept {
            Some(c) if self.token_life.stale(&self.account) => {
                self.retire(c);
                None
            }
            kept => kept,
        };
        let reused = kept.is_some();
        let mut conn = match kept {
            Some(c) => c,
            None => match self.connect(slot, no_password).await {
                Ok(c) => c,
                Err(e) => return (Err(e), None),
            },
        };
        let r = match work.run(&mut conn).await {
            Err(e) if reused && reconnects(&self.account, &e) => {
                let id = &self.account.id;
                tracing::debug!(account_id = %id, error = %e, "the kept session failed; reconnecting");
                drop(conn);
                conn = match self.connect(slot, no_password).await {
                    Ok(c) => c,
                    Err(e) => return (Err(e), None),
                };
                work.run(&mut conn).await
            }
            r => r,
        };
        let usable = r.is_ok() && conn.usable();
        (r, usable.then_some(conn))
    }

    /// Connect and log in under a connection permit.
    async fn connect(
        &self,
        slot: &Slot,
        no_password: &(dyn Fn() -> Error + Sync),
    ) -> Result<Connection> {
        let open = async {
            let secret = self.credential().await?.ok_or_else(no_password)?;
            let (a, rt) = (&self.account, &self.rt);
            Connection::open(a, secret.expose(), &rt.tls, &rt.timeouts).await
        };
        let conn = self.with_permit(slot, open).await?;
        release(slot);
        Ok(conn)
    }

    /// Runs `fut` holding a connection permit (in `slot`, so that progress
    /// can release it) for at most [`OPEN_SLOT`].
    async fn with_permit<T>(&self, slot: &Slot, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let permit = self
            .rt
            .connects
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Busy("the daemon is stopping".into()))?;
        if let Ok(mut p) = slot.lock() {
            *p = Some(permit);
        }
        tokio::pin!(fut);
        tokio::select! {
            r = &mut fut => return r,
            _ = tokio::time::sleep(OPEN_SLOT) => release(slot),
        }
        fut.await
    }

    /// What the next login uses: the password, or for Office 365 a fresh
    /// access token (`Office365::access_token` refreshes ahead of expiry
    /// and commits a rotated refresh token first), noted as the one the
    /// kept connection runs on; a token means the account is authorized.
    async fn credential(&self) -> Result<Option<crate::store::Secret>> {
        if self.account.kind.is_office365() {
            let token = self.rt.office365.access_token(&self.account).await?;
            self.token_life.note(token.expires_at());
            self.set(|s| s.authorized = true);
            return Ok(Some(token.secret().to_string().into()));
        }
        blocking(|| self.rt.store.secret(&self.account.id, SecretKind::Password))
    }

    /// Sends LOGOUT off on its own task, bounded by `imap::LOGOUT_WAIT`,
    /// so that it never delays the account's next request; a connection
    /// that is not usable is just closed.
    pub fn retire(&self, conn: Connection) {
        if !conn.usable() {
            return;
        }
        let done = self.done.clone();
        tokio::spawn(async move {
            conn.logout(imap::LOGOUT_WAIT).await;
            drop(done);
        });
    }

    /// Reports a fetch's end: the account's status, the log, the
    /// FetchFinished notice, and the answer to everyone who asked. An
    /// error is shown only scrubbed of the account's secrets and capped
    /// (crate::redact): servers echo passwords and whole buffers.
    /// FetchFinished, which every listener on the bus sees, names only
    /// the error's kind.
    pub fn finished(
        &self,
        result: &Result<FetchReport>,
        waiters: Vec<Reply<FetchReport>>,
        next: Option<Duration>,
    ) {
        let id = &self.account.id;
        let scrubbed;
        let result = match result {
            Err(e) => {
                scrubbed = Err(crate::redact::account_error(
                    &self.rt.store,
                    &self.account,
                    e,
                ));
                &scrubbed
            }
            ok => ok,
        };
        match result {
            Ok(report) => {
                let warning = report
                    .warning
                    .as_deref()
                    .map(crate::redact::cap)
                    .unwrap_or_default();
                self.set(|s| {
                    s.state = State::Idle;
                    s.last_error = warning;
                    s.last_fetch_at = now();
                });
                tracing::info!(
                    account_id = %id,
                    tenant = %self.account.tenant,
                    message_count = report.new_ids.len(),
                    deleted = report.deleted_on_server,
                    "fetch done"
                );
            }
            Err(e) => {
                let state = match e {
                    Error::NeedsAuthorization(_) => State::NeedsAuthorization,
                    _ => State::Error,
                };
                self.set(|s| {
                    s.state = state;
                    s.last_error = e.to_string();
                });
                let retry_in_s = next.map(|d| d.as_secs());
                tracing::warn!(
                    account_id = %id,
                    tenant = %self.account.tenant,
                    error_kind = e.name(),
                    error = %e,
                    ?retry_in_s,
                    "fetch failed"
                );
            }
        }
        let (new_ids, error) = match result {
            Ok(r) => (r.new_ids.clone(), String::new()),
            Err(e) => (Vec::new(), e.name().to_string()),
        };
        self.rt.handle.notifier().fetch_finished(id, new_ids, error);
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }

    /// Puts progress on the board; PropertiesChanged at most 4 times a
    /// second, and at the end.
    fn progress(&self, last: &Mutex<Instant>, done: u32, total: u32) {
        self.rt
            .handle
            .board()
            .update(&self.account.id, |s| s.progress = (done, total));
        let due = last.lock().map(|mut l| {
            let due = l.elapsed() >= Duration::from_millis(250) || done == total;
            if due {
                *l = Instant::now();
            }
            due
        });
        if due.unwrap_or(true) {
            self.rt.handle.notifier().status(&self.account.id);
        }
    }

    pub fn set(&self, f: impl FnOnce(&mut Status)) {
        if self.rt.handle.board().update(&self.account.id, f) {
            self.rt.handle.notifier().status(&self.account.id);
        }
    }
}

/// A piece of IMAP work that [`Worker::on_connection`] runs (again, on a
/// new connection, when a kept one failed).
pub(super) trait Work {
    type Out;
    fn run<'c>(
        &'c self,
        c: &'c mut Connection,
    ) -> impl Future<Output = Result<Self::Out>> + Send + 'c;
}

/// A fetch of INBOX.
struct FetchInbox<'a> {
    account: &'a Account,
    store: &'a std::sync::Arc<crate::store::Store>,
    progress: crate::fetch::Progress<'a>,
}

impl Work for FetchInbox<'_> {
    type Out = FetchReport;
    fn run<'c>(
        &'c self,
        c: &'c mut Connection,
    ) -> impl Future<Output = Result<FetchReport>> + Send + 'c {
        c.fetch(self.account, self.store, self.progress)
    }
}

/// A move of one INBOX mail into a folder.
struct MoveTo<'a> {
    folder: &'a str,
    validity: u32,
    uid: u32,
}

impl Work for MoveTo<'_> {
    type Out = imap::Moved;
    fn run<'c>(
        &'c self,
        c: &'c mut Connection,
    ) -> impl Future<Output = Result<imap::Moved>> + Send + 'c {
        c.move_to(self.folder, self.validity, std::slice::from_ref(&self.uid))
    }
}

pub(super) fn no_password() -> Error {
    Error::Authentication("no password set for this account (use SetPassword)".into())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
