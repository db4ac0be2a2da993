//! `Manager.Status`: the installation at a glance for an admin
//! (`postfachctl status`).
//!
//! Keys of the reply (every key is always present, zero counts included,
//! so a script can read them without probing):
//! - `version s`, `installation_id s`;
//! - `accounts a{st}`: accounts by `State` (`idle`, `fetching`, `error`,
//!   `needs-authorization`, `disabled`), private accounts included: it is
//!   a count, it names no account. `disabled` is what the scheduler shows
//!   while it stops every task at shutdown; no setting disables a single
//!   account today, so a running daemon reports 0 there;
//! - `outbox a{st}`: mails `queued`, `sending` and `failed` (sent mails are
//!   history, not work: they are left out);
//! - `store_bytes t`: `postfach.redb` plus everything under `blobs/`, what
//!   a backup or a disk-full alarm is about.
//!
//! Admins only, like Backup: the figures span every tenant.

use std::collections::HashMap;

use super::ctx::Ctx;
use super::errors::ApiError;
use super::wire;
use crate::access::Reader;
use crate::scheduler::State;

/// Every state an account can show, in the order `postfachctl` prints them.
const STATES: [State; 5] = [
    State::Idle,
    State::Fetching,
    State::Error,
    State::NeedsAuthorization,
    State::Disabled,
];

/// The reply of `Status()`; the caller has been checked to be an admin.
pub async fn status(ctx: &Ctx) -> Result<wire::Dict, ApiError> {
    let (outbox, store_bytes) = ctx
        .blocking(|s| Ok((s.outbox_counts()?, s.disk_bytes()?)))
        .await?;
    let mut accounts: HashMap<String, u64> =
        STATES.iter().map(|s| (s.as_str().to_string(), 0)).collect();
    for snap in ctx.accounts.visible(&Reader::All) {
        let state = ctx.scheduler.status(&snap.account.id).state;
        *accounts.entry(state.as_str().to_string()).or_default() += 1;
    }
    let outbox: HashMap<String, u64> = [
        ("queued", outbox.queued),
        ("sending", outbox.sending),
        ("failed", outbox.failed),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut d = wire::Dict::new();
    d.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    d.insert("installation_id".into(), ctx.store.installation_id().into());
    d.insert("accounts".into(), accounts.into());
    d.insert("outbox".into(), outbox.into());
    d.insert("store_bytes".into(), store_bytes.into());
    Ok(d)
}
