//! Scope numbers (schema 14): every view scope key is given a `u32` once,
//! in [`VIEW_SCOPES`], and the index and counter rows are keyed by it.
//!
//! A scope key is ~40 bytes (folder, tenant, class or account joined with
//! U+001F) and each mail is listed in five scopes, so keying every entry
//! and counter by the key itself cost about a quarter of the index; a
//! number is 4 bytes and makes the keys fixed-width.
//!
//! A number is assigned when a scope's first entry is filed and never
//! changes or goes to another scope (a scope that empties keeps its row);
//! `crate::store::numbers` keeps the numbering and the cache of numbers
//! read from committed snapshots ([`ScopeCache`]), shared with the places
//! of the word index. A read never assigns a number: a scope without one
//! has no entries.
//!
//! While the move of schema 12's rows is pending (`super::pack`), a scope
//! may have rows in the old tables, keyed by the scope key, as well: a
//! [`Scope`] names one of the two places, and a read takes the union.

use redb::{ReadTransaction, ReadableTable, TableDefinition, TableError, WriteTransaction};

use crate::error::{Context, Result};
use crate::store::numbers::{self, Kind, NumberCache};
use crate::store::schema::{VIEW_INDEX, VIEW_SCOPES};

/// Where a scope's rows are: under its number, or (until the move of
/// schema 12's rows is done) under its key in the old tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) enum Scope {
    Id(u32),
    Legacy(String),
}

/// The numbering of view scopes.
pub(in crate::store) struct Scopes;

impl Kind for Scopes {
    const FORWARD: TableDefinition<'static, &'static str, u32> = VIEW_SCOPES;
    const BACK: Option<TableDefinition<'static, u32, &'static str>> = None;
    const WHAT: &'static str = "view scope";
    const OPEN: &'static str = "open view scopes";
    const READ: &'static str = "read view scopes";
    const WRITE: &'static str = "write view scopes";
}

/// Scope numbers seen by this process (`crate::store::numbers`).
pub(in crate::store) type ScopeCache = NumberCache<String, u32>;

/// The scope numbers of one write transaction.
pub(in crate::store) type Numbers<'tx> = numbers::Numbers<'tx, Scopes>;

/// True while the old view index of schema 12 exists (the move is pending).
pub(in crate::store) fn legacy_in(tx: &WriteTransaction) -> Result<bool> {
    has_table(tx, redb::TableHandle::name(&VIEW_INDEX))
}

/// Whether `tx` has the table `name`, without creating it (opening a
/// table in a write transaction would).
pub(in crate::store) fn has_table(tx: &WriteTransaction, name: &str) -> Result<bool> {
    Ok(tx
        .list_tables()
        .context("list tables")?
        .any(|h| redb::TableHandle::name(&h) == name))
}

/// Same as [`legacy_in`], in a read transaction.
pub(in crate::store) fn legacy_read(tx: &ReadTransaction) -> Result<bool> {
    match tx.open_table(VIEW_INDEX) {
        Ok(_) => Ok(true),
        Err(TableError::TableDoesNotExist(_)) => Ok(false),
        Err(e) => Err(e).context("open view index"),
    }
}

/// The places of the scope keys `keys` in a read transaction: the number
/// of each key that has one, and, while the move is pending, the key in
/// the old tables too.
pub(in crate::store) fn resolve(
    tx: &ReadTransaction,
    cache: &ScopeCache,
    keys: &[String],
) -> Result<Vec<Scope>> {
    let legacy = legacy_read(tx)?;
    let table = tx.open_table(VIEW_SCOPES).context("open view scopes")?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let id = match cache.get(key.as_str()) {
            Some(id) => Some(id),
            None => {
                let found = table.get(key.as_str()).context("read view scopes")?;
                let id = found.map(|g| g.value());
                if let Some(id) = id {
                    cache.put(key.clone(), id);
                }
                id
            }
        };
        out.extend(id.map(Scope::Id));
        if legacy {
            out.push(Scope::Legacy(key.clone()));
        }
    }
    Ok(out)
}

/// Every numbered scope whose key starts with `prefix`, with its number.
pub(in crate::store) fn with_prefix(
    table: &impl ReadableTable<&'static str, u32>,
    prefix: &str,
) -> Result<Vec<(String, u32)>> {
    numbers::with_prefix(table, prefix, Scopes::READ)
}
