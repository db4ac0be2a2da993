//! Waiting in tests for something the daemon or a server does on its own:
//! poll a condition until it holds, and fail naming what never came. The
//! limit only bounds a test that would otherwise hang; no test asserts how
//! fast a thing came (the machine is shared and noisy).

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is asked.
const STEP: Duration = Duration::from_millis(50);

/// Polls `check` until it is true; panics after `limit`, naming `what`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(STEP).await;
    }
}

/// [`eventually`] for tests that run without an async runtime (child
/// processes, threads).
pub fn eventually_blocking(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(STEP);
    }
}
