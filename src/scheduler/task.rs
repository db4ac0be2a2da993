//! The task of one account: wait for a turn (poll interval, IDLE news, or a
//! backoff after a failure) or a request, serve it, repeat — until stopped.
//!
//! The task owns the account's `imap::Connection` between turns. IMAP
//! accounts that IDLE keep it: fetch, then IDLE on the same connection,
//! for at most the poll interval: then the IDLE ends with DONE and a turn
//! fetches on the same connection (a NOOP when INBOX is known to match the
//! store, imap::connection) before the next IDLE. IDLE is a hint, not a
//! promise: GNU imap4d never pushes during IDLE, and Courier without its
//! enhanced IDLE only every 60 s, so the poll interval stays the bound on
//! how late new mail is fetched, as on a server without IDLE. A
//! FetchNow while INBOX is known to match the store is answered by
//! `Connection::idle` itself (DONE, NOOP, IDLE in one write; reported like
//! any fetch that found nothing); any other request ends the IDLE with DONE
//! and is served on the same connection (a Trash move, folder sync, a
//! draft's or a Sent copy's APPEND). So a round over idle accounts costs no TLS handshake or
//! login. An account fetched on demand only, or on a server without IDLE,
//! keeps no connection: the server's autologout timer (RFC 3501 §5.4, at
//! least 30 minutes) would end it anyway. A connection the task lets go
//! gets its LOGOUT after the answer went out, on a task of its own and
//! bounded (`imap::LOGOUT_WAIT`), so a server that swallows LOGOUT delays
//! nobody. Any error drops the connection; the next turn reconnects.
//!
//! One task per account at a time: a task that replaces another (the
//! account changed) first waits for its predecessor, at most the stop
//! grace, then aborts it — so two tasks never fetch one mailbox at once,
//! and the owner loop never waits for either.
//!
//! SMTP is not the task's: its courier (scheduler::sending), spawned
//! beside it and aborted with it, delivers the outbox, so a server that
//! stalls after the mail body holds up no fetch. A Deliver only wakes the
//! courier; the Sent copy comes back to the task as a request, since the
//! task owns the IMAP connection.
//!
//! A stop drops the work under way at its next await point. That is safe by
//! construction of the fetchers: a batch is deleted on the server only after
//! its store transaction committed, and POP3 deletes are only committed by
//! QUIT (invariants 1 and 7).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::auth;
use super::backoff::Backoff;
use super::board::State;
use super::request::Stop;
use super::request::{Queue, Reply, Request};
use super::sending::Courier;
use super::wakes::{Requests, Wakes};
use super::worker::Worker;
use super::Runtime;
use crate::fetch::{blocking, FetchReport};
use crate::imap::{idle::REISSUE, Connection, Outcome, Wake};

/// An account task as the owner loop spawns it.
pub(super) struct Task {
    pub account: String,
    pub rt: Runtime,
    pub requests: mpsc::UnboundedReceiver<Request>,
    pub stop: watch::Receiver<Option<Stop>>,
    /// The task this one replaces, still stopping.
    pub before: Option<JoinHandle<()>>,
    pub grace: Duration,
    pub done: mpsc::Sender<()>,
}

impl Task {
    pub async fn run(self) {
        let Task {
            account: id,
            rt,
            requests,
            mut stop,
            before,
            grace,
            done,
        } = self;
        if let Some(before) = before {
            follow(before, grace, &id).await;
        }
        let mut queue = Queue::new(requests);
        let board = rt.handle.board().clone();
        let stopped = stop.clone();
        let work = async {
            // In place, not on the blocking pool: a daemon start loads every
            // account at once, and a thread for each would stay behind.
            match blocking(|| rt.store.account(&id)) {
                Ok(Some(account)) => {
                    let me = Arc::new(Worker {
                        account,
                        rt,
                        done,
                        token_life: Default::default(),
                    });
                    // Dropped, and so aborted, with this future.
                    let courier = Courier::spawn(me.clone(), stopped);
                    serve(&me, &mut queue, &courier).await;
                }
                // Deleted meanwhile: answer as if there were no task.
                Ok(None) => {
                    while let Some(r) = queue.next().await {
                        r.no_account(&id);
                    }
                }
                Err(e) => {
                    tracing::error!(account_id = %id, error = %e, "cannot load account");
                    while let Some(r) = queue.next().await {
                        r.fail(e.clone());
                    }
                }
            }
        };
        tokio::select! {
            _ = stop.wait_for(Option::is_some) => {}
            () = work => {}
        }
        if *stop.borrow() == Some(Stop::Remove) {
            board.remove(&id);
        }
    }
}

