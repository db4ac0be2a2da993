//! The daemon's presence on the bus: owning the well-known name, and
//! noticing when the name or the whole bus connection is gone.
//!
//! Without its name the daemon serves nobody, while systemd still counts it
//! as running: seen when dbus-daemon dropped it for an oversized reply and
//! the process lived on, nameless, and `Restart=on-failure` never fired.
//! So losing either is fatal: [`Presence::lost`] resolves, and the daemon
//! stops and exits non-zero, for systemd to start it again.
//!
//! The name is requested without `ALLOW_REPLACEMENT` (zbus's default
//! allows it): no other peer that may own the name can take it over, and
//! a second daemon on the same bus is told it is taken.

use futures::StreamExt;
use zbus::fdo::{DBusProxy, NameLostStream, RequestNameFlags};
use zbus::Connection;

use super::BUS_NAME;
use crate::error::{Error, Result};

/// The name owned on `conn`, watched.
pub struct Presence {
    conn: Connection,
    name_lost: NameLostStream,
}

/// Own the well-known name on `conn` (`bus` names the bus in errors).
pub async fn take_name(conn: &Connection, bus: &str) -> Result<Presence> {
    let proxy = DBusProxy::new(conn)
        .await
        .map_err(|e| Error::connection_by(format!("cannot talk to the D-Bus {bus} bus"), e))?;
    // Subscribed before the name is ours, so no loss can go unseen.
    let name_lost = proxy
        .receive_name_lost()
        .await
        .map_err(|e| Error::connection_by(format!("cannot talk to the D-Bus {bus} bus"), e))?;
    match conn
        .request_name_with_flags(BUS_NAME, RequestNameFlags::DO_NOT_QUEUE)
        .await
    {
        Ok(_) => Ok(Presence {
            conn: conn.clone(),
            name_lost,
        }),
        Err(zbus::Error::NameTaken) => Err(Error::Busy(format!(
            "the bus name {BUS_NAME} is already owned on the {bus} bus: is another postfachd running?"
        ))),
        Err(e) => Err(Error::AccessDenied(format!(
            "cannot own {BUS_NAME} on the {bus} bus: {e} (on the system bus the policy file dbus/{BUS_NAME}.conf must be installed)"
        ))),
    }
}

impl Presence {
    /// Resolves when the name or the connection is lost, saying which.
    pub async fn lost(mut self) -> String {
        loop {
            tokio::select! {
                () = self.conn.closed() => {
                    return "the connection to the bus was closed".into();
                }
                signal = self.name_lost.next() => match signal {
                    Some(s) => {
                        let ours = s.args().map(|a| a.name().as_str() == BUS_NAME).unwrap_or(false);
                        if ours {
                            return format!("the bus took the name {BUS_NAME} away");
                        }
                    }
                    // The signal stream ends with the connection.
                    None => {
                        self.conn.closed().await;
                        return "the connection to the bus was closed".into();
                    }
                },
            }
        }
    }
}
