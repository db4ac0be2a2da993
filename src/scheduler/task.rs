//! The task of one account: wait for its turn (poll interval, FetchNow, or
//! a backoff after a failure), fetch, report, repeat — until cancelled.
//!
//! IMAP accounts that IDLE keep one session: fetch, then IDLE on the same
//! connection. A FetchNow while INBOX is known to match the store is
//! answered by `imap::idle::hold` itself (DONE, NOOP, IDLE in one write;
//! reported through `Requests` like any fetch that found nothing);
//! otherwise it ends the IDLE with DONE and fetches on the same session. So
//! a round over idle accounts costs no TLS handshake or login. Any error
//! drops the session; the next fetch reconnects.
//!
//! A cancel drops the fetch future at its next await point. That is safe by
//! construction of the fetchers: a batch is deleted on the server only after
//! its store transaction committed, and POP3 deletes are only committed by
//! QUIT (invariants 1 and 7).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};

use super::backoff::Backoff;
use super::owner::Runtime;
use super::worker::Worker;
use super::{Notice, State};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::fetch::FetchReport;
use crate::imap::idle::{self, Wait};
use crate::imap::kept::Held;
use crate::imap::session;

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
    pub async fn run(self) {
        let Task {
            account,
            rt,
            mut requests,
            mut cancel,
        } = self;
        let me = Worker { account, rt };
        let id = me.account.id.clone();
        let mut backoff = Backoff::default();
        // The first fetch happens right away for polled accounts.
        let mut next: Option<Duration> = (me.account.poll_interval > 0).then_some(Duration::ZERO);
        // IMAP waits with IDLE on the session of the last good fetch, until
        // the server says it has no IDLE; then it polls.
        let mut use_idle = me.account.kind.is_imap();
        let mut held: Option<Held> = None;
        me.set(|s| s.state = State::Idle);
        loop {
            let mut waiters: Vec<Reply> = Vec::new();
            let woke = match (held.take(), next) {
                (Some(h), Some(delay)) => {
                    let mut wakes = Requests {
                        rx: &mut requests,
                        me: &me,
                    };
                    let rt = &me.rt;
                    let (end, back) = tokio::select! {
                        _ = cancel.changed() => return,
                        r = idle::hold(h, &me.account, &rt.store, &rt.timeouts, idle::REISSUE, &mut wakes) => r,
                    };
                    held = back;
                    match end {
                        Wait::Woken(reply) => Woke::Request(reply),
                        Wait::NewMail | Wait::Timeout => Woke::Turn,
                        Wait::NoIdle => {
                            tracing::info!(account_id = %id, "server has no IDLE; polling");
                            use_idle = false;
                            if let Some(h) = held.take() {
                                session::logout(h.session, &me.rt.timeouts).await;
                            }
                            sleep_or_request(Some(delay), &mut requests, &mut cancel).await
                        }
                        Wait::Failed(e) => {
                            // Wait a little, then let the fetch (on a new
                            // session) report the problem if it persists.
                            tracing::debug!(account_id = %id, error = %e, "IDLE ended with an error");
                            let pause = delay.min(Duration::from_secs(60));
                            sleep_or_request(Some(pause), &mut requests, &mut cancel).await
                        }
                    }
                }
                (h, next) => {
                    held = h;
                    sleep_or_request(next, &mut requests, &mut cancel).await
                }
            };
            match woke {
                Woke::Stop | Woke::Request(None) => return,
                Woke::Request(Some(reply)) => waiters.push(reply),
                Woke::Turn => {}
            }
            // Everyone who asked while we waited gets this fetch's result.
            while let Ok(reply) = requests.try_recv() {
                waiters.push(reply);
            }
            // Boxed: the fetch's state then lives on the heap only while it
            // runs, instead of in every idling task's future (scripts/bench
            // idle-imap-tls, 1,000 idle accounts: 64 MB RSS before, 45 after).
            let (result, back) = tokio::select! {
                _ = cancel.changed() => return,
                r = Box::pin(me.fetch(held.take())) => r,
            };
            let poll = me.account.poll_interval;
            // Keep the session only to idle on it: an account fetched on
            // demand only, or on a server without IDLE, would hold a
            // connection that the server's autologout timer ends anyway
            // (RFC 3501 §5.4: at least 30 minutes).
            match back {
                Some(h) if use_idle && poll > 0 => held = Some(h),
                Some(h) => session::logout(h.session, &me.rt.timeouts).await,
                None => {}
            }
            next = match &result {
                Ok(_) => {
                    backoff.reset();
                    (poll > 0).then(|| Duration::from_secs(u64::from(poll)))
                }
                Err(_) => (poll > 0).then(|| backoff.fail()),
            };
            me.finished(&result, waiters, next);
        }
    }
}

impl Worker {
    /// Reports a fetch's end: the account's status, the log, the
    /// FetchFinished notice, and the answer to everyone who asked. An
    /// error is shown only scrubbed of the account's secrets and capped
    /// (crate::redact): servers echo passwords and whole buffers.
    /// FetchFinished, which every listener on the bus sees, names only
    /// the error's kind.
    fn finished(&self, result: &Result<FetchReport>, waiters: Vec<Reply>, next: Option<Duration>) {
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
        self.rt.handle.notify(Notice::FetchFinished {
            account: id.clone(),
            new_ids: result
                .as_ref()
                .map(|r| r.new_ids.clone())
                .unwrap_or_default(),
            error: result
                .as_ref()
                .err()
                .map(|e| e.name().to_string())
                .unwrap_or_default(),
        });
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}

/// The task's FetchNow requests as IDLE's wake-ups: a request that a check
/// on the idling session answers (nothing new) is reported like any fetch
/// that found nothing, together with every request queued behind it.
struct Requests<'a> {
    rx: &'a mut mpsc::UnboundedReceiver<Reply>,
    me: &'a Worker,
}

impl idle::Wakes for Requests<'_> {
    type Out = Option<Reply>;

    fn next(&mut self) -> impl std::future::Future<Output = Self::Out> {
        self.rx.recv()
    }

    fn answer(&mut self, out: Self::Out, report: &FetchReport) -> Option<Self::Out> {
        let first = out?;
        let mut waiters = vec![first];
        while let Ok(reply) = self.rx.try_recv() {
            waiters.push(reply);
        }
        self.me.finished(&Ok(report.clone()), waiters, None);
        None
    }
}

/// Why a wait ended.
enum Woke {
    /// Time for a fetch (timer, IDLE news, IDLE timeout or IDLE failure).
    Turn,
    /// A FetchNow (`None`: the owner loop is gone).
    Request(Option<Reply>),
    /// The task is cancelled.
    Stop,
}

/// Sleeps until the next fetch (`None` = only on demand), a request, or
/// the cancel.
async fn sleep_or_request(
    next: Option<Duration>,
    requests: &mut mpsc::UnboundedReceiver<Reply>,
    cancel: &mut watch::Receiver<bool>,
) -> Woke {
    let timer = async {
        match next {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = cancel.changed() => Woke::Stop,
        r = requests.recv() => Woke::Request(r),
        () = timer => Woke::Turn,
    }
}