/// Waits for the task this one replaces; aborts it after `grace`.
async fn follow(mut before: JoinHandle<()>, grace: Duration, id: &str) {
    if tokio::time::timeout(grace, &mut before).await.is_err() {
        tracing::warn!(account_id = %id, "the account's previous task did not stop in time");
        before.abort();
    }
}

/// What a task keeps from one turn to the next.
struct Turns {
    conn: Option<Connection>,
    /// When the next turn is due; None: only on request.
    next: Option<Duration>,
    /// IMAP waits with IDLE on the connection of the last good fetch, until
    /// the server says it has no IDLE; then it polls.
    idle: bool,
    backoff: Backoff,
    /// Office 365: the device sign-in being waited for (scheduler::auth).
    sign_in: Option<auth::DevicePoll>,
}

/// What a wait ended with.
enum Event {
    Turn,
    Request(Request),
    /// The owner loop dropped the queue's sender.
    Closed,
}

/// Every piece of work that is not the wait itself runs boxed: an async
/// fn's state is as big as the biggest future it awaits inline, and each
/// of a thousand idling tasks would otherwise carry room for an OAuth
/// HTTP exchange and an APPEND while it only waits. (SMTP runs on the
/// courier, whose turns are boxed too.)
async fn serve(me: &Worker, queue: &mut Queue, courier: &Courier) {
    let poll = me.account.poll_interval;
    let mut turns = Turns {
        conn: None,
        // The first fetch happens right away for polled accounts.
        next: (poll > 0).then_some(Duration::ZERO),
        idle: me.account.kind.is_imap(),
        backoff: Backoff::default(),
        sign_in: None,
    };
    me.set(|s| s.state = State::Idle);
    let start = Box::pin(auth::begin(me)).await;
    turns.sign_in = start.poll;
    if !start.may_fetch {
        turns.next = None;
    }
    let mut queue = Requests { queue, courier };
    loop {
        match wait(me, &mut turns, &mut queue).await {
            Event::Closed => return,
            Event::Turn => fetch(me, &mut turns, &mut *queue.queue, Vec::new()).await,
            Event::Request(Request::FetchNow(reply)) => {
                fetch(me, &mut turns, &mut *queue.queue, vec![reply]).await
            }
            Event::Request(Request::Trash { message, reply }) => {
                let (r, back) =
                    Box::pin(super::drafts::trash(me, turns.conn.take(), message)).await;
                let _ = reply.send(r);
                turns.conn = keep(me, &turns, back);
            }
            Event::Request(Request::SyncFolders(reply)) => {
                let (r, back) = Box::pin(super::folders::sync(me, turns.conn.take())).await;
                let _ = reply.send(r);
                turns.conn = keep(me, &turns, back);
            }
            Event::Request(Request::SaveDraft { job, reply }) => {
                let (r, back) = Box::pin(super::drafts::save(me, turns.conn.take(), &job)).await;
                let _ = reply.send(r);
                turns.conn = keep(me, &turns, back);
            }
            // Taken by `Requests::next`; here only for completeness.
            Event::Request(Request::Deliver) => courier.deliver(),
            Event::Request(Request::SentCopy(mail)) => {
                let back = Box::pin(super::sent_copy::save(me, turns.conn.take(), mail)).await;
                turns.conn = keep(me, &turns, back);
            }
        }
    }
}

/// One fetch, answering `waiters` and every FetchNow queued before it began.
async fn fetch(
    me: &Worker,
    turns: &mut Turns,
    queue: &mut Queue,
    mut waiters: Vec<Reply<FetchReport>>,
) {
    waiters.extend(queue.fetches());
    // Boxed: the fetch's state then lives on the heap only while it runs,
    // instead of in every idling task's future (idle accounts' RSS).
    let (mut result, mut back) = Box::pin(me.fetch(turns.conn.take())).await;
    // A reply no parser reads cost the session, not the rest of the mail:
    // once more at once on a new connection (imap::unreadable).
    if matches!(&result, Ok(r) if r.unfinished) {
        let (again, conn) = Box::pin(me.fetch(back.take())).await;
        result = Ok(merged(result, again));
        back = conn;
    }
    let poll = me.account.poll_interval;
    turns.next = match &result {
        Ok(_) => {
            turns.backoff.reset();
            (poll > 0).then(|| Duration::from_secs(u64::from(poll)))
        }
        // A dead grant waits for Connect, which restarts the task.
        Err(crate::error::Error::NeedsAuthorization(_)) => None,
        Err(_) => (poll > 0).then(|| turns.backoff.fail()),
    };
    if let Err(e) = &result {
        Box::pin(auth::after_failure(me, e)).await;
    }
    me.finished(&result, waiters, turns.next);
    turns.conn = keep(me, turns, back);
}

