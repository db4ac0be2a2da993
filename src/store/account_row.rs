//! One account's row in the `accounts` table: its JSON form (new fields
//! are `#[serde(default)]`, so no migration is needed for them) and the
//! read inside a write transaction that fetching, filing, views and the
//! outbox share with the account settings.
//!
//! Apart from `super::accounts` (creating, changing and deleting
//! accounts, which reaches into the views and the purge) so that the
//! modules that only read an account's row do not depend on those.

use redb::{ReadableTable, WriteTransaction};

use super::schema::ACCOUNTS;
use crate::account::Account;
use crate::error::{Context, Error, Result};

pub(super) fn to_json(a: &Account) -> Result<Vec<u8>> {
    serde_json::to_vec(a).context("encode account")
}

pub(super) fn from_json(bytes: &[u8]) -> Result<Account> {
    serde_json::from_slice(bytes).context("stored account is unreadable")
}

/// Read one account inside a write transaction.
pub(super) fn account_in(tx: &WriteTransaction, id: &str) -> Result<Option<Account>> {
    let t = tx.open_table(ACCOUNTS).context("open accounts")?;
    let v = t.get(id).context("read account")?;
    v.map(|g| from_json(g.value())).transpose()
}

/// The error of a call that names an account the store does not have.
pub(super) fn no_account(id: &str) -> Error {
    Error::NotFound(format!("no account {id}"))
}
