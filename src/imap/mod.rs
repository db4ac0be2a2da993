//! IMAP: one [`Connection`] per account and everything done on it.
//!
//! - [`connection`]: the connection an account task keeps — session,
//!   capabilities, selected mailbox, what is known about INBOX.
//! - [`fetch`]: INBOX -> store in durable batches -> delete on server.
//! - [`idle`]: wait for new mail with IDLE (RFC 2177), answering fetch
//!   requests on the idling connection; `idle_wire` is IDLE on the wire.
//! - [`folders`]: move mail into a folder (the Trash move, RFC 6851,
//!   RFC 4315), APPEND (with APPENDUID), LIST (RFC 6154).
//! - [`drafts`]: remove a replaced draft from the Drafts folder.
//! - [`proposal`]: the Trash folder a folder sync proposes (Courier's `INBOX.Trash`).
//! - [`session`]: TCP/TLS/STARTTLS, greeting, CAPABILITY, LOGIN, LOGOUT.
//! - [`wire`]: command plumbing: timeouts, errors, the one tag loop,
//!   `UID STORE \Deleted` + `UID EXPUNGE`.
//! - [`partial`]: big mails in pieces into blob files (RFC 3501 §6.4.5).
//! - `unreadable`: a FETCH reply no parser reads costs that mail alone.
//! - `news`: which server responses mean new mail (pure).
//! - `syncstate`: the INBOX sync state in the store; where a stored mail is.
//! - `uidnext`: "nothing new" where the server sends no UIDNEXT (Courier).
//! - [`unstable`]: a server that renumbers INBOX in every session (imap4d).
//! - [`uidset`]: UID sets, batches and server ids (pure).
//! - [`utf7`]: folder names between the wire's modified UTF-7 and UTF-8 (pure).
//!
//! Each topic file adds its methods to [`Connection`] and depends on
//! `connection` (`drafts` also on `folders`' name quoting and folder
//! errors), never the other way round.

pub mod connection;
mod download;
pub mod drafts;
pub mod fetch;
pub mod folders;
pub mod idle;
mod idle_wire;
mod listing;
mod news;
pub mod partial;
pub mod proposal;
pub mod session;
pub mod syncstate;
#[cfg(test)]
mod testing;
mod uidnext;
pub mod uidset;
mod unreadable;
pub mod unstable;
pub mod utf7;
pub mod wire;
pub mod xoauth2;

pub use connection::Connection;
pub use drafts::{OldDraft, Removed};
pub use folders::{Folder, Moved, Plan};
pub use idle::{wait_for_change, IdleOutcome, Outcome, Wake, Wakes};
pub use session::LOGOUT_WAIT;