/// A fetch that ended `unfinished` followed by the one that went on: the
/// mails of both (so FetchFinished names them all), the warnings of the
/// second, which tried again what the first reported. Should the second
/// fail, its error becomes a warning: the first's mails are stored.
fn merged(
    first: crate::error::Result<FetchReport>,
    second: crate::error::Result<FetchReport>,
) -> FetchReport {
    let mut report = first.unwrap_or_default();
    report.unfinished = false;
    match second {
        Ok(r) => {
            report.new_ids.extend(r.new_ids);
            report.deleted_on_server = report.deleted_on_server.saturating_add(r.deleted_on_server);
            report.warning = r.warning;
        }
        Err(e) => report.warn(format!("the fetch on a new connection failed: {e}")),
    }
    report
}

/// The connection to keep for the next wait: only to idle on it.
fn keep(me: &Worker, turns: &Turns, conn: Option<Connection>) -> Option<Connection> {
    let conn = conn?;
    if turns.idle && me.account.poll_interval > 0 && conn.usable() {
        return Some(conn);
    }
    me.retire(conn);
    None
}

/// Waits for the next turn or request: IDLE on the kept connection, else a
/// timer.
async fn wait(me: &Worker, turns: &mut Turns, queue: &mut Requests<'_>) -> Event {
    if let Some(poll) = turns.sign_in.as_mut() {
        tokio::select! {
            r = queue.next() => return r.map_or(Event::Closed, Event::Request),
            may_fetch = poll.outcome(me) => {
                turns.sign_in = None;
                if may_fetch {
                    return Event::Turn;
                }
                turns.next = None;
            }
        }
    }
    let (Some(conn), Some(delay)) = (turns.conn.as_mut(), turns.next) else {
        return sleep_or_request(turns.next, queue).await;
    };
    if delay.is_zero() {
        return Event::Turn;
    }
    let mut wakes = Wakes { queue, me };
    // At most the poll interval: a server whose IDLE never pushes would
    // otherwise leave new mail waiting for the re-issue (see the docs).
    let max = me.token_life.idle_limit(&me.account, delay.min(REISSUE));
    let outcome = conn.idle(&me.account, &me.rt.store, max, &mut wakes).await;
    if !conn.usable() {
        turns.conn = None;
    }
    match outcome {
        Outcome::Woken(Wake::Fetch(reply)) => Event::Request(Request::FetchNow(reply)),
        Outcome::Woken(Wake::Other(Some(r))) => Event::Request(r),
        Outcome::Woken(Wake::Other(None)) => Event::Closed,
        Outcome::NewMail | Outcome::Timeout => Event::Turn,
        Outcome::NoIdle => {
            tracing::info!(account_id = %me.account.id, "server has no IDLE; polling");
            turns.idle = false;
            if let Some(c) = turns.conn.take() {
                me.retire(c);
            }
            sleep_or_request(Some(delay), queue).await
        }
        Outcome::Failed(e) => {
            // Wait a little, then let the fetch (on a new connection)
            // report the problem if it persists.
            tracing::debug!(account_id = %me.account.id, error = %e, "IDLE ended with an error");
            // Office 365 ends sessions at token expiry: log in again by
            // then at the latest (scheduler::auth).
            let pause = me
                .token_life
                .idle_limit(&me.account, delay.min(Duration::from_secs(60)));
            sleep_or_request(Some(pause), queue).await
        }
    }
}

/// Sleeps until the next turn (`None` = only on request) or a request.
async fn sleep_or_request(next: Option<Duration>, queue: &mut Requests<'_>) -> Event {
    let timer = async {
        match next {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = queue.next() => r.map_or(Event::Closed, Event::Request),
        () = timer => Event::Turn,
    }
}
