//! One task per account: fetch, IDLE or sleep, back off (ARCHITECTURE.md "What it does"
//! "Fetching and sending", invariant 5) — and every other piece of IMAP
//! work of that account, on the one connection the task keeps.
//!
//! Who owns what:
//! - The D-Bus objects hold a [`Handle`]. They never run a protocol session
//!   themselves: they send [`Request`]s (FetchNow, the Trash move of
//!   DeleteMessage) and configuration events, and read the [`Status`]
//!   board the tasks keep up to date.
//! - The owner loop ([`run`], `owner`) is the only place that starts and
//!   stops account tasks. It never waits for one: a task that must go is
//!   told to stop, and its successor waits for it (`task`).
//! - Each account task (`task`) owns its account's settings, its
//!   `imap::Connection` and its queue of requests; it sees a request, a
//!   turn (its poll timer or IDLE news) or a stop, nothing else.
//! - What the tasks want the world to know goes out as [`Notice`]s to the
//!   one pump of the D-Bus layer (`notice`), which turns them into signals
//!   and PropertiesChanged — so this module never imports `dbus`.

mod auth;
mod backoff;
mod board;
pub mod drafts;
mod folders;
mod handle;
mod notice;
mod owner;
mod request;
mod sending;
mod sent_copy;
mod task;
mod token;
mod wakes;
mod worker;

use std::sync::Arc;

use tokio::sync::Semaphore;

pub use board::{Board, State, Status};
pub use handle::{Command, Handle};
pub use notice::{Notice, Notices};
pub use owner::run;
pub use request::{DraftJob, Reply, Request, SavedDraft};

use crate::net::{Timeouts, TlsContext};
use crate::store::Store;

/// What every account task needs.
#[derive(Clone)]
pub struct Runtime {
    pub handle: Handle,
    pub store: Arc<Store>,
    pub tls: TlsContext,
    pub timeouts: Timeouts,
    /// Bounds the sessions open at once.
    pub connects: Arc<Semaphore>,
    /// Office 365 sign-in and tokens (see `auth`).
    pub office365: Arc<crate::oauth::Office365>,
}
