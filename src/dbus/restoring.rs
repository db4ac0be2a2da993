//! `Manager.Restore` end to end (ARCHITECTURE.md "The D-Bus API"): the
//! heavy part (`crate::backup::restore::prepare`) runs on a blocking thread
//! while the account tasks still run; then the tasks are paused
//! (`crate::scheduler::Handle::pause_all`), the store is switched
//! (`crate::store::install`, a short swap of renames), the account objects
//! are replaced by the restored ones, and the tasks start again.
//!
//! The watchdog keeps being answered throughout: the owner loop awaits the
//! paused tasks off its loop, and the store is held back only for the
//! renames of the switch (at most [`SWAP_WAIT`] for calls in flight).

use std::sync::Arc;
use std::time::Duration;

use zbus::object_server::ObjectServer;

use super::account_iface::AccountIface;
use super::ctx::Ctx;
use super::errors::ApiError;
use super::registry::Snapshot;
use super::{account_path, wire};
use crate::backup::restore::Prepared;
use crate::error::Error;
use crate::store::SecretKind;

/// How long the switch waits for store calls in flight (a running backup
/// holds its snapshot): then the restore gives up with Busy, unchanged.
pub const SWAP_WAIT: Duration = Duration::from_secs(5);

/// Restore from `fd` (the caller checked the role and options).
pub async fn restore(
    ctx: &Arc<Ctx>,
    server: &ObjectServer,
    fd: std::os::fd::OwnedFd,
    passphrase: Option<String>,
) -> Result<Prepared, ApiError> {
    let prepared = ctx
        .blocking(move |s| {
            crate::backup::restore::prepare(s, &mut std::fs::File::from(fd), passphrase.as_deref())
        })
        .await?;
    let before = ctx.blocking(|s| s.accounts()).await?;
    ctx.scheduler.pause_all().await?;
    let installed = ctx.blocking(|s| s.install_restored(SWAP_WAIT)).await;
    if let Err(e) = installed {
        // Before the intent file (Busy) nothing changed: the new store
        // goes. After it, the next start completes the switch
        // (`crate::store::install::recover`); never under an open store.
        let _ = ctx
            .blocking(|s| {
                let dir = s.state_dir();
                if !dir.join(crate::store::install::INTENT_FILE).exists() {
                    let _ = std::fs::remove_dir_all(dir.join(crate::store::install::NEW_DIR));
                }
                Ok(())
            })
            .await;
        let now = ctx.blocking(|s| s.accounts()).await.unwrap_or(before);
        ctx.scheduler
            .resume_all(now.into_iter().map(|a| a.id).collect());
        return Err(e);
    }
    crate::store::log_restored_reset(&prepared.reset);
    for old in &before {
        ctx.scheduler.remove_quietly(&old.id);
        ctx.accounts.remove(&old.id);
        ctx.forget_status(&old.id);
        let path = account_path(&old.id);
        if let Err(e) = server.remove::<AccountIface, _>(path.as_str()).await {
            tracing::warn!(error = %e, path = %path, "could not unpublish a replaced account");
        }
    }
    let mut ids = Vec::new();
    let published = publish(ctx, server, &mut ids).await;
    // Whatever was published runs again, also when publishing failed.
    ctx.scheduler.resume_all(ids);
    published.map(|()| prepared)
}

/// The restored accounts as objects; their ids into `ids`.
async fn publish(
    ctx: &Arc<Ctx>,
    server: &ObjectServer,
    ids: &mut Vec<String>,
) -> Result<(), ApiError> {
    let after = ctx
        .blocking(|s| {
            let mut out = Vec::new();
            for a in s.accounts()? {
                let has = s.has_secret(&a.id, SecretKind::Password)?;
                out.push((a, has));
            }
            Ok(out)
        })
        .await?;
    for (account, has_password) in after {
        let id = account.id.clone();
        ctx.accounts.put(Snapshot {
            account,
            has_password,
        });
        let path = account_path(&id);
        server
            .at(path.as_str(), AccountIface::new(ctx.clone(), id.clone()))
            .await
            .map_err(ApiError::ZBus)?;
        ids.push(id);
    }
    Ok(())
}

/// The `a{sv}` report of DESIGN.md §3.
pub fn report(p: &Prepared) -> wire::Dict {
    let mut d = wire::Dict::new();
    d.insert("accounts".into(), p.accounts.clone().into());
    d.insert("reset".into(), p.reset.accounts.clone().into());
    d.insert("held".into(), (p.reset.held as u64).into());
    d.insert("messages".into(), p.messages.into());
    d.insert("secrets".into(), p.secrets.into());
    d
}

/// The options Backup and Restore know: `passphrase s`.
pub fn check_options(
    options: &std::collections::HashMap<String, zbus::OwnedVariant>,
) -> Result<Option<String>, ApiError> {
    let mut passphrase = None;
    for (key, value) in options {
        match key.as_str() {
            "passphrase" => {
                let p = String::try_from(value.try_clone().map_err(ApiError::ZBus)?)
                    .map_err(|_| Error::invalid("passphrase", "must be a string"))?;
                passphrase = Some(p);
            }
            _ => {
                return Err(Error::invalid(
                    crate::redact::cap(key),
                    "unknown option; known: passphrase",
                )
                .into())
            }
        }
    }
    Ok(passphrase)
}
