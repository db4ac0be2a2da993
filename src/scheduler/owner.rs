//! The owner loop: the only place that starts and stops account tasks.
//!
//! D-Bus methods send it [`Command`]s; it keeps one task per account and
//! restarts a task when its account changes, so a task always runs with the
//! settings and secrets that are in the store (DESIGN.md §5 "configure").
//! On stop it cancels every task and waits for them, within a bound.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use super::task::{Reply, Task};
use super::{Command, Handle, State};
use crate::error::Error;
use crate::net::{Timeouts, TlsContext};
use crate::store::Store;

/// What every account task needs.
#[derive(Clone)]
pub struct Runtime {
    pub handle: Handle,
    pub store: Arc<Store>,
    pub tls: TlsContext,
    pub timeouts: Timeouts,
    /// Bounds the sessions open at once.
    pub connects: Arc<Semaphore>,
}

struct Running {
    requests: mpsc::UnboundedSender<Reply>,
    cancel: watch::Sender<bool>,
    join: JoinHandle<()>,
}

/// Run until `stop` turns true (or every handle is gone), then stop all
/// tasks, waiting at most `grace` for them.
pub async fn run(
    mut commands: mpsc::UnboundedReceiver<Command>,
    rt: Runtime,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut tasks: HashMap<String, Running> = HashMap::new();
    loop {
        let cmd = tokio::select! {
            _ = stop.changed() => break,
            c = commands.recv() => match c { Some(c) => c, None => break },
        };
        match cmd {
            Command::Reload(id) => {
                if let Some(old) = tasks.remove(&id) {
                    stop_task(old, grace).await;
                }
                let store = rt.store.clone();
                let key = id.clone();
                let account = match tokio::task::spawn_blocking(move || store.account(&key)).await {
                    Ok(Ok(Some(a))) => a,
                    Ok(Ok(None)) => continue,
                    Ok(Err(e)) => {
                        tracing::error!(account_id = %id, error = %e, "cannot load account");
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(account_id = %id, error = %e, "store task failed");
                        continue;
                    }
                };
                let (req_tx, req_rx) = mpsc::unbounded_channel();
                let (cancel_tx, cancel_rx) = watch::channel(false);
                let task = Task {
                    account,
                    rt: rt.clone(),
                    requests: req_rx,
                    cancel: cancel_rx,
                };
                let join = tokio::spawn(task.run());
                tasks.insert(
                    id,
                    Running {
                        requests: req_tx,
                        cancel: cancel_tx,
                        join,
                    },
                );
            }
            Command::Remove(id) => {
                if let Some(old) = tasks.remove(&id) {
                    stop_task(old, grace).await;
                }
                if let Ok(mut b) = rt.handle.board().lock() {
                    b.remove(&id);
                }
            }
            Command::FetchNow(id, reply) => match tasks.get(&id) {
                Some(t) => {
                    if let Err(mpsc::error::SendError(reply)) = t.requests.send(reply) {
                        let _ = reply.send(Err(Error::Busy(
                            "the account's task is restarting; try again".into(),
                        )));
                    }
                }
                None => {
                    let _ = reply.send(Err(Error::NotFound(format!("no account {id}"))));
                }
            },
        }
    }
    let all: Vec<Running> = tasks.into_values().collect();
    for t in &all {
        let _ = t.cancel.send(true);
    }
    let joins = futures::future::join_all(all.into_iter().map(|t| t.join));
    if tokio::time::timeout(grace, joins).await.is_err() {
        tracing::warn!("some account tasks did not stop in time");
    }
    if let Ok(mut b) = rt.handle.board().lock() {
        for s in b.values_mut() {
            s.state = State::Disabled;
        }
    }
}

async fn stop_task(t: Running, grace: Duration) {
    let _ = t.cancel.send(true);
    let mut join = t.join;
    if tokio::time::timeout(grace, &mut join).await.is_err() {
        join.abort();
    }
}
