//! Serving the API: the shared context of all objects, the bus connection,
//! the well-known name, and the pump that turns scheduler notices into
//! signals.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use zbus::fdo::Properties;
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::{connection, Connection, ObjectPath};

use super::account::AccountObject;
use super::account_iface::AccountIface;
use super::caller::Callers;
use super::errors::{ApiError, ApiResult};
use super::mailbox::Mailbox;
use super::manager::Manager;
use super::objects::ObjectManager;
use super::presence::{self, Presence};
use super::props::{self, View};
use super::registry::{Registry, Snapshot};
use super::{account_path, ACCOUNT_IFACE, ROOT_PATH};
use crate::access::{Caller, Policy, Role};
use crate::error::{Error, Result};
use crate::net::{Timeouts, TlsContext};
use crate::oauth::Office365;
use crate::scheduler::{Handle, Notice, Status};
use crate::store::Store;

/// What every object shares.
pub struct Ctx {
    pub store: Arc<Store>,
    pub scheduler: Handle,
    /// Replaced on SIGHUP.
    pub policy: RwLock<Policy>,
    pub tls: RwLock<TlsContext>,
    pub timeouts: Timeouts,
    /// Office 365 sign-in, for Connect (see dbus::connect).
    pub office365: Arc<Office365>,
    /// Who called, per bus connection (see dbus::caller).
    pub callers: Callers,
    /// The published accounts' settings (see dbus::registry).
    pub accounts: Registry,
    /// The status last announced per account, so that a status signal
    /// names exactly the properties that changed.
    announced: Mutex<HashMap<String, Status>>,
}

impl Ctx {
    pub fn new(
        store: Arc<Store>,
        scheduler: Handle,
        policy: Policy,
        tls: TlsContext,
        timeouts: Timeouts,
        office365: Arc<Office365>,
    ) -> Ctx {
        Ctx {
            store,
            scheduler,
            policy: RwLock::new(policy),
            tls: RwLock::new(tls),
            timeouts,
            office365,
            callers: Callers::default(),
            accounts: Registry::default(),
            announced: Mutex::default(),
        }
    }

    /// Record `now` as announced; returns what was announced before.
    fn swap_announced(&self, id: &str, now: Status) -> Status {
        let mut a = self.announced.lock().unwrap_or_else(|p| p.into_inner());
        a.insert(id.to_string(), now).unwrap_or_default()
    }

    /// A deleted account's announced status goes with it.
    pub fn forget_status(&self, id: &str) {
        let mut a = self.announced.lock().unwrap_or_else(|p| p.into_inner());
        a.remove(id);
    }

    /// The caller and its role; AccessDenied for everyone without one.
    pub async fn role(
        &self,
        conn: &Connection,
        hdr: &zbus::message::Header<'_>,
    ) -> ApiResult<(Caller, Role)> {
        let c = self.callers.of(conn, hdr).await?;
        let role = self.with_policy(|p| p.require_role(&c))?;
        Ok((c, role))
    }

    /// Only admins pass.
    pub async fn admin(
        &self,
        conn: &Connection,
        hdr: &zbus::message::Header<'_>,
    ) -> ApiResult<Caller> {
        let c = self.callers.of(conn, hdr).await?;
        self.with_policy(|p| p.require_admin(&c))?;
        Ok(c)
    }

    /// Admins and trusted frontends pass (e.g. FetchNow, TestConnection).
    pub async fn operator(
        &self,
        conn: &Connection,
        hdr: &zbus::message::Header<'_>,
    ) -> ApiResult<Caller> {
        let (c, role) = self.role(conn, hdr).await?;
        match role {
            Role::Admin | Role::Frontend => Ok(c),
            Role::User(_) => Err(Error::AccessDenied(format!(
                "uid {} may not do this: only admins and CRM frontends may",
                c.uid
            ))
            .into()),
        }
    }

    /// Decide with the current access rules, without copying them (every
    /// method call asks).
    pub fn with_policy<T>(&self, f: impl FnOnce(&Policy) -> Result<T>) -> Result<T> {
        let p = self
            .policy
            .read()
            .map_err(|_| Error::storage_msg("access policy lock poisoned".into()))?;
        f(&p)
    }

    pub fn tls(&self) -> Result<TlsContext> {
        self.tls
            .read()
            .map(|t| t.clone())
            .map_err(|_| Error::storage_msg("TLS context lock poisoned".into()))
    }

    /// Run a blocking store operation off the async threads.
    pub async fn blocking<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ApiError::from(Error::storage_msg(format!("store task failed: {e}"))))?
            .map_err(ApiError::from)
    }
}

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
    }
}
