//! `MessagesAdded` and `MessagesChanged` for changes a method made itself
//! (a queued mail, a saved draft, a read flag, a deletion). The notice pump
//! (`service`) sends the fetched ones. Opaque ids only (invariant 6).
//!
//! A failed emit is logged, not returned: the change is committed, and a
//! caller told it failed would do it again. The signals are emitted by
//! name on the Mailbox object here rather than through the interface's
//! generated functions, so that the topic files that make these changes
//! need not depend on `mailbox` (which depends on them);
//! tests/dbus_introspection.rs keeps the names and signatures equal to
//! the XML.

use zbus::{Connection, ObjectPath};

use super::{account_path, MAILBOX_IFACE, ROOT_PATH};

/// `MessagesChanged(at ids)`.
pub async fn changed(conn: &Connection, id: u64) {
    let sent = conn
        .emit_signal(
            None::<()>,
            ROOT_PATH,
            MAILBOX_IFACE,
            "MessagesChanged",
            &(vec![id],),
        )
        .await;
    if let Err(e) = sent {
        tracing::debug!(error = %e, "could not emit MessagesChanged");
    }
}

/// `MessagesAdded(o account, at ids)`.
pub async fn added(conn: &Connection, account: &str, id: u64) {
    let path = account_path(account);
    let sent = match ObjectPath::try_from(path.as_str()) {
        Ok(p) => {
            conn.emit_signal(
                None::<()>,
                ROOT_PATH,
                MAILBOX_IFACE,
                "MessagesAdded",
                &(p, vec![id]),
            )
            .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "could not emit MessagesAdded");
    }
}
