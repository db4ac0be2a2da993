//! The deadline of one fetch: a server that drips a byte a second, or
//! keeps a session busy with harmless lines, must not keep an account
//! `fetching` for ever. Per-read timeouts cannot see either: every read
//! gets its byte in time.
//!
//! A fetch may take `floor + work / min_rate`: a fixed floor for the
//! round trips every fetch has (greeting, login, listing, QUIT; a slow
//! fsync of our own store), plus its work at the minimum transfer rate
//! ([`Budget`], `[fetch] deadline_floor` and `deadline_min_rate`), plus
//! [`COMMAND_TIME`] per command sent for its round trip. Work is the bytes
//! that arrived, counted as the fetch goes; so an honest server on a slow
//! link gets the time its mail needs however big it is, while a dripping
//! one adds nothing and is cut off near the floor. Counting arrivals rather than the sizes
//! a server announced matters twice: a POP3 LIST size may lie (a mail
//! listed as 100 bytes may be 90 MB long), and a server that announces
//! huge sizes and then drips must not buy itself hours.
//!
//! What bounds the work itself is the reader: POP3 caps every line,
//! listing and mail, so its arrivals are bounded by the mailbox. IMAP's
//! reader (async-imap) takes any number of untagged lines, so an IMAP
//! fetch caps the work it counts ([`Deadline::cap_more`]) at what its
//! listing justifies.
//!
//! A [`Deadline`] is shared (cheap clones) between the fetch and the
//! stream that counts for it; dropping the fetch's handles ends it, so a
//! kept IMAP session idles without one (`crate::net::Stream::watch`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

/// Time allowed for each command sent: its round trip (a server across an
/// ocean answers in about 0.1 s). Commands are ours, so a server cannot
/// buy time with them.
pub const COMMAND_TIME: Duration = Duration::from_millis(250);

/// How long a fetch may take; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Time every fetch gets, whatever its work.
    pub floor: Duration,
    /// Bytes per second a fetch must average over its work.
    pub min_rate: u64,
}

impl Default for Budget {
    /// 2 minutes (twice the default read timeout) and 16 KiB/s (128
    /// kbit/s, slower than any link a mail server sits on; a 100 MB mail
    /// then gets 1 hour 45 minutes).
    fn default() -> Self {
        Budget {
            floor: Duration::from_secs(120),
            min_rate: 16 * 1024,
        }
    }
}

/// The deadline of one fetch; see the module docs.
#[derive(Debug, Clone)]
pub struct Deadline(Arc<Inner>);

/// A [`Deadline`] as a stream holds it: gone once the fetch is over.
#[derive(Debug, Clone, Default)]
pub struct WeakDeadline(Weak<Inner>);

#[derive(Debug)]
struct Inner {
    start: Instant,
    budget: Budget,
    /// Bytes of work seen.
    work: AtomicU64,
    /// Most work counted ([`Deadline::cap_more`]); `u64::MAX`: no cap.
    cap: AtomicU64,
    /// Commands sent.
    commands: AtomicU64,
}

/// Why [`Deadline::race`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Nothing happened for the idle (read) timeout.
    Idle,
    /// The fetch passed its deadline.
    Deadline,
}

impl Deadline {
    /// A deadline starting now that counts every byte of work.
    pub fn start(budget: Budget) -> Deadline {
        Deadline(Arc::new(Inner {
            start: Instant::now(),
            budget,
            work: AtomicU64::new(0),
            cap: AtomicU64::new(u64::MAX),
            commands: AtomicU64::new(0),
        }))
    }

    /// `bytes` arrived.
    pub fn arrived(&self, bytes: u64) {
        self.0.work.fetch_add(bytes, Relaxed);
    }

    /// A command (a round trip) was sent.
    pub fn command(&self) {
        self.0.commands.fetch_add(1, Relaxed);
    }

    /// From now on count at most `bytes` more work (IMAP: what the
    /// listing justifies; see the module docs). Repeated calls add up.
    pub fn cap_more(&self, bytes: u64) {
        let cap = self.counted().saturating_add(bytes);
        self.0.cap.store(cap, Relaxed);
    }

    fn counted(&self) -> u64 {
        let i = &self.0;
        i.work.load(Relaxed).min(i.cap.load(Relaxed))
    }

    /// How long the fetch may take, as of now.
    pub fn allowed(&self) -> Duration {
        let b = &self.0.budget;
        let rate = b.min_rate.max(1);
        let work = self.counted();
        let extra = Duration::from_secs(work / rate)
            + Duration::from_nanos((work % rate).saturating_mul(1_000_000_000) / rate);
        let commands = u32::try_from(self.0.commands.load(Relaxed)).unwrap_or(u32::MAX);
        b.floor
            .saturating_add(extra)
            .saturating_add(COMMAND_TIME.saturating_mul(commands))
    }

    /// When the fetch must be over, as of now (it moves on as work
    /// arrives).
    pub fn at(&self) -> Instant {
        let far = Duration::from_secs(100 * 365 * 86_400);
        let start = self.0.start;
        start
            .checked_add(self.allowed())
            .or_else(|| start.checked_add(far))
            .unwrap_or(start)
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at()
    }

    /// The handle a stream keeps; see [`WeakDeadline`].
    pub fn downgrade(&self) -> WeakDeadline {
        WeakDeadline(Arc::downgrade(&self.0))
    }

    /// Runs `fut` until it ends, until `idle` passes, or until the
    /// deadline passes (also checked first: a server whose bytes are
    /// always ready is no exception).
    pub async fn race<F: std::future::Future>(
        &self,
        idle: Duration,
        fut: F,
    ) -> Result<F::Output, Expired> {
        if self.passed() {
            return Err(Expired::Deadline);
        }
        let idle_at = Instant::now() + idle;
        let mut fut = std::pin::pin!(fut);
        loop {
            let wake = self.at().min(idle_at);
            tokio::select! {
                out = &mut fut => return Ok(out),
                () = tokio::time::sleep_until(wake) => {}
            }
            if self.passed() {
                return Err(Expired::Deadline);
            }
            if Instant::now() >= idle_at {
                return Err(Expired::Idle);
            }
        }
    }

    /// What ended the fetch, for `LastError`: how long it had and why,
    /// and the keys that set it.
    pub fn explain(&self) -> String {
        let b = &self.0.budget;
        format!(
            "the fetch did not finish within {} s (a floor of {} s, plus {} KiB received \
             at the minimum rate of {} KiB/s and {} round trips; [fetch] deadline_floor, \
             deadline_min_rate)",
            self.allowed().as_secs(),
            b.floor.as_secs(),
            self.counted() / 1024,
            b.min_rate / 1024,
            self.0.commands.load(Relaxed),
        )
    }

    /// [`Deadline::explain`] as a connection error about `who`.
    pub fn error(&self, who: &str) -> Error {
        Error::connection(format!("{who} too slow: {}", self.explain()))
    }
}

impl WeakDeadline {
    /// The fetch's deadline, while the fetch runs.
    pub fn get(&self) -> Option<Deadline> {
        self.0.upgrade().map(Deadline)
    }
}

#[cfg(test)]
mod tests;
