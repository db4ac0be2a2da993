//! Exponential backoff with jitter for failing accounts (ARCHITECTURE.md "What it does":
//! "Errors back off per account and never disturb other accounts").
//!
//! 15 s, 30 s, 1 min, … capped at 30 minutes, each ±20 % so that accounts
//! on one failing server do not retry in lockstep; reset on success.

use std::time::Duration;

use rand::Rng;

pub const FIRST: Duration = Duration::from_secs(15);
pub const CAP: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Default, Clone)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// Record a failure; the delay before the next try.
    pub fn fail(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exp = self.failures.saturating_sub(1).min(16);
        let base = FIRST.saturating_mul(1u32 << exp).min(CAP);
        let jitter = rand::thread_rng().gen_range(0.8..1.2);
        base.mul_f64(jitter).min(CAP)
    }

    /// Record a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    #[cfg(test)]
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_is_capped_and_resets() {
        let mut b = Backoff::default();
        let first = b.fail();
        assert!(first >= FIRST.mul_f64(0.8) && first <= FIRST.mul_f64(1.2));
        let second = b.fail();
        assert!(second >= FIRST.mul_f64(1.6), "{second:?}");
        for _ in 0..40 {
            assert!(b.fail() <= CAP);
        }
        assert!(b.fail() >= CAP.mul_f64(0.8));
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.fail() <= FIRST.mul_f64(1.2));
    }
}
