//! The task of one account: wait for its turn (poll interval, FetchNow, or
//! a backoff after a failure), fetch, report, repeat — until cancelled.
//!
//! A cancel drops the fetch future at its next await point. That is safe by
//! construction of the fetchers: a batch is deleted on the server only after
//! its store transaction committed, and POP3 deletes are only committed by
//! QUIT (invariants 1 and 7).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};

use super::backoff::Backoff;
use super::owner::Runtime;
use super::{Notice, State, Status};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::fetch::FetchReport;
use crate::store::SecretKind;

/// How long one opening session may hold a connection permit. The permits
/// bound how many sessions are being opened at once (connect, TLS, login),
/// so that a restart with hundreds of accounts does not storm the servers;
/// a server that accepts and then hangs keeps only its own account waiting
/// (up to the timeouts) and releases its permit after this slot, so a few
/// dead hosts cannot starve every other account (invariant 5).
const OPEN_SLOT: Duration = Duration::from_secs(2);

/// Requests for a running task.
pub type Reply = oneshot::Sender<Result<FetchReport>>;

pub struct Task {
    pub account: Account,
    pub rt: Runtime,
    pub requests: mpsc::UnboundedReceiver<Reply>,
    pub cancel: watch::Receiver<bool>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Task {
    pub async fn run(mut self) {
        let id = self.account.id.clone();
        let mut cancel = self.cancel.clone();
        let mut backoff = Backoff::default();
        // The first fetch happens right away for polled accounts.
        let mut next: Option<Duration> = (self.account.poll_interval > 0).then_some(Duration::ZERO);
        // IMAP waits with IDLE after a good fetch, until the server says it
        // has no IDLE; then it polls.
        let mut use_idle = self.account.kind.is_imap();
        let mut last_ok = false;
        self.set(|s| s.state = State::Idle);
        loop {
            let mut waiters: Vec<Reply> = Vec::new();
            let turn = wait_turn(&self.account, &self.rt, next, use_idle && last_ok);
            tokio::select! {
                _ = cancel.changed() => return,
                r = self.requests.recv() => match r {
                    Some(reply) => waiters.push(reply),
                    None => return,
                },
                t = turn => if t == Turn::NoIdle {
                    tracing::info!(account = %id, "server has no IDLE; polling");
                    use_idle = false;
                }
            }
            // Everyone who asked while we waited gets this fetch's result.
            while let Ok(reply) = self.requests.try_recv() {
                waiters.push(reply);
            }
            let result = tokio::select! {
                _ = cancel.changed() => return,
                r = self.fetch() => r,
            };
            let poll = self.account.poll_interval;
            last_ok = result.is_ok();
            match &result {
                Ok(report) => {
                    backoff.reset();
                    next = (poll > 0).then(|| Duration::from_secs(u64::from(poll)));
                    let warning = report.warning.clone().unwrap_or_default();
                    self.set(|s| {
                        s.state = State::Idle;
                        s.last_error = warning;
                        s.last_fetch_at = now();
                    });
                    tracing::info!(account = %id, new = report.new_ids.len(), deleted = report.deleted_on_server, "fetch done");
                }
                Err(e) => {
                    let delay = backoff.fail();
                    next = (poll > 0).then_some(delay);
                    let state = match e {
                        Error::NeedsAuthorization(_) => State::NeedsAuthorization,
                        _ => State::Error,
                    };
                    self.set(|s| {
                        s.state = state;
                        s.last_error = e.to_string();
                    });
                    tracing::warn!(account = %id, error = %e, retry_in_s = delay.as_secs(), "fetch failed");
                }
            }
            self.rt.handle.notify(Notice::FetchFinished {
                account: id.clone(),
                new_ids: result
                    .as_ref()
                    .map(|r| r.new_ids.clone())
                    .unwrap_or_default(),
                error: result
                    .as_ref()
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            });
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
    }

    /// One fetch, holding a connection permit for its whole length so that
    /// at most `max_concurrent_connects` sessions are open at once.
    async fn fetch(&self) -> Result<FetchReport> {
        let permit = self
            .rt
            .connects
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Busy("the daemon is stopping".into()))?;
        let slot = std::sync::Mutex::new(Some(permit));
        let release = || {
            if let Ok(mut p) = slot.lock() {
                p.take();
            }
        };
        self.set(|s| {
            s.state = State::Fetching;
            s.progress = (0, 0);
        });
        let a = &self.account;
        if a.kind.is_office365() {
            return Err(Error::NeedsAuthorization(
                "Office 365 sign-in (Connect) is not available in this version".into(),
            ));
        }
        let store = self.rt.store.clone();
        let id = a.id.clone();
        let secret = tokio::task::spawn_blocking(move || store.secret(&id, SecretKind::Password))
            .await
            .map_err(|e| Error::Storage(format!("store task failed: {e}")))??
            .ok_or_else(|| {
                Error::Authentication("no password set for this account (use SetPassword)".into())
            })?;
        let last = std::sync::Mutex::new(Instant::now());
        let progress = |done: u32, total: u32| {
            // The session is open: its opening no longer needs the permit.
            release();
            let mut changed = false;
            if let Ok(mut b) = self.rt.handle.board().lock() {
                let s = b.entry(self.account.id.clone()).or_default();
                s.progress = (done, total);
                changed = true;
            }
            // PropertiesChanged at most 4 times a second, and at the end.
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
        };
        let tls = self.rt.tls.clone();
        let t = &self.rt.timeouts;
        let fetch = async {
            if a.kind.is_imap() {
                crate::imap::fetch::fetch(a, secret.expose(), &self.rt.store, &tls, t, &progress)
                    .await
            } else {
                crate::pop3::fetch::fetch(a, secret.expose(), &self.rt.store, &tls, t, &progress)
                    .await
            }
        };
        tokio::pin!(fetch);
        tokio::select! {
            r = &mut fetch => return r,
            _ = tokio::time::sleep(OPEN_SLOT) => release(),
        }
        fetch.await
    }

    fn set(&self, f: impl FnOnce(&mut Status)) {
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

/// Why a wait ended.
#[derive(Debug, PartialEq, Eq)]
enum Turn {
    /// Time for a fetch (timer, IDLE news, IDLE timeout or IDLE failure).
    Fetch,
    /// The server has no IDLE: poll from now on.
    NoIdle,
}

/// Wait for the next fetch: `None` = only on demand; with `idle`, hold an
/// IMAP IDLE (RFC 2177) until new mail or the re-issue time instead of the
/// poll timer. IDLE does not hold a connection permit: the permits bound the
/// connections being opened by fetches, and an idling account would hold
/// one for up to 29 minutes. An IDLE failure waits the shorter of the poll
/// interval and a minute, then lets the fetch report the problem.
async fn wait_turn(account: &Account, rt: &Runtime, next: Option<Duration>, idle: bool) -> Turn {
    let Some(delay) = next else {
        return std::future::pending().await;
    };
    if !idle {
        tokio::time::sleep(delay).await;
        return Turn::Fetch;
    }
    let store = rt.store.clone();
    let id = account.id.clone();
    let secret =
        match tokio::task::spawn_blocking(move || store.secret(&id, SecretKind::Password)).await {
            Ok(Ok(Some(s))) => s,
            _ => {
                tokio::time::sleep(delay).await;
                return Turn::Fetch;
            }
        };
    let max = crate::imap::idle::REISSUE;
    match crate::imap::idle::wait_for_change(
        account,
        secret.expose(),
        &rt.store,
        &rt.tls,
        &rt.timeouts,
        max,
    )
    .await
    {
        Ok(crate::imap::idle::IdleOutcome::NoIdle) => {
            tokio::time::sleep(delay).await;
            Turn::NoIdle
        }
        Ok(_) => Turn::Fetch,
        Err(e) => {
            tracing::debug!(account = %account.id, error = %e, "IDLE ended with an error");
            tokio::time::sleep(delay.min(Duration::from_secs(60))).await;
            Turn::Fetch
        }
    }
}
