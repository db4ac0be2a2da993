//! The outbox state machine: which record follows which event.
//!
//! ```text
//!            start             accepted (250 after the dot)
//! queued ───────────► sending ───────────────────────────► sent
//!   ▲                   │ │
//!   │ transient failure │ │ permanent failure (5xx), uncertain outcome,
//!   └───────────────────┘ │ or transient failures for longer than GIVE_UP
//!     (backoff)           └────────────────────────────────► failed
//! ```
//!
//! - Backoff: the n-th attempt that failed transiently waits
//!   [`FIRST_RETRY`]` · 2^(n-1)`, at most [`MAX_RETRY`]: 30 s, 1, 2, 4, 8,
//!   16, 32 min, then hourly. A mail still failing [`GIVE_UP`] after it
//!   was queued is failed with the last error — the bound MTAs use for
//!   their queues (Postfix `maximal_queue_lifetime` is 5 days; a CRM user
//!   should hear sooner that a mail did not go out).
//! - A mail the server has accepted is never sent again: the acceptance is
//!   the first thing recorded after the 250, before QUIT.
//! - Uncertain outcome (the connection broke after the final dot may have
//!   gone out, before the reply came): the server may have the mail.
//!   MTAs send again in that case and accept the duplicate (RFC 1047);
//!   mail written by a person to a customer is different — a duplicate is
//!   visible and embarrassing, while a `failed` mail with a clear error is
//!   seen in the outbox and can be sent again by the user, who can check
//!   first. So it becomes `failed` and is not sent again automatically.
//! - A crash (or kill -9) while `sending`: the record says whether the
//!   body had begun to go out (`body_started`, written durably just
//!   before). If not, the server cannot have the mail, and it is queued
//!   again at once; if so, it is the uncertain case above.

use std::time::Duration;

use super::smtp::Failure;
use crate::store::{OutboxRecord, OutboxState};

/// Wait after the first transient failure.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);
/// Longest wait between attempts.
pub const MAX_RETRY: Duration = Duration::from_secs(3600);
/// How long after queueing transient failures are retried.
pub const GIVE_UP: Duration = Duration::from_secs(2 * 24 * 3600);

/// What the error of an uncertain outcome adds (module docs).
pub const NOT_RESENT: &str = "It was not sent again automatically, to avoid a duplicate: check \
     whether it arrived, and send it again if it did not.";

/// The wait after `attempts` attempts (module docs).
pub fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1u32 << doublings).min(MAX_RETRY)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// queued → sending.
pub fn start(r: &OutboxRecord, now: i64) -> OutboxRecord {
    OutboxRecord {
        state: OutboxState::Sending,
        attempts: r.attempts.saturating_add(1),
        next_at: now,
        body_started: false,
        ..r.clone()
    }
}

/// sending, and the body is about to go out.
pub fn body_started(r: &OutboxRecord) -> OutboxRecord {
    OutboxRecord {
        body_started: true,
        ..r.clone()
    }
}

/// sending → sent.
pub fn accepted(r: &OutboxRecord, now: i64) -> OutboxRecord {
    OutboxRecord {
        state: OutboxState::Sent,
        error: String::new(),
        done_at: now,
        ..r.clone()
    }
}

fn failed(r: &OutboxRecord, now: i64, error: String) -> OutboxRecord {
    OutboxRecord {
        state: OutboxState::Failed,
        error,
        done_at: now,
        ..r.clone()
    }
}

/// sending → queued (backoff) or failed, after `f`.
pub fn after_failure(r: &OutboxRecord, now: i64, f: &Failure) -> OutboxRecord {
    let text = f.error().to_string();
    match f {
        Failure::Permanent(_) => failed(r, now, text),
        Failure::Uncertain(_) => failed(r, now, format!("{text}. {NOT_RESENT}")),
        Failure::Transient(_) if now.saturating_sub(r.queued_at) >= secs(GIVE_UP) => failed(
            r,
            now,
            format!(
                "gave up after {} attempts in {} hours: {text}",
                r.attempts,
                GIVE_UP.as_secs() / 3600
            ),
        ),
        Failure::Transient(_) => OutboxRecord {
            state: OutboxState::Queued,
            next_at: now.saturating_add(secs(backoff(r.attempts))),
            body_started: false,
            error: text,
            ..r.clone()
        },
    }
}

/// A `sending` record found at start: the daemon stopped during that
/// attempt (module docs).
pub fn after_crash(r: &OutboxRecord, now: i64) -> OutboxRecord {
    if r.body_started {
        failed(
            r,
            now,
            format!(
                "postfachd stopped while the mail was being handed to the SMTP server; the \
                 server may have accepted it. {NOT_RESENT}"
            ),
        )
    } else {
        OutboxRecord {
            state: OutboxState::Queued,
            next_at: now,
            error: "postfachd stopped before the mail was handed over; it is sent again".into(),
            ..r.clone()
        }
    }
}

#[cfg(test)]
mod tests;
