//! Client-side proxies of the API, for `postfachctl` and the tests.
//!
//! Kept beside the server side so the two cannot drift: a test compares the
//! introspection XML in `dbus/` with the live daemon.

use std::collections::HashMap;

use zbus::{proxy, OwnedFd, OwnedObjectPath, OwnedVariant, Variant};

/// A step report or message dict as it arrives.
pub type Dict = HashMap<String, OwnedVariant>;

#[proxy(
    interface = "org.postfach.Postfach1.Manager",
    default_service = "org.postfach.Postfach1",
    default_path = "/org/postfach/Postfach1"
)]
pub trait Manager {
    fn create_account(&self, settings: HashMap<&str, Variant<'_>>)
        -> zbus::Result<OwnedObjectPath>;
    fn test_settings(&self, settings: HashMap<&str, Variant<'_>>) -> zbus::Result<Vec<Dict>>;
    fn backup(&self, fd: zbus::Fd<'_>, options: HashMap<&str, Variant<'_>>) -> zbus::Result<()>;
    fn restore(&self, fd: zbus::Fd<'_>, options: HashMap<&str, Variant<'_>>) -> zbus::Result<Dict>;
    fn status(&self) -> zbus::Result<Dict>;
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn installation_id(&self) -> zbus::Result<String>;
}

#[proxy(
    interface = "org.postfach.Postfach1.Account",
    default_service = "org.postfach.Postfach1"
)]
pub trait Account {
    fn update(&self, changes: HashMap<&str, Variant<'_>>) -> zbus::Result<()>;
    fn set_password(&self, password: &str) -> zbus::Result<()>;
    fn set_smtp_password(&self, password: &str) -> zbus::Result<()>;
    fn delete(&self) -> zbus::Result<()>;
    fn test_connection(&self) -> zbus::Result<Vec<Dict>>;
    fn fetch_now(&self) -> zbus::Result<u32>;
    fn connect(&self, flow: &str) -> zbus::Result<Dict>;
    fn complete_connect(&self, redirect_url: &str) -> zbus::Result<()>;
    fn sync_folders(&self) -> zbus::Result<Vec<String>>;
    #[zbus(signal)]
    fn fetch_finished(&self, new_messages: u32, error: String) -> zbus::Result<()>;

    #[zbus(property)]
    fn id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn tenant(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn name(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn address(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn kind(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn host(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn port(&self) -> zbus::Result<u16>;
    #[zbus(property)]
    fn encryption(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn username(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn private_owner(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn delete_on_server(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn poll_interval(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn smtp_host(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn smtp_port(&self) -> zbus::Result<u16>;
    #[zbus(property)]
    fn smtp_encryption(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn smtp_login(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn smtp_username(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn drafts_folder(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn trash_folder(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sent_folder(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn save_sent_copy(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn folders(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property)]
    fn folders_synced_at(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn last_error(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn last_fetch_at(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn progress(&self) -> zbus::Result<(u32, u32)>;
    #[zbus(property)]
    fn has_password(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn authorized(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn restore_reset(&self) -> zbus::Result<bool>;
}

#[proxy(
    interface = "org.postfach.Postfach1.Mailbox",
    default_service = "org.postfach.Postfach1",
    default_path = "/org/postfach/Postfach1"
)]
pub trait Mailbox {
    fn list_messages(
        &self,
        user: &str,
        filter: HashMap<&str, Variant<'_>>,
        offset: u32,
        limit: u32,
    ) -> zbus::Result<(Vec<Dict>, u32)>;
    fn get_message(&self, user: &str, id: u64) -> zbus::Result<Dict>;
    fn get_raw(&self, user: &str, id: u64) -> zbus::Result<OwnedFd>;
    fn assign_to_contact(&self, user: &str, id: u64, contact: &str) -> zbus::Result<()>;
    fn unassign(&self, user: &str, id: u64) -> zbus::Result<()>;
    fn set_read(&self, user: &str, id: u64, read: bool) -> zbus::Result<()>;
    fn delete_message(&self, user: &str, id: u64) -> zbus::Result<()>;
    fn send_message(
        &self,
        user: &str,
        account: &zbus::ObjectPath<'_>,
        message: HashMap<&str, Variant<'_>>,
    ) -> zbus::Result<u64>;
    fn save_draft(
        &self,
        user: &str,
        account: &zbus::ObjectPath<'_>,
        message: HashMap<&str, Variant<'_>>,
    ) -> zbus::Result<u64>;
    #[zbus(signal)]
    fn messages_added(&self, account: OwnedObjectPath, ids: Vec<u64>) -> zbus::Result<()>;
    #[zbus(signal)]
    fn messages_changed(&self, ids: Vec<u64>) -> zbus::Result<()>;
}

/// Connect to the system bus, or the session bus when `session` is set
/// (`DBUS_SESSION_BUS_ADDRESS` then names the bus, e.g. the tests' private one).
pub async fn connect(session: bool) -> zbus::Result<zbus::Connection> {
    if session {
        zbus::Connection::session().await
    } else {
        zbus::Connection::system().await
    }
}

#[proxy(
    interface = "org.postfach.Postfach1.Signatures",
    default_service = "org.postfach.Postfach1",
    default_path = "/org/postfach/Postfach1"
)]
pub trait Signatures {
    fn set_signature(&self, tenant: &str, user: &str, text: &str, html: &str) -> zbus::Result<()>;
    fn get_signature(&self, tenant: &str, user: &str) -> zbus::Result<(String, String)>;
    fn remove_signature(&self, tenant: &str, user: &str) -> zbus::Result<()>;
    fn set_employee(
        &self,
        tenant: &str,
        user: &str,
        fields: HashMap<&str, Variant<'_>>,
        images: &[(&str, &[u8])],
    ) -> zbus::Result<()>;
    fn remove_employee(&self, tenant: &str, user: &str) -> zbus::Result<()>;
    fn placeholders(&self) -> zbus::Result<Vec<String>>;
    fn preview_signature(&self, tenant: &str, user: &str)
        -> zbus::Result<(String, String, String)>;
}
