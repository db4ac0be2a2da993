//! Wiring: store, scheduler, bus, signals, sd_notify, shutdown.
//!
//! Order matters: the store is opened (and locked) first, so a second
//! daemon on the same state directory stops before it touches the bus; the
//! bus name is taken only after every object is served; READY=1 goes out
//! after both. On SIGTERM/SIGINT the name is released first (no new calls),
//! then the account tasks are cancelled and awaited within a bound, then
//! the store is closed by dropping its last reference. Losing the bus name
//! or the bus connection stops the daemon the same way, and it then exits
//! non-zero (`dbus::presence`): a daemon off the bus serves nobody.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tokio::sync::{watch, Semaphore};

use crate::access::Policy;
use crate::config::Config;
use crate::dbus::service::{serve, Ctx};
use crate::error::{Error, Result};
use crate::logging::LogHandle;
use crate::net::{Timeouts, TlsContext};
use crate::oauth::Office365;
use crate::scheduler::{self, Handle, Runtime};
use crate::store::Store;
use crate::watchdog::Watchdog;

/// How the daemon was started.
#[derive(Debug, Clone)]
pub struct Options {
    /// Session bus instead of the system bus (development and tests).
    pub session: bool,
    pub state_dir: PathBuf,
    /// Re-read on SIGHUP; None = built-in defaults.
    pub config_path: Option<PathBuf>,
}

