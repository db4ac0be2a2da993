//! One batch commit in flight while the next batch downloads.
//!
//! A fetch alternates network (download a batch) and disk (summaries, redb
//! write, fsync of [`Store::commit_batch`]). Done one after the other, the
//! connection idles during every fsync and the disk idles during every
//! download. [`Committer`] runs batch N's commit on tokio's blocking pool
//! while the fetcher downloads batch N+1 on its own task.
//!
//! The rules that keep the fetch invariants (ARCHITECTURE.md "Invariants") with the overlap:
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

/// Mails in a fetch's first batch: the first mails of a big fetch are
/// stored (and visible) soon.
pub const FIRST_BATCH_MAILS: usize = 100;
/// Most mails in a later batch; batches double from the first up to this.
/// Every commit costs two fsyncs (redb's two-phase commit), several
/// milliseconds on real disks; with the commit overlapping the download,
/// fewer and larger commits keep the disk from being the bottleneck
/// (10,000 small mails: 12 commits instead of 100).
pub const BATCH_MAILS: usize = 1000;
/// Most bytes per batch (by the server's sizes), so that two batches, the
/// one committing and the one downloading, fit in [`MAX_IN_MEMORY`]. A
/// single larger mail is a batch of its own.
pub const BATCH_BYTES: u64 = MAX_IN_MEMORY / 2;

/// Cuts `items` (in order) into batches: the first of at most
/// `first_mails`, each later one of at most twice its predecessor's limit
/// up to `mails`, each of at most `bytes` by `size` unless one item alone
/// is larger.
pub fn split<T: Copy>(
    items: &[T],
    size: impl Fn(T) -> u64,
    first_mails: usize,
    mails: usize,
    bytes: u64,
) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut used = 0u64;
    for &item in items {
        let n = size(item);
        let doublings = u32::try_from(out.len().saturating_sub(1)).unwrap_or(u32::MAX);
        let cap = first_mails
            .saturating_mul(1usize.checked_shl(doublings.min(20)).unwrap_or(1))
            .min(mails.max(first_mails));
        match out.last_mut() {
            Some(b) if b.len() < cap && used.saturating_add(n) <= bytes => {
                used = used.saturating_add(n);
                b.push(item);
            }
            _ => {
                used = n;
                out.push(vec![item]);
            }
        }
    }
    out
}

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
        let bytes = mails.iter().map(|m| m.raw.in_memory()).sum();
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
                return Err(Error::storage_msg(format!(
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

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn batches_double_from_the_first_and_bytes_bound() {
        let items: Vec<u64> = vec![1; 25];
        let sizes: Vec<usize> = split(&items, |s| s, 2, 5, 1000)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [2, 4, 5, 5, 5, 4]);
        // Bytes cut too; an item larger than the bound stands alone.
        let items = [4u64, 4, 4, 20, 1];
        let b = split(&items, |s| s, 5, 10, 8);
        assert_eq!(b, vec![vec![4, 4], vec![4], vec![20], vec![1]]);
    }
}
