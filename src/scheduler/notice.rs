//! From the account tasks to the one pump of the D-Bus layer: what the
//! world should be told, never lost and never unbounded.
//!
//! An unbounded channel carries the notices in order, so a FetchFinished
//! (with the ids of MessagesAdded) reaches the pump however slowly the bus
//! takes the signals: a bounded broadcast channel dropped the oldest
//! notices when the pump lagged, ids included. What keeps it bounded is
//! that status notices are coalesced per account at the source: a status
//! notice only says "read this account's status from the board", and while
//! one for an account is queued and not yet taken, further changes of that
//! account queue nothing (the pump reads the board when it takes the
//! notice, so it sees them). So the channel holds at most one status notice
//! per account, plus the FetchFinished notices, whose ids are mail already
//! stored — a round over 1,000 idle accounts that changes each status three
//! times queues 1,000 status notices, not 3,000.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

/// Something the D-Bus layer should announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The status of this account changed: read it from the board.
    Status(String),
    /// A fetch ended; `error` is "" on success.
    FetchFinished {
        account: String,
        new_ids: Vec<u64>,
        error: String,
    },
    /// These messages changed (an outbox mail's state or error).
    MessagesChanged(Vec<u64>),
    /// The account was removed (Delete): its task is told to stop, and its
    /// D-Bus object is to be unpublished by whoever published it.
    Removed(String),
}

/// Accounts with a status notice queued and not yet taken.
type Pending = Arc<Mutex<HashSet<String>>>;

fn lock(p: &Pending) -> std::sync::MutexGuard<'_, HashSet<String>> {
    match p.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The sending side, shared by every task through the `Handle`.
#[derive(Debug, Clone)]
pub(super) struct Notifier {
    tx: mpsc::UnboundedSender<Notice>,
    pending: Pending,
}

impl Notifier {
    pub fn new() -> (Notifier, Notices) {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Pending::default();
        let notices = Notices {
            rx,
            pending: pending.clone(),
        };
        (Notifier { tx, pending }, notices)
    }

    /// The account's status changed; queues a notice unless one is queued.
    pub fn status(&self, account: &str) {
        if lock(&self.pending).insert(account.to_string()) {
            // No pump (the daemon is stopping): nobody to tell.
            let _ = self.tx.send(Notice::Status(account.to_string()));
        }
    }

    /// Messages changed: always queued.
    pub fn messages_changed(&self, ids: Vec<u64>) {
        let _ = self.tx.send(Notice::MessagesChanged(ids));
    }

    /// An account was removed: always queued.
    pub fn removed(&self, account: &str) {
        let _ = self.tx.send(Notice::Removed(account.to_string()));
    }

    /// A fetch ended: always queued.
    pub fn fetch_finished(&self, account: &str, new_ids: Vec<u64>, error: String) {
        let _ = self.tx.send(Notice::FetchFinished {
            account: account.to_string(),
            new_ids,
            error,
        });
    }
}

/// The receiving side: the pump's, one per daemon.
#[derive(Debug)]
pub struct Notices {
    rx: mpsc::UnboundedReceiver<Notice>,
    pending: Pending,
}

impl Notices {
    /// The next notice; None when every sender is gone. A status notice is
    /// taken off the pending set here, before the caller reads the board,
    /// so a change after this read queues a new one.
    pub async fn next(&mut self) -> Option<Notice> {
        let notice = self.rx.recv().await?;
        if let Notice::Status(id) = &notice {
            lock(&self.pending).remove(id);
        }
        Some(notice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_coalesces_per_account_and_fetch_finished_never_drops() {
        let (n, mut rx) = Notifier::new();
        for round in 0..5000u64 {
            n.status("a1");
            n.status("a2");
            n.fetch_finished("a1", vec![round], String::new());
        }
        let mut statuses = Vec::new();
        let mut ids = Vec::new();
        while let Ok(Some(notice)) =
            tokio::time::timeout(std::time::Duration::from_millis(50), rx.next()).await
        {
            match notice {
                Notice::Status(id) => statuses.push(id),
                Notice::FetchFinished { new_ids, .. } => ids.extend(new_ids),
                Notice::MessagesChanged(_) | Notice::Removed(_) => {}
            }
        }
        assert_eq!(statuses, ["a1", "a2"], "one status notice per account");
        assert_eq!(ids, (0..5000).collect::<Vec<u64>>(), "every id, in order");
        // Taken: the next change queues a new one.
        n.status("a1");
        assert_eq!(rx.next().await, Some(Notice::Status("a1".into())));
    }
}
