//! Serving the API: the shared context of all objects, the bus connection,
//! the well-known name, and the pump that turns scheduler notices into
//! signals.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use zbus::fdo::Properties;
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::{connection, Connection, ObjectPath, Variant};

use super::account::AccountObject;
use super::caller::Callers;
use super::errors::{ApiError, ApiResult};
use super::mailbox::Mailbox;
use super::manager::Manager;
use super::{account_path, ACCOUNT_IFACE, BUS_NAME, ROOT_PATH};
use crate::access::{Caller, Policy, Role};
use crate::error::{Error, Result};
use crate::net::{Timeouts, TlsContext};
use crate::scheduler::{Handle, Notice};
use crate::store::Store;

/// What every object shares.
pub struct Ctx {
    pub store: Arc<Store>,
    pub scheduler: Handle,
    /// Replaced on SIGHUP.
    pub policy: RwLock<Policy>,
    pub tls: RwLock<TlsContext>,
    pub timeouts: Timeouts,
    /// Who called, per bus connection (see dbus::caller).
    pub callers: Callers,
}

impl Ctx {
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
pub async fn serve(
    ctx: Arc<Ctx>,
    session: bool,
    address: Option<&str>,
) -> Result<(Connection, tokio::task::JoinHandle<()>)> {
    let builder = match (address, session) {
        (Some(a), _) => connection::Builder::address(a),
        (None, true) => connection::Builder::session(),
        (None, false) => connection::Builder::system(),
    };
    let bus = if session { "session" } else { "system" };
    let mut builder = builder
        .serve_at(ROOT_PATH, zbus::fdo::ObjectManager)
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
        builder = builder.serve_at(path, AccountObject::new(ctx.clone(), a, has_password));
    }
    let conn = builder
        .build()
        .await
        .map_err(|e| Error::connection(format!("cannot connect to the D-Bus {bus} bus: {e}")))?;
    match conn.request_name(BUS_NAME).await {
        Ok(()) => {}
        Err(zbus::Error::NameTaken) => {
            return Err(Error::Busy(format!(
                "the bus name {BUS_NAME} is already owned on the {bus} bus: is another postfachd running?"
            )))
        }
        Err(e) => {
            return Err(Error::AccessDenied(format!(
                "cannot own {BUS_NAME} on the {bus} bus: {e} (on the system bus the policy file dbus/{BUS_NAME}.conf must be installed)"
            )))
        }
    }
    let pump = tokio::spawn(pump(conn.clone(), ctx.clone()));
    Ok((conn, pump))
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

async fn announce(conn: &Connection, ctx: &Ctx, notice: Notice) -> zbus::Result<()> {
    match notice {
        Notice::Status(id) => {
            let path = account_path(&id);
            let emitter = SignalEmitter::new(conn, ObjectPath::try_from(path.as_str())?)?;
            let s = ctx.scheduler.status(&id);
            let mut changed: HashMap<&str, Variant<'_>> = HashMap::new();
            changed.insert("State", s.state.as_str().into());
            changed.insert("LastError", s.last_error.clone().into());
            changed.insert("LastFetchAt", s.last_fetch_at.into());
            changed.insert("Progress", Variant::from((s.progress.0, s.progress.1)));
            Properties::properties_changed(
                &emitter,
                InterfaceName::from_static_str_unchecked(ACCOUNT_IFACE),
                changed,
                std::borrow::Cow::Borrowed(&[]),
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
            AccountObject::fetch_finished(&emitter, n, &error).await?;
            if !new_ids.is_empty() {
                let root = SignalEmitter::new(conn, ROOT_PATH)?;
                Mailbox::messages_added(&root, ObjectPath::try_from(path.as_str())?, &new_ids)
                    .await?;
            }
            Ok(())
        }
    }
}
