//! Serving the API: the bus connection, every object (sharing one
//! [`Ctx`], `super::ctx`), the well-known name, and the pump that turns
//! scheduler notices into signals.

use std::sync::Arc;

use zbus::fdo::Properties;
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::{connection, Connection, ObjectPath};

use super::account::AccountObject;
use super::account_iface::AccountIface;
pub use super::ctx::Ctx;
use super::mailbox::Mailbox;
use super::manager::Manager;
use super::objects::ObjectManager;
use super::presence::{self, Presence};
use super::props::{self, View};
use super::registry::Snapshot;
use super::{account_path, ACCOUNT_IFACE, ROOT_PATH};
use crate::error::{Error, Result};
use crate::scheduler::Notice;

/// Connect to the bus, serve every object, then take the well-known name
/// (after the objects exist, so no call arrives at an empty server). The
/// returned task turns scheduler notices into signals; abort it on stop.
/// The [`Presence`] resolves when the name or the bus is lost.
pub async fn serve(
    ctx: Arc<Ctx>,
    session: bool,
    address: Option<&str>,
) -> Result<(Connection, tokio::task::JoinHandle<()>, Presence)> {
    let builder = match (address, session) {
        (Some(a), _) => connection::Builder::address(a),
        (None, true) => connection::Builder::session(),
        (None, false) => connection::Builder::system(),
    };
    let bus = if session { "session" } else { "system" };
    let mut builder = builder
        .serve_at(ROOT_PATH, ObjectManager::new(ctx.clone()))
        .serve_at(ROOT_PATH, Manager::new(ctx.clone()))
        .serve_at(ROOT_PATH, Mailbox::new(ctx.clone()))
        .serve_at(ROOT_PATH, super::signatures::Signatures::new(ctx.clone()));
    let store = ctx.store.clone();
    let accounts = tokio::task::spawn_blocking(move || store.accounts())
        .await
        .map_err(|e| Error::storage_msg(format!("store task failed: {e}")))??;
    for a in accounts {
        let has_password = ctx
            .store
            .has_secret(&a.id, crate::store::SecretKind::Password)?;
        let path = account_path(&a.id);
        let id = a.id.clone();
        ctx.accounts.put(Snapshot {
            account: a,
            has_password,
        });
        builder = builder.serve_at(path, AccountIface::new(ctx.clone(), id));
    }
    let conn = builder
        .build()
        .await
        .map_err(|e| Error::connection(format!("cannot connect to the D-Bus {bus} bus: {e}")))?;
    let presence = presence::take_name(&conn, bus).await?;
    let pump = tokio::spawn(pump(conn.clone(), ctx.clone()));
    Ok((conn, pump, presence))
}

/// Scheduler notices -> PropertiesChanged, FetchFinished, MessagesAdded,
/// in the order the tasks sent them; none is ever dropped (see
/// scheduler::notice for why that stays bounded). Signals carry opaque ids
/// only (invariant 6): anyone allowed to listen on the bus sees them.
/// A removal notice unpublishes the account's object (and zbus sends
/// `InterfacesRemoved`).
async fn pump(conn: Connection, ctx: Arc<Ctx>) {
    let Some(mut notices) = ctx.scheduler.subscribe() else {
        return;
    };
    while let Some(notice) = notices.next().await {
        if let Err(e) = announce(&conn, &ctx, notice).await {
            tracing::debug!(error = %e, "could not emit a signal");
        }
    }
}

/// One notice as signals: a status change as `PropertiesChanged` of the
/// properties that changed since the last one (the table's rule in
/// [`props`]: public values, private names), a finished fetch as
/// `FetchFinished` (its error as the error's kind) and `MessagesAdded`.
async fn announce(conn: &Connection, ctx: &Ctx, notice: Notice) -> zbus::Result<()> {
    match notice {
        Notice::Status(id) => {
            // An account deleted meanwhile has nothing left to announce.
            let Some(snap) = ctx.accounts.get(&id) else {
                return Ok(());
            };
            let now = ctx.scheduler.status(&id);
            let before = ctx.swap_announced(&id, now.clone());
            let view = |status| View {
                account: &snap.account,
                has_password: snap.has_password,
                status,
            };
            let changes = props::status_changes(&view(&before), &view(&now));
            if changes.is_empty() {
                return Ok(());
            }
            let path = account_path(&id);
            let emitter = SignalEmitter::new(conn, ObjectPath::try_from(path.as_str())?)?;
            Properties::properties_changed(
                &emitter,
                InterfaceName::from_static_str_unchecked(ACCOUNT_IFACE),
                changes.values,
                std::borrow::Cow::Borrowed(&changes.invalidated),
            )
            .await
        }
        Notice::FetchFinished {
            account,
            new_ids,
            error,
        } => {
            let path = account_path(&account);
            let emitter = SignalEmitter::new(conn, ObjectPath::try_from(path.as_str())?)?;
            let n = u32::try_from(new_ids.len()).unwrap_or(u32::MAX);
            AccountObject::fetch_finished(&emitter, n, &crate::redact::cap(&error)).await?;
            if !new_ids.is_empty() {
                let root = SignalEmitter::new(conn, ROOT_PATH)?;
                Mailbox::messages_added(&root, ObjectPath::try_from(path.as_str())?, &new_ids)
                    .await?;
            }
            Ok(())
        }
        Notice::MessagesChanged(ids) => {
            let root = SignalEmitter::new(conn, ROOT_PATH)?;
            Mailbox::messages_changed(&root, &ids).await
        }
        Notice::Removed(id) => {
            let path = account_path(&id);
            let removed = conn
                .object_server()
                .remove::<AccountIface, _>(path.as_str())
                .await;
            if let Err(e) = removed {
                tracing::warn!(error = %e, path = %path, "could not unpublish a deleted account");
            }
            Ok(())
        }
    }
}
