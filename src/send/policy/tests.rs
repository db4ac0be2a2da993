use super::*;
use crate::error::Error;

const T0: i64 = 1_700_000_000;

fn queued() -> OutboxRecord {
    OutboxRecord {
        account: "a1".into(),
        from: "info@example.org".into(),
        rcpt: vec!["k@example.com".into()],
        queued_at: T0,
        next_at: T0,
        ..OutboxRecord::default()
    }
}

fn transient() -> Failure {
    Failure::Transient(Error::connection("connection refused by smtp:587".into()))
}

#[test]
fn backoff_doubles_from_30_seconds_up_to_an_hour() {
    let waits: Vec<u64> = (1..=10).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    assert_eq!(backoff(0).as_secs(), 30);
    assert_eq!(backoff(u32::MAX), MAX_RETRY);
}

#[test]
fn a_transient_failure_queues_again_after_the_backoff() {
    let s = start(&queued(), T0 + 1);
    assert_eq!(
        (s.state, s.attempts, s.next_at),
        (OutboxState::Sending, 1, T0 + 1)
    );
    let r = after_failure(&s, T0 + 2, &transient());
    assert_eq!(r.state, OutboxState::Queued);
    assert_eq!(r.next_at, T0 + 2 + 30);
    assert_eq!(r.error, "connection refused by smtp:587");
    let r = after_failure(&start(&r, T0 + 40), T0 + 41, &transient());
    assert_eq!((r.attempts, r.next_at), (2, T0 + 41 + 60));
    // Sent clears the error and is final.
    let done = accepted(&start(&r, T0 + 200), T0 + 201);
    assert_eq!(
        (done.state, done.error.as_str(), done.done_at),
        (OutboxState::Sent, "", T0 + 201)
    );
    assert_eq!(done.attempts, 3);
}

#[test]
fn transient_failures_give_up_after_two_days() {
    let s = start(&queued(), T0 + secs(GIVE_UP) - 1);
    assert_eq!(
        after_failure(&s, T0 + secs(GIVE_UP) - 1, &transient()).state,
        OutboxState::Queued
    );
    let r = after_failure(&s, T0 + secs(GIVE_UP), &transient());
    assert_eq!(r.state, OutboxState::Failed);
    assert_eq!(
        r.error,
        "gave up after 1 attempts in 48 hours: connection refused by smtp:587"
    );
    assert_eq!(r.done_at, T0 + secs(GIVE_UP));
}

#[test]
fn permanent_and_uncertain_outcomes_fail_at_once() {
    let s = start(&queued(), T0);
    let p = Failure::Permanent(Error::connection("h refused the mail: 550 5.1.1 no".into()));
    let r = after_failure(&s, T0 + 1, &p);
    assert_eq!(
        (r.state, r.error.as_str()),
        (OutboxState::Failed, "h refused the mail: 550 5.1.1 no")
    );
    let u = Failure::Uncertain(Error::connection("lost".into()));
    let r = after_failure(&s, T0 + 1, &u);
    assert_eq!(r.state, OutboxState::Failed);
    assert!(
        r.error.starts_with("lost. It was not sent again"),
        "{}",
        r.error
    );
}

#[test]
fn a_crash_before_the_body_queues_again_and_after_it_fails() {
    let s = start(&queued(), T0);
    let r = after_crash(&s, T0 + 100);
    assert_eq!(
        (r.state, r.next_at, r.attempts),
        (OutboxState::Queued, T0 + 100, 1)
    );
    assert!(!r.error.is_empty());
    let b = body_started(&s);
    assert!(b.body_started && b.state == OutboxState::Sending);
    let r = after_crash(&b, T0 + 100);
    assert_eq!(r.state, OutboxState::Failed);
    assert!(r.error.contains(NOT_RESENT), "{}", r.error);
    // A new attempt starts with a clean mark.
    assert!(!start(&after_crash(&s, T0), T0).body_started);
}
