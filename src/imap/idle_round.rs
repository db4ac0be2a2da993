//! One IDLE … DONE round of the task's kept session (see imap::idle for
//! the policy around it, imap::idle_wire for the commands): waits for news,
//! the end of its slice, or a wake-up, and answers wake-ups on the session
//! itself while INBOX is known to match the store.

use std::time::Duration;

use tokio::time::Instant;

use super::idle::Wakes;
use super::idle_wire::{self as wire, Heard, Idling};
use super::session::Session;
use crate::error::Error;
use crate::fetch::FetchReport;
use crate::net::Timeouts;

/// How one IDLE … DONE round ended.
pub(super) enum Ended<W> {
    /// The slice passed without news; IDLE was ended with DONE.
    Quiet,
    /// New mail; IDLE was ended (the session is unusable if DONE failed).
    News {
        usable: bool,
    },
    /// A wake-up that needs a fetch; whether the session is still usable,
    /// and whether news came (then INBOX no longer matches the store).
    Woken {
        out: W,
        usable: bool,
        news: bool,
    },
    Failed(Error),
}

/// One IDLE … DONE round of at most `slice`. Wake-ups are answered on the
/// session while INBOX is `known` and the pipelined check finds nothing.
#[allow(clippy::too_many_arguments)]
pub(super) async fn idle_once<K: Wakes>(
    session: &mut Session,
    t: &Timeouts,
    host: &str,
    slice: Duration,
    exists: &mut u32,
    known: bool,
    wakes: &mut K,
    unchanged: &FetchReport,
) -> Ended<K::Out> {
    let mut news = false;
    let mut idling = match wire::start(session, t, host, exists, &mut news).await {
        Ok(i) => i,
        Err(e) => return Ended::Failed(e),
    };
    let end = Instant::now() + slice;
    let woken = loop {
        if news {
            break None;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break None;
        }
        let heard = tokio::select! {
            got = tokio::time::timeout(left, wire::next(session, host, exists)) => got,
            w = wakes.next() => {
                if !known {
                    break Some(w);
                }
                match wakes_answered(session, idling, t, host, exists, wakes, w, unchanged).await {
                    Recheck::Answered(i) => {
                        idling = i;
                        continue;
                    }
                    Recheck::News(w, i) => {
                        idling = i;
                        news = true;
                        break Some(w);
                    }
                    Recheck::Lost(out) => {
                        return Ended::Woken {
                            out,
                            usable: false,
                            news: true,
                        }
                    }
                }
            }
        };
        match heard {
            Err(_) => break None,
            Ok(Ok(Heard::News)) => news = true,
            Ok(Ok(Heard::Nothing)) => {}
            Ok(Err(e)) => return Ended::Failed(e),
        }
    };
    match (wire::done(session, idling, t, host, exists).await, woken) {
        (Ok(more), Some(out)) => Ended::Woken {
            out,
            usable: true,
            news: news || more,
        },
        (Ok(more), None) if news || more => Ended::News { usable: true },
        (Ok(_), None) => Ended::Quiet,
        (Err(e), Some(out)) => {
            tracing::debug!(host, error = %e, "DONE failed; the fetch reconnects");
            Ended::Woken {
                out,
                usable: false,
                news: true,
            }
        }
        (Err(e), None) if news => {
            tracing::debug!(host, error = %e, "DONE failed; the fetch reconnects");
            Ended::News { usable: false }
        }
        (Err(e), None) => Ended::Failed(e),
    }
}

/// What a pipelined check on a wake-up came to.
enum Recheck<W> {
    /// Nothing new: the wake-up was answered; idling under this IDLE.
    Answered(Idling),
    /// News: the wake-up needs a fetch; idling under this IDLE.
    News(W, Idling),
    /// The session failed; the wake-up needs a fetch on a new one.
    Lost(W),
}

/// DONE, NOOP, IDLE in one write; answers `w` when nothing is new.
#[allow(clippy::too_many_arguments)]
async fn wakes_answered<K: Wakes>(
    session: &mut Session,
    idling: Idling,
    t: &Timeouts,
    host: &str,
    exists: &mut u32,
    wakes: &mut K,
    w: K::Out,
    unchanged: &FetchReport,
) -> Recheck<K::Out> {
    match wire::recheck(session, idling, t, host, exists).await {
        Ok((i, false)) => match wakes.answer(w, unchanged) {
            None => Recheck::Answered(i),
            Some(w) => Recheck::News(w, i),
        },
        Ok((i, true)) => Recheck::News(w, i),
        Err(e) => {
            tracing::debug!(host, error = %e, "the check on the idling session failed");
            Recheck::Lost(w)
        }
    }
}
