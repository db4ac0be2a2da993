//! The caller of a method, as the bus daemon vouches for it.
//!
//! `GetConnectionCredentials` returns the uid and, on dbus-daemon ≥ 1.14,
//! the groups the peer had when it connected (`UnixGroupIDs`); when a bus
//! does not report groups we fall back to the uid's groups from the system
//! database (getgrouplist), which is what the policy file would see too.
//!
//! [`Callers`] remembers the answer per connection. A unique bus name
//! (`:1.42`) names one connection for the bus's lifetime and is never
//! reused (D-Bus specification, "Unique Connection Name"), and the
//! credentials the bus reports are those the peer had when it connected,
//! so they cannot change under the name: asking again on every call only
//! cost a round trip through the bus daemon (a FetchNow round over 1,000
//! accounts made 1,000 of them; `scripts/bench --only poll-imap-tls`).
//! Access *rules* are still applied on every call, so a SIGHUP reload
//! takes effect at once. When the uid's groups come from the system
//! database (older buses), a group change reaches a frontend when it
//! reconnects, as it would with the bus's own group list.

use std::collections::HashMap;
use std::sync::Mutex;

use zbus::fdo::DBusProxy;
use zbus::message::Header;
use zbus::names::{BusName, UniqueName};
use zbus::Connection;

use crate::access::Caller;
use crate::error::{Error, Result};

/// Most connections remembered; past this the memory starts empty again
/// (a miss only costs the lookup), so a client that reconnects in a loop
/// cannot grow it.
const MAX_CALLERS: usize = 1024;

/// The credentials of the connections that called, by unique name; see
/// the module docs.
#[derive(Debug, Default)]
pub struct Callers {
    known: Mutex<HashMap<String, Caller>>,
}

impl Callers {
    /// The sender of `header`, asked from the bus on its first call.
    pub async fn of(&self, conn: &Connection, header: &Header<'_>) -> Result<Caller> {
        let sender = header.sender().ok_or_else(|| {
            Error::AccessDenied("the call has no sender; peer-to-peer calls are not served".into())
        })?;
        if let Some(c) = self.lock().get(sender.as_str()) {
            return Ok(c.clone());
        }
        let c = lookup(conn, sender).await?;
        let mut known = self.lock();
        if known.len() >= MAX_CALLERS {
            known.clear();
        }
        known.insert(sender.to_string(), c.clone());
        Ok(c)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Caller>> {
        // The map holds no invariant a panic could break half-way.
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Ask the bus for the credentials of `sender`.
async fn lookup(conn: &Connection, sender: &UniqueName<'_>) -> Result<Caller> {
    // No property cache: only one method is called on this proxy.
    let proxy = DBusProxy::builder(conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(|e| Error::AccessDenied(format!("cannot ask the bus who is calling: {e}")))?;
    let creds = proxy
        .get_connection_credentials(BusName::Unique(sender.to_owned()))
        .await
        .map_err(|e| Error::AccessDenied(format!("cannot ask the bus who is calling: {e}")))?;
    let uid = creds
        .unix_user_id()
        .ok_or_else(|| Error::AccessDenied("the bus does not report the caller's uid".into()))?;
    let gids = match creds.unix_group_ids() {
        Some(g) => g.clone(),
        None => groups_of(uid),
    };
    Ok(Caller { uid, gids })
}

/// The uid's primary and supplementary groups from the system database.
fn groups_of(uid: u32) -> Vec<u32> {
    use nix::unistd::{getgrouplist, Uid, User};
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return Vec::new();
    };
    let Ok(name) = std::ffi::CString::new(user.name.as_bytes()) else {
        return vec![user.gid.as_raw()];
    };
    match getgrouplist(&name, user.gid) {
        Ok(groups) => groups.into_iter().map(|g| g.as_raw()).collect(),
        Err(_) => vec![user.gid.as_raw()],
    }
}
