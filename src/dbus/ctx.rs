//! The context every D-Bus object shares: the store, the scheduler's
//! handle, the access policy, TLS and timeouts, the Office 365 sign-in,
//! who called, and the published accounts. Objects hold an `Arc<Ctx>`;
//! `service` builds it and serves them. Its own file so that every object
//! and topic file depends on it, and it on none of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use zbus::Connection;

use super::caller::Callers;
use super::errors::{ApiError, ApiResult};
use super::registry::Registry;
use crate::access::{Caller, Policy, Role};
use crate::error::{Error, Result};
use crate::net::{Timeouts, TlsContext};
use crate::oauth::Office365;
use crate::scheduler::{Handle, Status};
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
    pub(super) fn swap_announced(&self, id: &str, now: Status) -> Status {
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
