//! The boundary of every store call: what a failure inside the store does
//! to the next call.
//!
//! Every public method runs its body through [`Store::call`]:
//! - A panic (redb on a page damaged after the open check, a poisoned
//!   lock) is caught and becomes a Storage error of that call only; the
//!   database is closed and opened again with the full checks of
//!   `super::opening` before the next call, since redb's in-memory state
//!   may be half-changed. Never a dead daemon.
//! - An I/O error of the database file (recorded by
//!   `super::backend::Watched`) makes redb refuse every later read and
//!   write of that handle ("Previous I/O error occurred. Please close and
//!   re-open the database"), and a failed commit leaves its outcome open.
//!   Either way the database is reopened before the next call, which then
//!   runs on the new handle: once space returns, fetching goes on without
//!   a restart. While the file cannot be opened for writing (redb's crash
//!   recovery commits, which a full disk refuses), a read-only view of it
//!   serves the reads, and every write fails with the clear reason, e.g.
//!   "no space left for the store in /var/lib/postfach". Reopen attempts
//!   back off (0 s, then 1 s doubling to 30 s) until a commit succeeds
//!   again, so a disk that stays full does not make every call reopen.
//!
//! A reopen waits at most [`SWAP_WAIT`] for the calls in flight (a backup
//! holding its snapshot may take longer); if they do not finish, the call
//! goes on with the store as it is and a later call tries again.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::backend::Fault;
use super::{blobs, opening, swap, Current, Store};
use crate::error::{Error, Result};

/// How long a reopen waits for the calls in flight.
const SWAP_WAIT: Duration = Duration::from_secs(2);
/// The longest pause between two reopen attempts.
const MAX_DELAY: Duration = Duration::from_secs(30);

/// Whether the store needs a reopen, and when to try it.
#[derive(Debug, Default)]
pub(super) struct Health {
    trouble: Mutex<Option<Trouble>>,
    /// Failures since the last successful commit: the backoff.
    streak: AtomicU32,
}

#[derive(Debug, Clone)]
struct Trouble {
    /// What calls are told while the store cannot serve them.
    why: Error,
    /// Reopen with the full checks of a start (after a panic).
    full_check: bool,
    next_try: Instant,
}

impl Health {
    fn lock(&self) -> MutexGuard<'_, Option<Trouble>> {
        self.trouble.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a failure that needs a reopen (see the module docs).
    pub(super) fn trouble(&self, why: Error, full_check: bool) {
        let streak = self.streak.fetch_add(1, Ordering::Relaxed);
        let delay = match streak {
            0 => Duration::ZERO,
            n => Duration::from_secs(1u64 << (n - 1).min(5)).min(MAX_DELAY),
        };
        let mut trouble = self.lock();
        let full_check = full_check || trouble.as_ref().is_some_and(|t| t.full_check);
        *trouble = Some(Trouble {
            why,
            full_check,
            next_try: Instant::now() + delay,
        });
    }

    /// A commit succeeded: the next failure is retried at once.
    pub(super) fn wrote(&self) {
        self.streak.store(0, Ordering::Relaxed);
    }

    fn due(&self) -> Option<Trouble> {
        self.lock().clone().filter(|t| Instant::now() >= t.next_try)
    }

    fn why(&self) -> Option<Error> {
        self.lock().as_ref().map(|t| t.why.clone())
    }

    fn recovered(&self) {
        *self.lock() = None;
    }
}

/// A redb error saying that a page is not what redb wrote (which its
/// release builds report where debug builds panic), or that a panic
/// poisoned one of its locks: the file is checked again before more is
/// read from or written into it.
fn is_damage(e: &Error) -> bool {
    use redb::{CommitError, StorageError, TableError, TransactionError};
    let Error::Storage {
        source: Some(cause),
        ..
    } = e
    else {
        return false;
    };
    let storage = cause
        .downcast_ref::<StorageError>()
        .or_else(|| match cause.downcast_ref::<TableError>()? {
            TableError::Storage(s) => Some(s),
            _ => None,
        })
        .or_else(|| match cause.downcast_ref::<TransactionError>()? {
            TransactionError::Storage(s) => Some(s),
            _ => None,
        })
        .or_else(|| match cause.downcast_ref::<CommitError>()? {
            CommitError::Storage(s) => Some(s),
            _ => None,
        });
    matches!(
        storage,
        Some(StorageError::Corrupted(_) | StorageError::LockPoisoned(_))
    )
}

