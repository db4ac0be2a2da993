//! One fetch of one account for its task: the connection permit, the
//! password, progress reports, and for IMAP the session the task keeps
//! between fetches (connection reuse: a fetch on a kept session costs no
//! connect, TLS handshake or login).

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use super::owner::Runtime;
use super::{Notice, Status};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::fetch::FetchReport;
use crate::imap::kept::Held;
use crate::imap::session;
use crate::store::SecretKind;

/// How long one opening session may hold a connection permit. The permits
/// bound how many sessions are being opened at once (connect, TLS, login),
/// so that a restart with hundreds of accounts does not storm the servers;
/// a server that accepts and then hangs keeps only its own account waiting
/// (up to the timeouts) and releases its permit after this slot, so a few
/// dead hosts cannot starve every other account (invariant 5).
const OPEN_SLOT: Duration = Duration::from_secs(2);

/// What an account task needs while it runs; the channels stay with the
/// task loop, so that a wait can listen on them while a fetch or an IDLE
/// borrows this.
pub(super) struct Worker {
    pub account: Account,
    pub rt: Runtime,
}

impl Worker {
    /// One fetch. IMAP runs on `held` when the task kept a session, else on
    /// a new one, and hands the session back when the fetch succeeded; on
    /// any error it is dropped (it may be dead or mid-reply) and the next
    /// fetch reconnects. A kept session that fails with a connection error
    /// is retried once on a new one: servers end idle sessions (restarts,
    /// autologout) and that is no failure of the account.
    pub async fn fetch(&self, held: Option<Held>) -> (Result<FetchReport>, Option<Held>) {
        self.set(|s| {
            s.state = super::State::Fetching;
            s.progress = (0, 0);
        });
        let a = &self.account;
        if a.kind.is_office365() {
            let e = Error::NeedsAuthorization(
                "Office 365 sign-in (Connect) is not available in this version".into(),
            );
            return (Err(e), None);
        }
        let slot: Mutex<Option<OwnedSemaphorePermit>> = Mutex::new(None);
        let release = || {
            if let Ok(mut p) = slot.lock() {
                p.take();
            }
        };
        let last = Mutex::new(Instant::now());
        let progress = |done: u32, total: u32| {
            // The session is open: its opening no longer needs the permit.
            release();
            self.progress(&last, done, total);
        };
        if !a.kind.is_imap() {
            let fetch = async {
                let secret = self.secret().await?;
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
        let reused = held.is_some();
        let mut h = match held {
            Some(h) => h,
            None => match self.open_imap(&slot).await {
                Ok(h) => h,
                Err(e) => return (Err(e), None),
            },
        };
        let store = &self.rt.store;
        let t = &self.rt.timeouts;
        match crate::imap::fetch::run(&mut h, a, store, t, &progress).await {
            Ok(r) => (Ok(r), Some(h)),
            Err(Error::Connection { message: e, .. }) if reused => {
                tracing::debug!(account_id = %a.id, error = %e, "the kept session failed; reconnecting");
                drop(h);
                let mut h = match self.open_imap(&slot).await {
                    Ok(h) => h,
                    Err(e) => return (Err(e), None),
                };
                match crate::imap::fetch::run(&mut h, a, store, t, &progress).await {
                    Ok(r) => (Ok(r), Some(h)),
                    Err(e) => (Err(e), None),
                }
            }
            Err(e) => (Err(e), None),
        }
    }

    /// Connect and log in under a connection permit.
    async fn open_imap(&self, slot: &Mutex<Option<OwnedSemaphorePermit>>) -> Result<Held> {
        let open = async {
            let secret = self.secret().await?;
            let a = &self.account;
            session::open(a, secret.expose(), &self.rt.tls, &self.rt.timeouts).await
        };
        let session = self.with_permit(slot, open).await?;
        if let Ok(mut p) = slot.lock() {
            p.take();
        }
        Ok(Held::new(session))
    }

    /// Runs `fut` holding a connection permit (in `slot`, so that progress
    /// can release it) for at most [`OPEN_SLOT`].
    async fn with_permit<T>(
        &self,
        slot: &Mutex<Option<OwnedSemaphorePermit>>,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
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
            _ = tokio::time::sleep(OPEN_SLOT) => {
                if let Ok(mut p) = slot.lock() {
                    p.take();
                }
            }
        }
        fut.await
    }

    /// The account's password, read from the store off the runtime threads.
    async fn secret(&self) -> Result<crate::store::Secret> {
        let store = self.rt.store.clone();
        let id = self.account.id.clone();
        tokio::task::spawn_blocking(move || store.secret(&id, SecretKind::Password))
            .await
            .map_err(|e| Error::storage_msg(format!("store task failed: {e}")))??
            .ok_or_else(|| {
                Error::Authentication("no password set for this account (use SetPassword)".into())
            })
    }

    /// Puts progress on the board; PropertiesChanged at most 4 times a
    /// second, and at the end.
    fn progress(&self, last: &Mutex<Instant>, done: u32, total: u32) {
        let mut changed = false;
        if let Ok(mut b) = self.rt.handle.board().lock() {
            let s = b.entry(self.account.id.clone()).or_default();
            s.progress = (done, total);
            changed = true;
        }
        let due = last.lock().map(|mut l| {
            let due = l.elapsed() >= Duration::from_millis(250) || done == total;
            if due {
                *l = Instant::now();
            }
            due
        });
        if changed && due.unwrap_or(true) {
            self.rt
                .handle
                .notify(Notice::Status(self.account.id.clone()));
        }
    }

    pub fn set(&self, f: impl FnOnce(&mut Status)) {
        let changed = match self.rt.handle.board().lock() {
            Ok(mut b) => {
                let s = b.entry(self.account.id.clone()).or_default();
                let before = s.clone();
                f(s);
                *s != before
            }
            Err(_) => false,
        };
        if changed {
            self.rt
                .handle
                .notify(Notice::Status(self.account.id.clone()));
        }
    }
}
