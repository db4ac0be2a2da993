//! What an account's task is asked to do, and its queue of such requests.
//!
//! Every IMAP operation of an account goes through its task, on its one
//! kept connection (ARCHITECTURE.md "Threads, tasks…"): a D-Bus method sends a [`Request`] with
//! a [`Reply`] and awaits the answer. The task serves them in order; while
//! it waits (IDLE or a timer) a request wakes it. Further requests — folder
//! sync (LIST), the Sent copy and SaveDraft (APPEND) — are further
//! variants, each carrying its arguments and its reply, and each served by
//! the task with `imap::Connection`'s methods. SMTP runs beside the task
//! (scheduler `sending`): a Deliver only wakes it.

use std::collections::VecDeque;

use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::fetch::FetchReport;

/// Where a request's answer goes.
pub type Reply<T> = oneshot::Sender<Result<T>>;

/// One request to an account's task.
#[derive(Debug)]
pub enum Request {
    /// Fetch now; answered with that fetch's report.
    FetchNow(Reply<FetchReport>),
    /// Move stored message `message` (INBOX mail of this account) into the
    /// account's Trash folder on the server, for `Mailbox.DeleteMessage`;
    /// answered when it is done, or at once when there is nothing to move
    /// (no Trash folder, not IMAP, no UID known under INBOX's UIDVALIDITY).
    Trash { message: u64, reply: Reply<()> },
    /// Deliver the account's due outbox mail now (SendMessage, or the
    /// timer of the next retry); nobody waits for an answer
    /// (scheduler `sending`).
    Deliver,
    /// APPEND the Sent copy of outbox mail `id`, which the account's
    /// delivery task got accepted, on the task's IMAP connection; nobody
    /// waits for an answer (scheduler `sent_copy`).
    SentCopy(u64),
    /// List the account's folders and store them (SyncFolders); answered
    /// with the names stored (scheduler `folders`).
    SyncFolders(Reply<Vec<String>>),
    /// APPEND a draft to the Drafts folder, store it, remove the one it
    /// replaces (SaveDraft); answered once it is stored (scheduler `drafts`).
    SaveDraft {
        job: Box<DraftJob>,
        reply: Reply<SavedDraft>,
    },
}

impl Request {
    /// Answers with `e`.
    pub(super) fn fail(self, e: Error) {
        match self {
            Request::FetchNow(r) => drop(r.send(Err(e))),
            Request::Trash { reply, .. } => drop(reply.send(Err(e))),
            Request::SyncFolders(r) => drop(r.send(Err(e))),
            Request::SaveDraft { reply, .. } => drop(reply.send(Err(e))),
            Request::Deliver | Request::SentCopy(_) => {}
        }
    }

    /// Answers a request for an account that has no task: it was deleted
    /// (or never existed). There is nothing to fetch; a message of it that
    /// is still stored (assigned to a contact) has no server to be moved
    /// on, so its Trash move is done by doing nothing.
    pub(super) fn no_account(self, account: &str) {
        match self {
            Request::Trash { reply, .. } => drop(reply.send(Ok(()))),
            // Its outbox mail went with the account.
            Request::Deliver | Request::SentCopy(_) => {}
            other => other.fail(Error::NotFound(format!("no account {account}"))),
        }
    }
}

/// A task's requests: the channel from the owner loop, and those taken
/// out of it early but left for later (see [`Queue::fetches`]).
#[derive(Debug)]
pub(super) struct Queue {
    rx: mpsc::UnboundedReceiver<Request>,
    later: VecDeque<Request>,
}

impl Queue {
    pub fn new(rx: mpsc::UnboundedReceiver<Request>) -> Queue {
        Queue {
            rx,
            later: VecDeque::new(),
        }
    }

    /// The next request; None when the owner loop dropped the sender.
    /// Cancel-safe: a request is only taken when this returns it.
    pub async fn next(&mut self) -> Option<Request> {
        match self.later.pop_front() {
            Some(r) => Some(r),
            None => self.rx.recv().await,
        }
    }

    /// Takes every FetchNow waiting now: they are all answered by the one
    /// fetch about to run (they asked before it started). Other requests
    /// stay queued in their order.
    pub fn fetches(&mut self) -> Vec<Reply<FetchReport>> {
        let mut out = Vec::new();
        let mut keep = VecDeque::new();
        let waiting = self
            .later
            .drain(..)
            .chain(std::iter::from_fn(|| self.rx.try_recv().ok()));
        for r in waiting.collect::<Vec<_>>() {
            match r {
                Request::FetchNow(reply) => out.push(reply),
                other => keep.push_back(other),
            }
        }
        self.later = keep;
        out
    }
}

/// A composed draft for the account's task.
pub struct DraftJob {
    pub raw: Vec<u8>,
    /// With angle brackets.
    pub message_id: String,
    /// The CRM user who saves it.
    pub user: String,
    /// The draft (its message id) this one replaces.
    pub replaces: Option<u64>,
}

impl std::fmt::Debug for DraftJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DraftJob({} bytes, replaces {:?})",
            self.raw.len(),
            self.replaces
        )
    }
}

/// What SaveDraft stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedDraft {
    /// The new draft's message id (folder `drafts`).
    pub id: u64,
    /// The draft it replaced, now gone from the store.
    pub replaced: Option<u64>,
}

/// Why a task is told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The account changed: a successor takes over.
    Restart,
    /// The account was deleted: the task also clears its board entry.
    Remove,
    /// The daemon is stopping.
    Shutdown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fetches_are_taken_together_and_other_requests_keep_their_order() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut q = Queue::new(rx);
        let (f1, _r1) = oneshot::channel();
        let (t1, _r2) = oneshot::channel();
        let (f2, _r3) = oneshot::channel();
        let (t2, _r4) = oneshot::channel();
        tx.send(Request::FetchNow(f1)).unwrap();
        tx.send(Request::Trash {
            message: 1,
            reply: t1,
        })
        .unwrap();
        tx.send(Request::FetchNow(f2)).unwrap();
        tx.send(Request::Trash {
            message: 2,
            reply: t2,
        })
        .unwrap();
        assert_eq!(q.fetches().len(), 2);
        for want in [1, 2] {
            match q.next().await {
                Some(Request::Trash { message, .. }) => assert_eq!(message, want),
                other => panic!("{other:?}"),
            }
        }
        drop(tx);
        assert!(q.next().await.is_none());
    }
}