/// The state directory when `--state-dir` is not given: systemd's
/// `StateDirectory=` (`$STATE_DIRECTORY`, possibly a `:`-list; the first is
/// ours), else /var/lib/postfach for root, else `$XDG_DATA_HOME/postfach`
/// (XDG Base Directory spec: `~/.local/share` when unset or empty).
pub fn default_state_dir() -> Option<PathBuf> {
    state_dir_from(
        std::env::var("STATE_DIRECTORY").ok().as_deref(),
        nix::unistd::geteuid().is_root(),
        std::env::var_os("XDG_DATA_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn state_dir_from(
    state_directory: Option<&str>,
    root: bool,
    xdg_data_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    if let Some(first) = state_directory.and_then(|d| d.split(':').find(|d| !d.is_empty())) {
        return Some(PathBuf::from(first));
    }
    if root {
        return Some(PathBuf::from("/var/lib/postfach"));
    }
    let data = match xdg_data_home {
        Some(d) if d.is_absolute() => d,
        _ => home?.join(".local/share"),
    };
    Some(data.join("postfach"))
}

/// Account tasks get this long to end after SIGTERM; the unit allows 15 s.
const STOP_GRACE: Duration = Duration::from_secs(8);

fn policy(config: &Config, session: bool) -> Policy {
    let owner = session.then(|| nix::unistd::getuid().as_raw());
    Policy::new(
        &config.access.admin_groups,
        &config.access.frontend_groups,
        &config.access.users,
        owner,
    )
}

fn timeouts(config: &Config) -> Timeouts {
    Timeouts {
        connect: config.fetch.connect_timeout,
        read: config.fetch.read_timeout,
        deadline: config.fetch.deadline,
        max_message_size: config.fetch.max_message_size,
    }
}

/// The watchdog's probe: true when the scheduler's owner loop takes a
/// command and the store serves a read, each within `wait`.
async fn alive(store: Arc<Store>, handle: Handle, wait: Duration) -> bool {
    if !handle.ping(wait).await {
        return false;
    }
    let read = tokio::task::spawn_blocking(move || store.accounts().is_ok());
    matches!(tokio::time::timeout(wait, read).await, Ok(Ok(true)))
}

/// Run the daemon until SIGTERM or SIGINT.
pub async fn run(config: Config, opts: Options, log: LogHandle) -> Result<()> {
    let mut signals = signal_hook_tokio::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| Error::storage_msg(format!("cannot install signal handlers: {e}")))?;
    let dir = opts.state_dir.clone();
    // The copied-store check runs before any account task exists, so a
    // copy never deletes on the server (store::identity).
    let store = tokio::task::spawn_blocking(move || {
        Store::open(&dir).and_then(|s| s.check_copied().map(|_| s))
    })
    .await
    .map_err(|e| Error::storage_msg(format!("store task failed: {e}")))??;
    // Settle the outbox a stopped daemon left before any task delivers;
    // each account task then delivers its due mail when it starts.
    let store = tokio::task::spawn_blocking(move || {
        crate::send::resume(&store, crate::send::queue::unix_now()).map(|_| store)
    })
    .await
    .map_err(|e| Error::storage_msg(format!("store task failed: {e}")))??;
    let store = Arc::new(store);
    tracing::info!(path = %store.path().display(), installation = store.installation_id(), "store open");

    let tls = TlsContext::new(config.tls.extra_ca_file.as_deref())?;
    let (handle, commands) = Handle::new();
    let office365 = Arc::new(Office365::new(
        &config.oauth.office365,
        &tls,
        &timeouts(&config),
        store.clone(),
    )?);
    let ctx = Arc::new(Ctx::new(
        store.clone(),
        handle.clone(),
        policy(&config, opts.session),
        tls.clone(),
        timeouts(&config),
        office365.clone(),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let rt = Runtime {
        handle: handle.clone(),
        store: store.clone(),
        tls,
        timeouts: timeouts(&config),
        connects: Arc::new(Semaphore::new(config.fetch.max_concurrent_connects)),
        office365,
    };
    let owner = tokio::spawn(scheduler::run(commands, rt, stop_rx, STOP_GRACE));
    let (conn, pump, presence) = serve(ctx.clone(), opts.session, None).await?;
    for a in store.accounts()? {
        handle.reload(&a.id);
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let watchdog = Watchdog::from_env().map(|w| {
        let (store, handle, wait) = (store.clone(), handle.clone(), w.probe_budget());
        tokio::spawn(w.run(
            move || alive(store.clone(), handle.clone(), wait),
            crate::watchdog::ping_systemd,
        ))
    });
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        bus = if opts.session { "session" } else { "system" },
        "postfachd ready"
    );

    let lost = presence.lost();
    tokio::pin!(lost);
    let mut bus_lost = None;
    loop {
        tokio::select! {
            sig = signals.next() => match sig {
                Some(SIGHUP) => reload(&ctx, &opts, &log),
                sig => {
                    tracing::info!(signal = sig, "stopping");
                    break;
                }
            },
            why = &mut lost => {
                tracing::error!(reason = %why, "lost the bus: stopping, to be restarted");
                bus_lost = Some(why);
                break;
            }
        }
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    if let Some(w) = watchdog {
        w.abort();
    }
    let _ = conn.release_name(crate::dbus::BUS_NAME).await;
    let _ = stop_tx.send(true);
    if tokio::time::timeout(STOP_GRACE + Duration::from_secs(1), owner)
        .await
        .is_err()
    {
        tracing::warn!("scheduler did not stop in time");
    }
    pump.abort();
    let _ = pump.await;
    // Unregister every object, so that nothing holds the context any more.
    // The ObjectManager first: removing the accounts then sends no
    // InterfacesRemoved per account.
    let _ = conn
        .object_server()
        .remove::<crate::dbus::objects::ObjectManager, _>(crate::dbus::ROOT_PATH)
        .await;
    let _ = conn
        .object_server()
        .remove::<crate::dbus::manager::Manager, _>(crate::dbus::ROOT_PATH)
        .await;
    let _ = conn
        .object_server()
        .remove::<crate::dbus::mailbox::Mailbox, _>(crate::dbus::ROOT_PATH)
        .await;
    let _ = conn
        .object_server()
        .remove::<crate::dbus::signatures::Signatures, _>(crate::dbus::ROOT_PATH)
        .await;
    for a in store.accounts().unwrap_or_default() {
        let path = crate::dbus::account_path(&a.id);
        let _ = conn
            .object_server()
            .remove::<crate::dbus::account_iface::AccountIface, _>(path.as_str())
            .await;
    }
    drop(conn);
    drop(ctx);
    // A store call still running in a blocking thread holds a reference;
    // give it a moment to finish its transaction, then close the store.
    let mut store = store;
    let mut closed = false;
    for _ in 0..40 {
        match Arc::try_unwrap(store) {
            Ok(s) => {
                drop(s);
                closed = true;
                break;
            }
            Err(s) => {
                store = s;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    if closed {
        tracing::info!("store closed");
    } else {
        tracing::warn!("store still in use at exit; the process exit closes it (commits are durable either way)");
    }
    tracing::info!("stopped");
    match bus_lost {
        // Exit non-zero, so that systemd's Restart=on-failure brings the
        // daemon back onto the bus.
        Some(why) => Err(Error::connection(format!("stopped: {why}"))),
        None => Ok(()),
    }
}

/// SIGHUP: re-read the config file; a bad file is reported and the old
/// config kept. Access rules, the extra CA and the log level take effect at
/// once; fetch limits on the next start.
fn reload(ctx: &Ctx, opts: &Options, log: &LogHandle) {
    let Some(path) = &opts.config_path else {
        tracing::info!("SIGHUP: no config file given; nothing to reload");
        return;
    };
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "SIGHUP: config not reloaded; keeping the old one");
            return;
        }
    };
    let tls = match TlsContext::new(config.tls.extra_ca_file.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: config not reloaded; keeping the old one");
            return;
        }
    };
    if let Ok(mut p) = ctx.policy.write() {
        *p = policy(&config, opts.session);
    }
    if let Ok(mut t) = ctx.tls.write() {
        *t = tls;
    }
    // RUST_LOG still wins; a level removed from the file falls back to info.
    if let Err(e) = log.apply_config(config.log_level.as_deref()) {
        tracing::error!(error = %e, "SIGHUP: log level not changed");
    }
    tracing::info!(file = %path.display(), "config reloaded");
}

#[cfg(test)]
mod tests {
    use super::state_dir_from;
    use std::path::PathBuf;

    #[test]
    fn state_dir_defaults() {
        let home = Some(PathBuf::from("/home/u"));
        assert_eq!(
            state_dir_from(Some("/var/lib/postfach:/x"), false, None, home.clone()),
            Some("/var/lib/postfach".into())
        );
        assert_eq!(
            state_dir_from(None, true, None, home.clone()),
            Some("/var/lib/postfach".into())
        );
        assert_eq!(
            state_dir_from(None, false, Some("/d".into()), home.clone()),
            Some("/d/postfach".into())
        );
        assert_eq!(
            state_dir_from(None, false, Some("".into()), home.clone()),
            Some("/home/u/.local/share/postfach".into())
        );
        assert_eq!(
            state_dir_from(None, false, None, home),
            Some("/home/u/.local/share/postfach".into())
        );
        assert_eq!(state_dir_from(None, false, None, None), None);
    }
}
