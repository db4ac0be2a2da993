//! Deadline arithmetic and [`Deadline::race`]. Outcomes only, never
//! timings: the waits are short against generous idle timeouts.

use std::time::Duration;

use super::*;

fn budget(floor_ms: u64, rate: u64) -> Budget {
    Budget {
        floor: Duration::from_millis(floor_ms),
        min_rate: rate,
    }
}

#[test]
fn work_buys_time_at_the_minimum_rate() {
    let d = Deadline::start(budget(10_000, 1024));
    assert_eq!(d.allowed(), Duration::from_secs(10));
    d.arrived(4096);
    assert_eq!(d.allowed(), Duration::from_secs(14));
    d.arrived(512);
    assert_eq!(d.allowed(), Duration::from_millis(14_500));
    d.command();
    assert_eq!(d.allowed(), Duration::from_millis(14_750));
}

#[test]
fn a_cap_stops_counting_work_beyond_what_was_justified() {
    let d = Deadline::start(budget(0, 1024));
    d.arrived(1024);
    d.cap_more(2048);
    d.arrived(1024 * 1024);
    assert_eq!(d.allowed(), Duration::from_secs(3));
    d.cap_more(1024);
    assert_eq!(d.allowed(), Duration::from_secs(4));
}

#[test]
fn huge_work_saturates_instead_of_overflowing() {
    let d = Deadline::start(budget(1000, 1));
    d.arrived(u64::MAX);
    d.arrived(u64::MAX);
    assert!(!d.passed());
    assert!(d.at() > Instant::now());
}

#[tokio::test]
async fn a_silent_future_ends_at_the_deadline_not_the_idle_timeout() {
    let d = Deadline::start(budget(50, 1024 * 1024));
    let r = d
        .race(Duration::from_secs(30), std::future::pending::<()>())
        .await;
    assert_eq!(r, Err(Expired::Deadline));
    assert!(
        d.explain().contains("did not finish within 0 s"),
        "{}",
        d.explain()
    );
}

#[tokio::test]
async fn the_idle_timeout_still_applies_within_the_deadline() {
    let d = Deadline::start(budget(60_000, 1024));
    let r = d
        .race(Duration::from_millis(50), std::future::pending::<()>())
        .await;
    assert_eq!(r, Err(Expired::Idle));
}

#[tokio::test]
async fn a_ready_future_after_the_deadline_is_refused() {
    let d = Deadline::start(budget(0, 1024));
    assert_eq!(
        d.race(Duration::from_secs(30), async { 7 }).await,
        Err(Expired::Deadline)
    );
    let d = Deadline::start(budget(60_000, 1024));
    assert_eq!(d.race(Duration::from_secs(30), async { 7 }).await, Ok(7));
}

/// Work that arrives while a wait is under way moves the deadline on:
/// the wait set for the old deadline (0.2 s) wakes, finds it moved, and
/// waits on for the future.
#[tokio::test]
async fn work_arriving_during_a_wait_extends_it() {
    let d = Deadline::start(budget(200, 1024));
    let feeder = d.clone();
    let done = async move {
        feeder.arrived(60 * 1024);
        tokio::time::sleep(Duration::from_millis(400)).await;
        "done"
    };
    assert_eq!(d.race(Duration::from_secs(30), done).await, Ok("done"));
}

#[test]
fn the_weak_handle_ends_with_the_fetch() {
    let d = Deadline::start(Budget::default());
    let weak = d.downgrade();
    assert!(weak.get().is_some());
    drop(d);
    assert!(weak.get().is_none());
    assert!(WeakDeadline::default().get().is_none());
}
