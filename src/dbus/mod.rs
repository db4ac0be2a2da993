//! The D-Bus API of ARCHITECTURE.md "The D-Bus API".
//!
//! D-Bus objects hold the store, the config and a channel to the scheduler —
//! never a protocol session (ARCHITECTURE.md "Threads, tasks…"): a method validates, writes the
//! store, and sends an event to the one owner loop that runs the accounts
//! (the system76-scheduler shape). Every method checks its caller's real
//! credentials first ([`caller`]), and so does every read of an account's
//! settings ([`account_iface`], [`objects`]). Signals go to every listener
//! on the bus and carry opaque ids and public values only ([`props`]);
//! every error reply is capped and scrubbed ([`errors`]).

pub mod account;
pub mod account_iface;
pub mod announce;
pub mod caller;
pub mod connect;
pub mod ctx;
mod drafts;
pub mod errors;
pub mod filter;
pub mod folders;
pub mod mailbox;
pub mod mailbox_dict;
pub mod manager;
pub mod objects;
pub mod presence;
pub mod props;
pub mod proxy;
pub mod registry;
pub mod restoring;
pub mod sending;
pub mod service;
pub mod signatures;
pub mod status;
pub mod wire;

/// The well-known bus name.
pub const BUS_NAME: &str = "org.postfach.Postfach1";
/// The root object: ObjectManager, Manager, Mailbox, Signatures.
pub const ROOT_PATH: &str = "/org/postfach/Postfach1";
/// Interface names.
pub const MANAGER_IFACE: &str = "org.postfach.Postfach1.Manager";
pub const ACCOUNT_IFACE: &str = "org.postfach.Postfach1.Account";
pub const MAILBOX_IFACE: &str = "org.postfach.Postfach1.Mailbox";

/// The object path of an account. Account ids are `[a-z0-9]` (the store
/// makes them), so they are valid path elements as they are.
pub fn account_path(id: &str) -> String {
    format!("{ROOT_PATH}/accounts/{id}")
}

/// The account id of an object path, if it is an account path.
pub fn account_id(path: &str) -> Option<&str> {
    path.strip_prefix(ROOT_PATH)?
        .strip_prefix("/accounts/")
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()))
}
