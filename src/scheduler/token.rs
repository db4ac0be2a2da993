//! The life of the access token an Office 365 account's kept connection
//! runs on (docs/OAUTH.md). Office 365 ends a session whose token expired
//! ("AccessTokenExpired") and fails its commands, so a kept connection
//! outlives nothing: its IDLE ends when the token reaches the refresh
//! margin ([`TokenLife::idle_limit`]), the next turn logs in afresh
//! instead of reusing it ([`TokenLife::stale`]), and a command refused as
//! unauthenticated on a reused session means "log in again"
//! ([`reconnects`]). Plain accounts have no token life: None, false.
//!
//! Apart from `auth` (sign-in, `Authorized`) so that the worker, which
//! owns the connection, reads it without depending on the task's topics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::account::Account;
use crate::error::Error;
use crate::oauth::REFRESH_MARGIN;

/// When the access token of the worker's last login was issued and
/// expires (unix seconds; 0 before any Office 365 login).
#[derive(Debug, Default)]
pub(super) struct TokenLife {
    issued_at: AtomicU64,
    expires_at: AtomicU64,
}

impl TokenLife {
    /// A login now runs on a token that expires at `expires_at`.
    pub fn note(&self, expires_at: u64) {
        self.issued_at.store(now(), Ordering::Relaxed);
        self.expires_at.store(expires_at, Ordering::Relaxed);
    }

    /// Seconds left before the token reaches the refresh margin (the
    /// oauth module's rule: 5 minutes, or half its life).
    fn left(&self, account: &Account) -> Option<u64> {
        if !account.kind.is_office365() {
            return None;
        }
        let issued = self.issued_at.load(Ordering::Relaxed);
        let expires = self.expires_at.load(Ordering::Relaxed);
        let margin = REFRESH_MARGIN
            .as_secs()
            .min(expires.saturating_sub(issued) / 2);
        Some(expires.saturating_sub(margin).saturating_sub(now()))
    }

    /// Whether a kept connection must not be reused: its token is about to
    /// expire, and the server would end the session under us.
    pub fn stale(&self, account: &Account) -> bool {
        self.left(account) == Some(0)
    }

    /// How long an IDLE on the kept connection may last: `reissue`, or
    /// less when the token runs out sooner (at least a second, so that a
    /// token issued with no time left cannot spin).
    pub fn idle_limit(&self, account: &Account, reissue: Duration) -> Duration {
        match self.left(account) {
            Some(s) => reissue.min(Duration::from_secs(s.max(1))),
            None => reissue,
        }
    }
}

/// Whether `e` on a reused connection means "log in again": a dropped
/// session always; for Office 365 also a command refused as
/// unauthenticated, which is how the server answers after it ended the
/// session for its expired token.
pub(super) fn reconnects(account: &Account, e: &Error) -> bool {
    match e {
        Error::Connection { .. } => true,
        Error::Authentication(_) => account.kind.is_office365(),
        _ => false,
    }
}

fn now() -> u64 {
    crate::oauth::unix_now()
}
