//! The systemd watchdog: pings only while the daemon makes progress.
//!
//! With `WatchdogSec=` in the unit, systemd sets `WATCHDOG_USEC` (and
//! `WATCHDOG_PID`) and restarts the service when no `WATCHDOG=1` arrives
//! within that time (systemd.service(5), sd_watchdog_enabled(3)). A timer
//! that pings unconditionally proves only that the runtime still turns; so
//! each ping is earned by a probe — the scheduler's owner loop answers a
//! request and the store serves a read — and a probe that does not answer
//! within half a ping period costs the ping. Pings go out every half
//! watchdog interval, as sd_watchdog_enabled(3) recommends, so one slow
//! probe is forgiven and two in a row are not.

use std::future::Future;
use std::time::Duration;

/// When and how long to wait for the probe before each ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watchdog {
    /// The time between pings: half of systemd's watchdog interval.
    pub period: Duration,
}

impl Watchdog {
    /// The watchdog systemd asked for, or None when it did not (no
    /// `WatchdogSec=`, or `WATCHDOG_PID` names another process).
    pub fn from_env() -> Option<Watchdog> {
        let mut usec = 0;
        if !sd_notify::watchdog_enabled(false, &mut usec) {
            return None;
        }
        Watchdog::for_interval(Duration::from_micros(usec))
    }

    /// Ping twice per `interval`; None for a zero interval.
    pub fn for_interval(interval: Duration) -> Option<Watchdog> {
        let period = interval / 2;
        (!period.is_zero()).then_some(Watchdog { period })
    }

    /// How long a probe may take and still earn its ping.
    pub fn probe_budget(&self) -> Duration {
        self.period / 2
    }

    /// Run forever: every period, await `probe` for at most the budget and
    /// call `ping` only when it answered `true`. A missed ping is logged
    /// once per stall, with no account data, so the journal says why
    /// systemd is about to restart the daemon.
    pub async fn run<P, F, N>(self, mut probe: P, mut ping: N)
    where
        P: FnMut() -> F,
        F: Future<Output = bool>,
        N: FnMut(),
    {
        let mut ticks = tokio::time::interval(self.period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stalled = false;
        loop {
            ticks.tick().await;
            let answered = tokio::time::timeout(self.probe_budget(), probe()).await;
            if answered == Ok(true) {
                if stalled {
                    tracing::info!("the daemon makes progress again; watchdog pings resume");
                    stalled = false;
                }
                ping();
            } else if !stalled {
                tracing::warn!(
                    budget_ms = self.probe_budget().as_millis() as u64,
                    "the scheduler or the store did not answer in time; \
                     no watchdog ping, systemd restarts the daemon if this lasts"
                );
                stalled = true;
            }
        }
    }
}

/// Send `WATCHDOG=1` to systemd's notification socket.
pub fn ping_systemd() {
    // Without a NOTIFY_SOCKET this is a no-op; a send error (socket gone)
    // changes nothing we could act on: systemd restarts us if it matters.
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;

    #[test]
    fn pings_twice_per_interval() {
        let w = Watchdog::for_interval(Duration::from_secs(30)).unwrap();
        assert_eq!(w.period, Duration::from_secs(15));
        assert_eq!(w.probe_budget(), Duration::from_millis(7500));
        assert_eq!(Watchdog::for_interval(Duration::ZERO), None);
    }

    /// Pings follow the probe: they go out while it answers, stop while it
    /// hangs or says false, and resume when it answers again.
    #[tokio::test(start_paused = true)]
    async fn pings_only_while_the_probe_answers() {
        let healthy = Arc::new(AtomicBool::new(true));
        let hang = Arc::new(AtomicBool::new(false));
        let pings = Arc::new(AtomicU32::new(0));
        let w = Watchdog::for_interval(Duration::from_secs(2)).unwrap();
        let (h, g, p) = (healthy.clone(), hang.clone(), pings.clone());
        let dog = tokio::spawn(w.run(
            move || {
                let (h, g) = (h.clone(), g.clone());
                async move {
                    if g.load(Ordering::SeqCst) {
                        std::future::pending::<()>().await;
                    }
                    h.load(Ordering::SeqCst)
                }
            },
            move || {
                p.fetch_add(1, Ordering::SeqCst);
            },
        ));
        let settle = |secs: u64| tokio::time::sleep(Duration::from_millis(secs * 1000 + 10));
        settle(5).await;
        let while_healthy = pings.load(Ordering::SeqCst);
        assert!(while_healthy >= 4, "{while_healthy} pings in 5 s");

        hang.store(true, Ordering::SeqCst);
        settle(1).await;
        let at_hang = pings.load(Ordering::SeqCst);
        settle(10).await;
        assert_eq!(pings.load(Ordering::SeqCst), at_hang, "pinged while hung");

        hang.store(false, Ordering::SeqCst);
        healthy.store(false, Ordering::SeqCst);
        settle(10).await;
        assert_eq!(pings.load(Ordering::SeqCst), at_hang, "pinged on false");

        healthy.store(true, Ordering::SeqCst);
        settle(5).await;
        assert!(
            pings.load(Ordering::SeqCst) > at_hang,
            "pings did not resume"
        );
        dog.abort();
    }
}
