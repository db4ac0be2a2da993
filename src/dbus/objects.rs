//! `org.freedesktop.DBus.ObjectManager` at the root object: the accounts a
//! caller may see, and nothing else.
//!
//! zbus's built-in ObjectManager answers everyone with every property of
//! every object; with 10,000 accounts one reply was 7 MB and 16 parallel
//! calls from a user without any role took the daemon to 1.4 GB. This one
//! - checks the caller first, as the account properties do
//!   ([`super::account_iface`]): no role, `AccessDenied` before any work;
//!   a mapped CRM user gets the public accounts and its own private ones;
//! - writes the reply straight from the published snapshots
//!   ([`ManagedObjects`] serializes itself), so a call costs the reply's
//!   bytes and not a map of owned values several times their size;
//! - builds at most [`AT_ONCE`] replies at a time; further calls wait.
//!
//! zbus still emits `InterfacesAdded`/`InterfacesRemoved` from here when
//! an account is published or removed (it recognizes the interface by its
//! name), with the public properties only.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{fdo, interface, Connection, ObjectPath, OwnedObjectPath, OwnedVariant, Type, Variant};

use super::ctx::Ctx;
use super::props::{self, View};
use super::registry::Snapshot;
use super::{account_path, ACCOUNT_IFACE};
use crate::redact;
use crate::scheduler::Status;

/// Most replies built at once. Each holds one serialized reply (about
/// 700 bytes per account) until it is written to the bus.
pub const AT_ONCE: usize = 2;

pub struct ObjectManager {
    ctx: Arc<Ctx>,
    building: Arc<Semaphore>,
}

impl ObjectManager {
    pub fn new(ctx: Arc<Ctx>) -> ObjectManager {
        ObjectManager {
            ctx,
            building: Arc::new(Semaphore::new(AT_ONCE)),
        }
    }
}

#[interface(name = "org.freedesktop.DBus.ObjectManager")]
impl ObjectManager {
    /// The accounts the caller may see, with all their properties.
    async fn get_managed_objects(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<ManagedObjects, fdo::Error> {
        let reader = async {
            let c = self.ctx.callers.of(conn, &hdr).await?;
            self.ctx.with_policy(|p| p.account_reader(&c))
        };
        let reader = reader
            .await
            .map_err(|e| fdo::Error::AccessDenied(redact::cap(&e.to_string())))?;
        let permit = self
            .building
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| fdo::Error::Failed("the daemon is stopping".into()))?;
        let accounts = self
            .ctx
            .accounts
            .visible(&reader)
            .into_iter()
            .map(|snap| {
                let status = self.ctx.scheduler.status(&snap.account.id);
                (snap, status)
            })
            .collect();
        Ok(ManagedObjects {
            accounts,
            _permit: permit,
        })
    }

    /// An object was published (sent by zbus; public properties only).
    #[zbus(signal)]
    async fn interfaces_added(
        emitter: &SignalEmitter<'_>,
        object_path: ObjectPath<'_>,
        interfaces_and_properties: HashMap<&str, HashMap<&str, Variant<'_>>>,
    ) -> zbus::Result<()>;

    /// An object was removed (sent by zbus).
    #[zbus(signal)]
    async fn interfaces_removed(
        emitter: &SignalEmitter<'_>,
        object_path: ObjectPath<'_>,
        interfaces: Cow<'_, [&str]>,
    ) -> zbus::Result<()>;
}

/// A `GetManagedObjects` reply (`a{oa{sa{sv}}}`), serialized from the
/// snapshots as it is written. Holds its build permit until then.
pub struct ManagedObjects {
    accounts: Vec<(Arc<Snapshot>, Status)>,
    _permit: OwnedSemaphorePermit,
}

impl Type for ManagedObjects {
    const SIGNATURE: &'static zbus::Signature = <HashMap<
        OwnedObjectPath,
        HashMap<String, HashMap<String, OwnedVariant>>,
    > as Type>::SIGNATURE;
}

impl Serialize for ManagedObjects {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.accounts.len()))?;
        for (snap, status) in &self.accounts {
            let path = account_path(&snap.account.id);
            let path = ObjectPath::try_from(path.as_str()).map_err(serde::ser::Error::custom)?;
            map.serialize_entry(&path, &Interfaces(snap, status))?;
        }
        map.end()
    }
}

/// One object's interfaces: the Account interface and its properties.
struct Interfaces<'a>(&'a Snapshot, &'a Status);

impl Serialize for Interfaces<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(ACCOUNT_IFACE, &Properties(self.0, self.1))?;
        map.end()
    }
}

/// Every property of one account, each value made as it is written.
struct Properties<'a>(&'a Snapshot, &'a Status);

impl Serialize for Properties<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let view = View {
            account: &self.0.account,
            has_password: self.0.has_password,
            status: self.1,
        };
        let mut map = serializer.serialize_map(Some(props::PROPS.len()))?;
        for p in props::PROPS {
            map.serialize_entry(p.name, &p.value(&view))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{Account, SettingValue};

    #[tokio::test]
    async fn the_reply_is_what_a_client_reads() {
        let s = |k: &str, v: &str| (k.to_string(), SettingValue::Str(v.into()));
        let (account, _) = Account::create(
            "a7".into(),
            &[
                s("kind", "imap"),
                s("host", "imap.example.test"),
                s("address", "info@example.test"),
            ],
        )
        .unwrap();
        let snap = Arc::new(Snapshot {
            account,
            has_password: true,
        });
        let permit = Arc::new(Semaphore::new(1)).acquire_owned().await.unwrap();
        let reply = ManagedObjects {
            accounts: vec![(snap, Status::default())],
            _permit: permit,
        };
        let ctxt = zbus::wire::serialized::Context::new(zbus::wire::LE, 0);
        let data = zbus::wire::to_bytes(ctxt, &reply).unwrap();
        type Read = HashMap<OwnedObjectPath, HashMap<String, HashMap<String, OwnedVariant>>>;
        let (read, _): (Read, _) = data.deserialize().unwrap();
        let path = OwnedObjectPath::try_from("/org/postfach/Postfach1/accounts/a7").unwrap();
        let props = &read[&path]["org.postfach.Postfach1.Account"];
        assert_eq!(props.len(), props::PROPS.len());
        assert_eq!(
            <&str>::try_from(&props["Address"]).unwrap(),
            "info@example.test"
        );
        assert!(bool::try_from(&props["HasPassword"]).unwrap());
    }
}