impl Store {
    /// Runs the body of a public method (module docs). `what` completes
    /// "the store failed while trying to …".
    pub(super) fn call<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        // A nested call runs inside its caller's transaction: no reopen
        // could happen under it.
        if !swap::held() {
            self.recover();
        }
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.after_error(e)),
            Err(panic) => Err(self.after_panic(what, panic.as_ref())),
        }
    }

    /// Why calls fail while the database is closed.
    pub(super) fn unusable(&self) -> Error {
        self.health
            .why()
            .unwrap_or_else(|| Error::storage_msg("the store is closed".into()))
    }

    /// Why writes fail while only a read-only view is open.
    pub(super) fn read_only(&self) -> Error {
        let why = self.unusable();
        Error::storage_msg(format!(
            "the store is read-only until it can be reopened: {why}"
        ))
    }

    /// What an I/O error of the database file means, for the messages;
    /// the first time it is seen, the store is set to reopen.
    pub(super) fn fault_headline(&self, fault: &Fault) -> Option<String> {
        let (kind, what) = fault.get()?;
        let headline = if *kind == std::io::ErrorKind::StorageFull {
            format!("no space left for the store in {}", self.dir.display())
        } else {
            format!("I/O error on {}", self.path.display())
        };
        if fault.first_report() {
            tracing::error!("{headline} ({what}); the store is reopened before its next call");
            self.health
                .trouble(Error::storage_msg(format!("{headline} ({what})")), false);
        }
        Some(headline)
    }

    fn after_error(&self, e: Error) -> Error {
        let fault = self.current.read().fault.clone();
        let Some(headline) = self.fault_headline(&fault) else {
            if is_damage(&e) {
                tracing::error!("{e}; the store is reopened and checked before its next call");
                self.health.trouble(e.clone(), true);
            }
            return e;
        };
        match e {
            Error::Storage { message, source } if !message.starts_with(&headline) => {
                Error::Storage {
                    message: format!("{headline}: {message}"),
                    source,
                }
            }
            other => other,
        }
    }

    fn after_panic(&self, what: &str, panic: &(dyn std::any::Any + Send)) -> Error {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let detail: String = detail.chars().take(300).collect();
        tracing::error!(
            "the store failed while trying to {what} ({detail}); it is reopened and checked \
             before its next call"
        );
        let e = Error::storage_msg(format!(
            "the store failed while trying to {what}; it is reopened and checked"
        ));
        self.health.trouble(e.clone(), true);
        e
    }

    /// Reopens the database if a failure asked for it and its time has come.
    fn recover(&self) {
        if self.health.due().is_some() {
            let _ = self
                .current
                .swap(SWAP_WAIT, |current| self.reopen_in(current));
        }
    }

    fn reopen_in(&self, current: &mut Current) {
        // Another caller may have reopened while this one waited.
        let Some(trouble) = self.health.due() else {
            return;
        };
        // redb must release the file before it can be opened again.
        current.db = None;
        let opened = if trouble.full_check {
            self.open_with_key(opening::Pages::Check)
        } else {
            opening::reopen(&self.dir)
        };
        match opened {
            Ok(fresh) => {
                *current = fresh;
                self.after_reopen(current);
                tracing::info!(path = %self.path.display(), "store reopened");
            }
            Err(e) => {
                if !trouble.full_check {
                    if let Ok(view) = opening::open_read_only(&self.dir) {
                        *current = view;
                    }
                }
                tracing::warn!("the store cannot be reopened yet: {e}");
                let why = Error::storage_msg(format!("the store cannot be opened: {e}"));
                self.health.trouble(why, trouble.full_check);
            }
        }
    }

    /// The checks of a start, and the key they load.
    fn open_with_key(&self, pages: opening::Pages) -> Result<Current> {
        let (fresh, key) = opening::open_checked(&self.dir, pages)?;
        *self.key.lock().unwrap_or_else(PoisonError::into_inner) = key;
        Ok(fresh)
    }

    /// Housekeeping of a freshly opened database: the blob files of the
    /// failed transactions go (`super::blobs`). A failure there only leaves
    /// files for a later sweep.
    fn after_reopen(&self, current: &Current) {
        self.health.recovered();
        let mut id = self
            .installation_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        id.clone_from(&current.installation_id);
        drop(id);
        if let Some(db) = &current.db {
            if let Err(e) = blobs::sweep(db, &self.blobs) {
                tracing::warn!("blob files not swept after the reopen: {e}");
            }
        }
    }

    /// Replaces the database under running callers: waits (at most `wait`)
    /// until no store call is in flight, holds new ones back, closes the
    /// database, runs `install` on the state directory (a restore moves
    /// the verified new store and `blobs/` into place there, crash-safely),
    /// then opens what is there with the checks of a start but the page
    /// walk (`opening::Pages::Trusted`: the new file was just built here,
    /// and every store call waits meanwhile). Callers
    /// holding `Arc<Store>` keep it: calls in flight finished on the old
    /// database, later ones wait for the swap and use the new one.
    ///
    /// Busy if the calls in flight did not finish in time (nothing was
    /// changed). If the result cannot be opened, every call fails with
    /// that error until a later swap succeeds; `install`'s own error is
    /// returned after whatever it left was opened.
    pub fn swap(&self, wait: Duration, install: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        let done = self.current.swap(wait, |current| {
            current.db = None;
            let installed =
                catch_unwind(AssertUnwindSafe(|| install(&self.dir))).unwrap_or_else(|_| {
                    Err(Error::storage_msg("installing the new store failed".into()))
                });
            match self.open_with_key(opening::Pages::Trusted) {
                Ok(fresh) => {
                    *current = fresh;
                    self.after_reopen(current);
                    installed
                }
                Err(e) => {
                    self.health.trouble(e.clone(), true);
                    Err(e)
                }
            }
        });
        done.unwrap_or_else(|| {
            Err(Error::Busy(format!(
                "store calls did not finish within {wait:?}; the store was not replaced"
            )))
        })
    }
}

#[cfg(test)]
mod tests;
