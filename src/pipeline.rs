//! One batch commit in flight while the next batch downloads.
//!
//! A fetch alternates network (download a batch) and disk (summaries, redb
//! write, fsync of [`Store::commit_batch`]). Done one after the other, the
//! connection idles during every fsync and the disk idles during every
//! download. [`Committer`] runs batch N's commit on tokio's blocking pool
//! while the fetcher downloads batch N+1 on its own task.
//!
//! The rules that keep the fetch invariants (DESIGN.md §4) with the overlap:
//! - at most one commit in flight: memory holds at most two batches, and
//!   [`Committer::must_wait`] says when even that would be too much (big
//!   mails), so the fetcher waits before it downloads;
//! - a fetcher learns that a batch is durable only from [`Committer::wait`]
//!   returning its ids, and deletes on the server only what it learnt so
//!   (invariant 1);
//! - the fetcher calls `wait` after every download, failed or not, and before
//!   it returns, so no commit is left running behind an error it reports;
//! - commits complete in the order they were started (one at a time), so
//!   the ids come back in fetch order.
//!
//! If the fetch future itself is dropped (the scheduler cancels it), the
//! commit in flight still runs to its end on the blocking pool: redb commits
//! all or nothing, and the daemon waits for the store's last user before it
//! closes the store.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::account::Account;
use crate::error::{Error, Result};
use crate::store::{NewMail, Store};

/// Most mail bytes the fetcher holds at once (the batch being committed plus
/// the batch being downloaded), as far as it can know them in advance.
pub const MAX_IN_MEMORY: u64 = 16 * 1024 * 1024;

/// A committed batch: the new message ids (in batch order) and what the
/// fetcher attached to the batch when it started the commit.
#[derive(Debug)]
pub struct Committed<T> {
    pub ids: Vec<u64>,
    pub tag: T,
}

struct InFlight<T> {
    handle: JoinHandle<Result<Vec<u64>>>,
    bytes: u64,
    tag: T,
}

/// Commits batches of one account on the blocking pool, one at a time.
pub struct Committer<T> {
    store: Arc<Store>,
    account: Account,
    in_flight: Option<InFlight<T>>,
}

impl<T> Committer<T> {
    pub fn new(store: &Arc<Store>, account: &Account) -> Self {
        Committer {
            store: Arc::clone(store),
            account: account.clone(),
            in_flight: None,
        }
    }

    /// Whether downloading `next_bytes` more while the commit in flight
    /// runs would hold more than [`MAX_IN_MEMORY`]; then call
    /// [`Committer::wait`] first.
    pub fn must_wait(&self, next_bytes: u64) -> bool {
        self.in_flight
            .as_ref()
            .is_some_and(|f| f.bytes.saturating_add(next_bytes) > MAX_IN_MEMORY)
    }

    /// Start committing `mails`; waits first for the commit in flight, whose
    /// result is returned (so the caller never has two in flight).
    pub async fn start(&mut self, mails: Vec<NewMail>, tag: T) -> Result<Option<Committed<T>>> {
        let before = self.wait().await?;
        let bytes = mails.iter().map(|m| m.raw.len() as u64).sum();
        let store = Arc::clone(&self.store);
        let account = self.account.clone();
        let handle = tokio::task::spawn_blocking(move || {
            store.commit_batch(&account, mails, &crate::mime::summarize)
        });
        self.in_flight = Some(InFlight { handle, bytes, tag });
        Ok(before)
    }

    /// Wait for the commit in flight, if any. Ok(Some) means that batch is
    /// durable; Err means nothing of it was stored.
    pub async fn wait(&mut self) -> Result<Option<Committed<T>>> {
        let Some(f) = self.in_flight.take() else {
            return Ok(None);
        };
        let ids = match f.handle.await {
            Ok(r) => r?,
            Err(e) => {
                return Err(Error::Storage(format!(
                    "storing fetched mail failed: the commit task {}",
                    if e.is_panic() {
                        "panicked"
                    } else {
                        "was cancelled"
                    }
                )))
            }
        };
        Ok(Some(Committed { ids, tag: f.tag }))
    }
}
