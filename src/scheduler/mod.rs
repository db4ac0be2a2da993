//! One task per account: fetch, IDLE or sleep, back off (DESIGN.md §1
//! "Fetching and sending", invariant 5).
//!
//! The D-Bus objects never run a protocol session themselves: they send a
//! [`Command`] to the one owner loop ([`run`]), which starts, restarts and
//! stops the per-account tasks, and they read the [`Status`] board that the
//! tasks keep up to date. What the tasks want the world to know goes out as
//! [`Notice`]s on a broadcast channel, which the D-Bus layer turns into
//! signals and PropertiesChanged — so this module never imports `dbus`.

mod backoff;
mod owner;
mod task;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc, oneshot};

pub use owner::{run, Runtime};

use crate::error::{Error, Result};
use crate::fetch::FetchReport;

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
}

/// Something the D-Bus layer should announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The [`Status`] of this account changed.
    Status(String),
    /// A fetch ended; `error` is "" on success.
    FetchFinished {
        account: String,
        new_ids: Vec<u64>,
        error: String,
    },
}

/// What the owner loop is asked to do.
#[derive(Debug)]
pub enum Command {
    /// The account was created or its settings/secrets changed: (re)start its task.
    Reload(String),
    /// The account was deleted: stop its task.
    Remove(String),
    /// Fetch now and answer when done.
    FetchNow(String, oneshot::Sender<Result<FetchReport>>),
}

/// Shared status board: written by the account tasks, read by D-Bus getters.
pub type Board = Arc<Mutex<HashMap<String, Status>>>;

/// The handle the D-Bus layer holds: a channel to the owner loop, the status
/// board and the notice channel.
#[derive(Clone, Debug)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Command>,
    board: Board,
    notices: broadcast::Sender<Notice>,
}

impl Handle {
    /// A handle and the receiving end for [`run`].
    pub fn new() -> (Handle, mpsc::UnboundedReceiver<Command>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (notices, _) = broadcast::channel(1024);
        let handle = Handle {
            tx,
            board: Arc::new(Mutex::new(HashMap::new())),
            notices,
        };
        (handle, rx)
    }

    /// Ask the owner loop to (re)start this account's task.
    pub fn reload(&self, account: &str) {
        let _ = self.tx.send(Command::Reload(account.to_string()));
    }

    /// Ask the owner loop to stop this account's task.
    pub fn remove(&self, account: &str) {
        let _ = self.tx.send(Command::Remove(account.to_string()));
    }

    /// Fetch now; resolves when that fetch is done.
    pub async fn fetch_now(&self, account: &str) -> Result<FetchReport> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::FetchNow(account.to_string(), tx))
            .map_err(|_| Error::Busy("the daemon is stopping".into()))?;
        rx.await.map_err(|_| {
            Error::Busy(
                "the fetch was cancelled: the account changed or the daemon is stopping".into(),
            )
        })?
    }

    /// The account's status (default when the account has no task yet).
    pub fn status(&self, account: &str) -> Status {
        match self.board.lock() {
            Ok(b) => b.get(account).cloned().unwrap_or_default(),
            Err(poisoned) => poisoned
                .into_inner()
                .get(account)
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// Subscribe to notices.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    pub(crate) fn board(&self) -> &Board {
        &self.board
    }

    pub(crate) fn notify(&self, n: Notice) {
        let _ = self.notices.send(n);
    }
}
