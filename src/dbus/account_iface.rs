//! The Account interface as zbus serves it: the methods and signals of
//! [`AccountObject`], and the properties of [`props::PROPS`] read only by
//! those who may (ARCHITECTURE.md "The D-Bus API" "Reading is checked like calling").
//!
//! zbus answers `Properties.Get/GetAll` by calling the interface's own
//! `get`/`get_all` with the caller's message header, but the getters that
//! `#[interface]` generates cannot refuse a caller: a failing getter is
//! silently left out of `GetAll`. So this type implements zbus's
//! `Interface` trait itself (a documented, if unstable, extension point)
//! and forwards method calls and introspection to the generated one:
//! - admins and frontends read every account, a mapped CRM user the public
//!   ones and its own private ones;
//! - for a mapped user, another user's private account does not exist: the
//!   answer is the `UnknownObject` error zbus gives for a path it does not
//!   serve, word for word;
//! - everyone else gets `org.freedesktop.DBus.Error.AccessDenied` (the
//!   standard interfaces answer with the standard error names, as they do
//!   for an unknown object or property).
//!
//! Without a header zbus reads the properties for `InterfacesAdded`, which
//! goes to every listener: then only the public properties are given.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use zbus::message::{Header, Message};
use zbus::names::{InterfaceName, MemberName};
use zbus::object_server::{DispatchResult, Interface, SignalEmitter};
use zbus::{fdo, BoxDBusError, Connection, ObjectServer, OwnedVariant, Variant};

use super::account::AccountObject;
use super::ctx::Ctx;
use super::props::{self, Prop, View};
use super::registry::Snapshot;
use super::{account_path, ACCOUNT_IFACE};
use crate::redact;

/// An account object as served on the bus.
pub struct AccountIface {
    inner: AccountObject,
    ctx: Arc<Ctx>,
    id: String,
}

/// How much of an account a reader gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sight {
    Full,
    /// What a signal may carry.
    Public,
}

impl AccountIface {
    /// Serve the account `id`; its settings are read from the registry.
    pub fn new(ctx: Arc<Ctx>, id: String) -> AccountIface {
        AccountIface {
            inner: AccountObject::new(ctx.clone(), id.clone()),
            ctx,
            id,
        }
    }

    /// The `UnknownObject` zbus answers for a path it does not serve.
    fn unknown(&self) -> fdo::Error {
        fdo::Error::UnknownObject(format!("Unknown object '{}'", account_path(&self.id)))
    }

    /// What the caller of `header` may read of this account, and its
    /// snapshot.
    async fn sight(
        &self,
        conn: &Connection,
        header: Option<&Header<'_>>,
    ) -> Result<(Sight, Arc<Snapshot>), fdo::Error> {
        let snap = self
            .ctx
            .accounts
            .get(&self.id)
            .ok_or_else(|| self.unknown())?;
        let Some(hdr) = header else {
            return Ok((Sight::Public, snap));
        };
        let reader = async {
            let c = self.ctx.callers.of(conn, hdr).await?;
            self.ctx.with_policy(|p| p.account_reader(&c))
        };
        let reader = reader
            .await
            .map_err(|e| fdo::Error::AccessDenied(redact::cap(&e.to_string())))?;
        if !reader.sees(&snap.account.private_owner) {
            return Err(self.unknown());
        }
        Ok((Sight::Full, snap))
    }

    fn read<T>(&self, snap: &Snapshot, f: impl FnOnce(&View<'_>) -> T) -> T {
        let status = self.ctx.scheduler.status(&self.id);
        f(&View {
            account: &snap.account,
            has_password: snap.has_password,
            status: &status,
        })
    }

    async fn get_one(
        &self,
        prop: &Prop,
        conn: &Connection,
        header: Option<&Header<'_>>,
    ) -> Result<OwnedVariant, fdo::Error> {
        let (sight, snap) = self.sight(conn, header).await?;
        if sight == Sight::Public && prop.signal != props::Signal::Value {
            return Err(fdo::Error::AccessDenied(format!(
                "{} is not public",
                prop.name
            )));
        }
        owned(self.read(&snap, |v| prop.value(v)))
    }
}

fn owned(v: Variant<'static>) -> Result<OwnedVariant, fdo::Error> {
    OwnedVariant::try_from(v).map_err(|e| fdo::Error::Failed(e.to_string()))
}

#[async_trait]
impl Interface for AccountIface {
    fn name() -> InterfaceName<'static> {
        InterfaceName::from_static_str_unchecked(ACCOUNT_IFACE)
    }

    fn spawn_tasks_for_methods(&self) -> bool {
        self.inner.spawn_tasks_for_methods()
    }

    async fn get(
        &self,
        property_name: &str,
        _server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        _emitter: &SignalEmitter<'_>,
    ) -> Option<Result<OwnedVariant, BoxDBusError>> {
        let prop = props::find(property_name)?;
        Some(
            self.get_one(prop, connection, header)
                .await
                .map_err(|e| Box::new(e) as BoxDBusError),
        )
    }

    async fn get_all(
        &self,
        _server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        _emitter: &SignalEmitter<'_>,
    ) -> fdo::Result<HashMap<String, OwnedVariant>> {
        let (sight, snap) = self.sight(connection, header).await?;
        let values = self.read(&snap, |v| props::all(v, sight == Sight::Public));
        values
            .into_iter()
            .map(|(k, v)| Ok((k, owned(v)?)))
            .collect()
    }

    fn set<'call>(
        &'call self,
        property_name: &'call str,
        _value: &'call Variant<'_>,
        _server: &'call ObjectServer,
        _connection: &'call Connection,
        _header: Option<&'call Header<'_>>,
        _emitter: &'call SignalEmitter<'_>,
    ) -> DispatchResult<'call> {
        if props::find(property_name).is_none() {
            return DispatchResult::NotFound;
        }
        DispatchResult::Async(Box::pin(async move {
            Err(Box::new(fdo::Error::PropertyReadOnly(format!(
                "{property_name} is read-only; use Update"
            ))) as BoxDBusError)
        }))
    }

    async fn set_mut(
        &mut self,
        _property_name: &str,
        _value: &Variant<'_>,
        _server: &ObjectServer,
        _connection: &Connection,
        _header: Option<&Header<'_>>,
        _emitter: &SignalEmitter<'_>,
    ) -> Option<Result<(), BoxDBusError>> {
        None
    }

    fn call<'call>(
        &'call self,
        server: &'call ObjectServer,
        connection: &'call Connection,
        msg: &'call Message,
        name: MemberName<'call>,
    ) -> DispatchResult<'call> {
        self.inner.call(server, connection, msg, name)
    }

    fn call_mut<'call>(
        &'call mut self,
        server: &'call ObjectServer,
        connection: &'call Connection,
        msg: &'call Message,
        name: MemberName<'call>,
    ) -> DispatchResult<'call> {
        self.inner.call_mut(server, connection, msg, name)
    }

    /// The generated interface (methods, signals) with the table's
    /// properties before its closing tag.
    fn introspect_to_writer(&self, writer: &mut dyn std::fmt::Write, level: usize) {
        let mut xml = String::new();
        self.inner.introspect_to_writer(&mut xml, level);
        let close = format!("{:level$}</interface>", "");
        let (head, tail) = match xml.rfind(&close) {
            Some(at) => xml.split_at(at),
            None => (xml.as_str(), ""),
        };
        let mut props_xml = String::new();
        // Writing into a String cannot fail.
        let _ = props::introspect(&mut props_xml, level + 2);
        let _ = write!(writer, "{head}{props_xml}{tail}");
    }
}
