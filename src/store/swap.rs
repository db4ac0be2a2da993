//! The lock that lets the database be replaced under a running store.
//!
//! Every transaction holds a [`Shared`] for its life; a swap (a reopen
//! after a full disk or a panic, later a restore) takes the value
//! exclusively, once no transaction is left. What callers see: calls in
//! flight finish on the old database; calls that arrive while a swap waits
//! or runs wait for it and then use the new one. Nobody sees a database
//! closed under an open transaction (redb would fail its reads with
//! `DatabaseClosed`).
//!
//! Why not a plain `RwLock`: std's lock (futex) stops new readers as soon
//! as a writer waits, so a thread that already holds a transaction and
//! opens a second one (a store call reading inside another call, a backup
//! reading while it holds its snapshot) would deadlock with the waiting
//! swap. Here a swap waits at a gate of its own: new callers on threads
//! that hold nothing wait at the gate, threads that already hold a
//! [`Shared`] pass (a thread-local count says which), and the swap takes
//! the inner `RwLock` only when no [`Shared`] is left, so that lock never
//! blocks. A swap gives up after its wait limit rather than stall the
//! store behind a long reader (a backup).

use std::cell::Cell;
use std::ops::Deref;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

thread_local! {
    /// How many [`Shared`] this thread holds.
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// Whether this thread holds a [`Shared`] of any store.
pub(super) fn held() -> bool {
    HELD.with(|h| h.get() > 0)
}

#[derive(Debug, Default)]
struct Gate {
    /// [`Shared`] handed out and not yet dropped.
    readers: usize,
    /// A swap waits for the readers to drain, or runs.
    swapping: bool,
}

/// A value read by many and replaced now and then (module docs).
#[derive(Debug, Default)]
pub(super) struct Swappable<T> {
    gate: Mutex<Gate>,
    /// Signalled when `readers` drops to zero.
    drained: Condvar,
    /// Signalled when a swap ends.
    open: Condvar,
    value: RwLock<T>,
}

/// Shared access to the current value; holds off swaps while it lives.
pub(super) struct Shared<'a, T> {
    guard: Option<RwLockReadGuard<'a, T>>,
    owner: &'a Swappable<T>,
}

impl<T> Deref for Shared<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match &self.guard {
            Some(g) => g,
            // Only Drop takes the guard.
            None => unreachable!("a Shared is used after it was dropped"),
        }
    }
}

impl<T> Drop for Shared<'_, T> {
    fn drop(&mut self) {
        drop(self.guard.take());
        HELD.with(|h| h.set(h.get().saturating_sub(1)));
        let mut gate = self.owner.lock_gate();
        gate.readers = gate.readers.saturating_sub(1);
        if gate.readers == 0 {
            self.owner.drained.notify_all();
        }
    }
}

impl<T> Swappable<T> {
    pub(super) fn new(value: T) -> Swappable<T> {
        Swappable {
            gate: Mutex::new(Gate::default()),
            drained: Condvar::new(),
            open: Condvar::new(),
            value: RwLock::new(value),
        }
    }

    fn lock_gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Shared access; waits while a swap runs, unless this thread already
    /// holds a [`Shared`] (which the swap is waiting for).
    pub(super) fn read(&self) -> Shared<'_, T> {
        let nested = held();
        let mut gate = self.lock_gate();
        while gate.swapping && !nested {
            gate = self.open.wait(gate).unwrap_or_else(PoisonError::into_inner);
        }
        gate.readers += 1;
        drop(gate);
        HELD.with(|h| h.set(h.get() + 1));
        // Never blocks: the swap holds the write lock only while no reader
        // is admitted (module docs).
        let guard = self.value.read().unwrap_or_else(PoisonError::into_inner);
        Shared {
            guard: Some(guard),
            owner: self,
        }
    }

    /// Runs `f` on the value alone, once every [`Shared`] is dropped;
    /// None if that did not happen within `wait`, or if this thread holds
    /// a [`Shared`] itself (it would wait for itself). A panic in `f` is
    /// caught (None) so that the gate always opens again.
    pub(super) fn swap<R>(&self, wait: Duration, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if held() {
            return None;
        }
        let deadline = Instant::now() + wait;
        let mut gate = self.lock_gate();
        while gate.swapping {
            let left = deadline.checked_duration_since(Instant::now())?;
            gate = self
                .open
                .wait_timeout(gate, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        gate.swapping = true;
        while gate.readers > 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                gate.swapping = false;
                self.open.notify_all();
                return None;
            };
            gate = self
                .drained
                .wait_timeout(gate, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(gate);
        let result = {
            let mut value = self.value.write().unwrap_or_else(PoisonError::into_inner);
            catch_unwind(AssertUnwindSafe(|| f(&mut value))).ok()
        };
        let mut gate = self.lock_gate();
        gate.swapping = false;
        self.open.notify_all();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn swapping<T>(s: &Swappable<T>) -> bool {
        s.lock_gate().swapping
    }

    #[test]
    fn a_swap_waits_for_readers_and_new_readers_wait_for_it() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let s = Arc::new(Swappable::new(1u32));
        let released = Arc::new(AtomicBool::new(false));
        let r = s.read();
        let (s2, released2) = (s.clone(), released.clone());
        let swapper = std::thread::spawn(move || {
            s2.swap(Duration::from_secs(60), |v| {
                *v = 2;
                released2.load(Ordering::SeqCst)
            })
        });
        while !swapping(&s) {
            std::thread::yield_now();
        }
        // The swap waits for `r`; a nested read on this thread passes.
        assert_eq!(*s.read(), 1);
        // A reader on a thread that holds nothing waits and sees the new value.
        let s3 = s.clone();
        let late = std::thread::spawn(move || *s3.read());
        std::thread::sleep(Duration::from_millis(50));
        released.store(true, Ordering::SeqCst);
        drop(r);
        assert_eq!(
            swapper.join().unwrap(),
            Some(true),
            "swapped before r was dropped"
        );
        assert_eq!(late.join().unwrap(), 2);
        assert_eq!(*s.read(), 2);
    }

    #[test]
    fn a_swap_gives_up_and_never_waits_for_its_own_thread() {
        let s = Arc::new(Swappable::new(1u32));
        let r = s.read();
        assert_eq!(s.swap(Duration::from_secs(5), |v| *v = 2), None);
        let s2 = s.clone();
        let other = std::thread::spawn(move || s2.swap(Duration::from_millis(50), |v| *v = 3));
        assert_eq!(other.join().unwrap(), None);
        // The gate is open again: new readers pass.
        let s3 = s.clone();
        assert_eq!(std::thread::spawn(move || *s3.read()).join().unwrap(), 1);
        drop(r);
        assert!(!held());
        assert_eq!(s.swap(Duration::from_secs(5), |v| *v = 4), Some(()));
        assert_eq!(*s.read(), 4);
        // A panicking swap leaves the value usable.
        assert_eq!(
            s.swap(Duration::from_secs(5), |_| panic!("boom")),
            None::<()>
        );
        assert_eq!(*s.read(), 4);
    }
}
