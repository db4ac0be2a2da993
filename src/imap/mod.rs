//! IMAP: session, fetch (UIDVALIDITY/UID), idle.
//!
//! - [`session`]: TCP/TLS/STARTTLS, greeting, CAPABILITY, LOGIN, timeouts.
//! - [`fetch`]: INBOX -> store in durable batches -> delete on server.
//! - [`idle`]: wait for new mail with IDLE (RFC 2177); `idle_round` and
//!   `idle_wire` are one IDLE round and its commands.
//! - [`kept`]: the session an account keeps between fetches, and NOOP.
//! - [`partial`]: big mails in pieces into blob files (RFC 3501 §6.4.5).
//! - [`trash`]: move a deleted mail into the Trash folder (RFC 6851, RFC 4315).
//! - [`uidset`]: UID sets, batches and server ids (pure).

pub mod fetch;
pub mod idle;
mod idle_round;
mod idle_wire;
pub mod kept;
pub mod partial;
pub mod session;
mod syncstate;
pub mod trash;
pub mod uidset;
pub mod xoauth2;

pub use idle::{wait_for_change, IdleOutcome};
