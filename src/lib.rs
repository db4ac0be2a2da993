//! postfach: the mail engine of a CRM.
//!
//! A daemon (`postfachd`) fetches mail for every configured account into an
//! embedded store and serves CRM frontends over D-Bus; `postfachctl` is the
//! admin CLI over the same API. docs/ARCHITECTURE.md is the map; the XML in dbus/ is the API contract.
//!
//! Data paths:
//! - fetch: [`scheduler`] -> [`imap`] | [`pop3`] session -> [`store`] (one
//!   transaction per batch) -> server delete -> `MessagesAdded`
//! - query: `dbus` Mailbox -> [`access`] -> [`store`] index -> page
//! - configure: `dbus` Manager/Account -> [`account`] validation -> [`store`]
//!   -> scheduler event -> that account's task restarts
//! - send: SendMessage -> [`send`] (checks, signature, compose) -> outbox in
//!   the [`store`] -> the account's task delivers over SMTP -> `sent`
//!
//! Protocol modules never import [`dbus`]; D-Bus objects hold the store and a
//! channel to the scheduler, never a protocol session.

pub mod access;
pub mod account;
pub mod backup;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod dbus;
pub mod error;
pub mod fetch;
pub mod hex;
pub mod imap;
pub mod logging;
pub mod mime;
pub mod net;
pub mod oauth;
pub mod pipeline;
pub mod pop3;
pub mod probe;
pub mod redact;
pub mod scheduler;
pub mod send;
pub mod signature;
pub mod store;
pub mod watchdog;
