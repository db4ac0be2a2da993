//! The owner loop: the only place that starts and stops account tasks, and
//! the way every request reaches its account's task.
//!
//! It never waits for anything but its next command, so that stopping or
//! restarting one account (Update, Delete, SIGHUP) never delays a call for
//! another (invariant 5): a task to be replaced is told to stop and its
//! successor, already spawned, waits for it before it begins (one task per
//! account at a time, see `task`); a removed task is told to stop and left
//! to end on its own. Loading the account is the task's own first step,
//! off this loop.
//!
//! Shutdown awaits the tasks the mini-redis way: every task (and every
//! LOGOUT a task sends off on its own) holds a clone of one `done` sender;
//! once all are dropped, the receiver's `recv` returns None.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::handle::Command;
use super::request::Stop;
use super::task::Task;
use super::Runtime;

/// A running account task, as the owner loop holds it.
struct Running {
    requests: mpsc::UnboundedSender<super::Request>,
    stop: watch::Sender<Option<Stop>>,
    join: JoinHandle<()>,
}

impl Running {
    fn spawn(
        account: String,
        rt: &Runtime,
        before: Option<JoinHandle<()>>,
        grace: Duration,
        done: mpsc::Sender<()>,
    ) -> Running {
        let (requests, rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(None);
        let task = Task {
            account,
            rt: rt.clone(),
            requests: rx,
            stop: stop_rx,
            before,
            grace,
            done,
        };
        Running {
            requests,
            stop,
            join: tokio::spawn(task.run()),
        }
    }

    /// Tells the task to stop; returns its handle for a successor to await.
    fn stop(self, why: Stop) -> JoinHandle<()> {
        let _ = self.stop.send(Some(why));
        self.join
    }
}

/// Runs until `stop` turns true (or every handle is gone), then stops all
/// tasks and waits at most `grace` for them.
pub async fn run(
    mut commands: mpsc::UnboundedReceiver<Command>,
    rt: Runtime,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let (done, mut all_done) = mpsc::channel::<()>(1);
    let mut tasks: HashMap<String, Running> = HashMap::new();
    // Between Pause and Resume no task starts (a restore swaps the store).
    let mut paused = false;
    loop {
        let cmd = tokio::select! {
            _ = stop.changed() => break,
            c = commands.recv() => match c { Some(c) => c, None => break },
        };
        match cmd {
            Command::Reload(_) if paused => {}
            Command::Reload(id) => {
                let before = tasks.remove(&id).map(|old| old.stop(Stop::Restart));
                let new = Running::spawn(id.clone(), &rt, before, grace, done.clone());
                tasks.insert(id, new);
            }
            Command::Remove { id, announce } => {
                match tasks.remove(&id) {
                    // The task clears its board entry when it ends.
                    Some(old) => drop(old.stop(Stop::Remove)),
                    None => rt.handle.board().remove(&id),
                }
                if announce {
                    rt.handle.notifier().removed(&id);
                }
            }
            Command::Request(id, request) => match tasks.get(&id) {
                Some(t) => {
                    if let Err(mpsc::error::SendError(request)) = t.requests.send(request) {
                        // The task ended on its own: its account is gone.
                        request.no_account(&id);
                    }
                }
                None => request.no_account(&id),
            },
            Command::Ping(answer) => {
                let _ = answer.send(());
            }
            Command::Pause(answer) => {
                paused = true;
                let ended: Vec<JoinHandle<()>> =
                    tasks.drain().map(|(_, t)| t.stop(Stop::Restart)).collect();
                // Awaited off this loop, so that it keeps answering.
                tokio::spawn(async move {
                    let all = futures::future::join_all(ended);
                    if tokio::time::timeout(grace, all).await.is_err() {
                        tracing::warn!("some account tasks did not stop in time for a pause");
                    }
                    let _ = answer.send(());
                });
            }
            Command::Resume(ids) => {
                paused = false;
                for id in ids {
                    let before = tasks.remove(&id).map(|old| old.stop(Stop::Restart));
                    let new = Running::spawn(id.clone(), &rt, before, grace, done.clone());
                    tasks.insert(id, new);
                }
            }
        }
    }
    for t in tasks.into_values() {
        drop(t.stop(Stop::Shutdown));
    }
    drop(done);
    if tokio::time::timeout(grace, all_done.recv()).await.is_err() {
        tracing::warn!("some account tasks did not stop in time");
    }
    rt.handle.board().disable_all();
}
