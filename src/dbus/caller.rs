//! The caller of a method, as the bus daemon vouches for it.
//!
//! `GetConnectionCredentials` returns the uid and, on dbus-daemon ≥ 1.14,
//! the groups the peer had when it connected (`UnixGroupIDs`); when a bus
//! does not report groups we fall back to the uid's groups from the system
//! database (getgrouplist), which is what the policy file would see too.

use zbus::fdo::DBusProxy;
use zbus::message::Header;
use zbus::names::BusName;
use zbus::Connection;

use crate::access::Caller;
use crate::error::{Error, Result};

/// Look up the credentials of the sender of `header`.
pub async fn caller(conn: &Connection, header: &Header<'_>) -> Result<Caller> {
    let sender = header.sender().ok_or_else(|| {
        Error::AccessDenied("the call has no sender; peer-to-peer calls are not served".into())
    })?;
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
