//! The status board: what each account is doing, written by its task alone
//! and read by the D-Bus getters (`State`, `LastError`, `LastFetchAt`,
//! `Progress`), so that a getter never waits for a task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// What an account is doing; the `State` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    Idle,
    Fetching,
    Error,
    NeedsAuthorization,
    Disabled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Fetching => "fetching",
            State::Error => "error",
            State::NeedsAuthorization => "needs-authorization",
            State::Disabled => "disabled",
        }
    }
}

/// The runtime status of one account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub last_error: String,
    /// Unix seconds of the last successful fetch; 0 = never.
    pub last_fetch_at: u64,
    /// (fetched, total) of the fetch under way.
    pub progress: (u32, u32),
    /// Office 365: the account holds tokens (the `Authorized` property;
    /// plain accounts are authorized by their password instead).
    pub authorized: bool,
}

/// Shared status board of every account.
#[derive(Debug, Clone, Default)]
pub struct Board(Arc<Mutex<HashMap<String, Status>>>);

impl Board {
    /// A poisoned lock still holds a consistent map (every writer replaces
    /// whole values), so it is used as it is.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Status>> {
        match self.0.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The account's status (default when the account has no task yet).
    pub fn get(&self, account: &str) -> Status {
        self.lock().get(account).cloned().unwrap_or_default()
    }

    /// Changes the account's status; whether anything changed.
    pub(super) fn update(&self, account: &str, f: impl FnOnce(&mut Status)) -> bool {
        let mut b = self.lock();
        let s = b.entry(account.to_string()).or_default();
        let before = s.clone();
        f(s);
        *s != before
    }

    pub(super) fn remove(&self, account: &str) {
        self.lock().remove(account);
    }

    /// Every account stopped: the daemon is going down.
    pub(super) fn disable_all(&self) {
        for s in self.lock().values_mut() {
            s.state = State::Disabled;
        }
    }
}
