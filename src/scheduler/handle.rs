//! The handle the D-Bus layer holds (the system76-scheduler shape: an
//! object holds only a sender): configuration events and requests to the
//! owner loop, the status board, and the notices for the pump.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::board::{Board, Status};
use super::notice::{Notices, Notifier};
use super::request::{Reply, Request};
use crate::error::{Error, Result};
use crate::fetch::FetchReport;

/// What the owner loop is asked to do.
#[derive(Debug)]
pub enum Command {
    /// The account was created or its settings/secrets changed: (re)start its task.
    Reload(String),
    /// The account was deleted or replaced: stop its task for good; `announce` sends
    /// [`super::Notice::Removed`] once the owner loop has done so.
    Remove { id: String, announce: bool },
    /// Hand a request to the account's task.
    Request(String, Request),
    /// Answer at once: the watchdog's proof that the loop turns.
    Ping(oneshot::Sender<()>),
    /// Stop every task and start none until [`Command::Resume`]; the sender
    /// is answered once they have all ended (a restore replaces the store).
    Pause(oneshot::Sender<()>),
    /// Start tasks again, one per account id given.
    Resume(Vec<String>),
}

/// Channels to the owner loop and the pump, and the status board.
#[derive(Clone, Debug)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Command>,
    board: Board,
    notifier: Notifier,
    /// Taken once, by the pump.
    notices: Arc<Mutex<Option<Notices>>>,
}

impl Handle {
    /// A handle and the receiving end for [`super::run`].
    pub fn new() -> (Handle, mpsc::UnboundedReceiver<Command>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (notifier, notices) = Notifier::new();
        let handle = Handle {
            tx,
            board: Board::default(),
            notifier,
            notices: Arc::new(Mutex::new(Some(notices))),
        };
        (handle, rx)
    }

    /// Ask the owner loop to (re)start this account's task.
    pub fn reload(&self, account: &str) {
        let _ = self.tx.send(Command::Reload(account.to_string()));
    }

    /// True when the owner loop answers within `wait`: it still takes
    /// commands, so configuration changes and requests get through.
    pub async fn ping(&self, wait: std::time::Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Ping(tx)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(wait, rx).await, Ok(Ok(())))
    }

    /// Stop every account task and keep them stopped until
    /// [`Handle::resume_all`]; resolves when they have ended (or did not
    /// within the owner's grace). The owner loop keeps answering meanwhile.
    pub async fn pause_all(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Pause(tx))
            .map_err(|_| Error::Busy("the daemon is stopping".into()))?;
        rx.await
            .map_err(|_| Error::Busy("the daemon is stopping".into()))
    }

    /// Start the tasks of `accounts` after [`Handle::pause_all`].
    pub fn resume_all(&self, accounts: Vec<String>) {
        let _ = self.tx.send(Command::Resume(accounts));
    }

    /// Ask the owner loop to stop this deleted account's task; then a
    /// [`super::Notice::Removed`] tells the notice's reader (the D-Bus
    /// service unpublishes the account's object).
    pub fn remove(&self, account: &str) {
        let _ = self.tx.send(Command::Remove {
            id: account.to_string(),
            announce: true,
        });
    }

    /// Like [`Handle::remove`] without the notice: for a caller that
    /// unpublishes the object itself (a restore replaces every account,
    /// possibly under the same ids).
    pub fn remove_quietly(&self, account: &str) {
        let _ = self.tx.send(Command::Remove {
            id: account.to_string(),
            announce: false,
        });
    }

    /// Fetch now; resolves when that fetch is done.
    pub async fn fetch_now(&self, account: &str) -> Result<FetchReport> {
        self.ask(account, Request::FetchNow).await
    }

    /// Moves stored message `message` of `account` into the account's Trash
    /// folder on the server, if there is one to move it to; resolves when
    /// that is done (see [`Request::Trash`]).
    pub async fn trash(&self, account: &str, message: u64) -> Result<()> {
        self.ask(account, |reply| Request::Trash { message, reply })
            .await
    }

    /// Hands a request to the account's task without awaiting an answer.
    pub(super) fn tell(&self, account: &str, r: Request) {
        let _ = self.tx.send(Command::Request(account.to_string(), r));
    }

    /// Sends a request to the account's task and awaits its answer.
    pub(super) async fn ask<T>(
        &self,
        account: &str,
        make: impl FnOnce(Reply<T>) -> Request,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Request(account.to_string(), make(tx)))
            .map_err(|_| Error::Busy("the daemon is stopping".into()))?;
        rx.await.map_err(|_| {
            Error::Busy(
                "the request was cancelled: the account changed or the daemon is stopping".into(),
            )
        })?
    }

    /// The account's status (default when the account has no task yet).
    pub fn status(&self, account: &str) -> Status {
        self.board.get(account)
    }

    /// The notices for the one pump; None after the first call.
    pub fn subscribe(&self) -> Option<Notices> {
        match self.notices.lock() {
            Ok(mut n) => n.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }

    pub(super) fn board(&self) -> &Board {
        &self.board
    }

    pub(super) fn notifier(&self) -> &Notifier {
        &self.notifier
    }
}
