//! Scope numbers (schema 14): every view scope key is given a `u32` once,
//! in [`VIEW_SCOPES`], and the index and counter rows are keyed by it.
//!
//! A scope key is ~40 bytes (folder, tenant, class or account joined with
//! U+001F) and each mail is listed in five scopes, so keying every entry
//! and counter by the key itself cost about a quarter of the index; a
//! number is 4 bytes and makes the keys fixed-width.
//!
//! A number is assigned when a scope's first entry is filed and never
//! changes or goes to another scope (a scope that empties keeps its row),
//! so a number read from a committed snapshot stays right for the life of
//! the database. That is what [`ScopeCache`] keeps: it is filled from read
//! transactions only, never from a write transaction, whose numbers are
//! gone again if it aborts. It lives with the open database
//! (`super::super::Current`), so a swapped-in database starts empty. A
//! read never assigns a number: a scope without one has no entries.
//!
//! While the move of schema 12's rows is pending (`super::pack`), a scope
//! may have rows in the old tables, keyed by the scope key, as well: a
//! [`Scope`] names one of the two places, and a read takes the union.

use std::collections::HashMap;
use std::sync::Mutex;

use redb::{ReadTransaction, ReadableTable, Table, TableError, WriteTransaction};

use crate::error::{Context, Error, Result};
use crate::store::schema::{VIEW_INDEX, VIEW_SCOPES};

/// The row of [`VIEW_SCOPES`] that holds the next number to assign: the
/// empty key, which no scope has (every scope key starts with its kind).
const NEXT: &str = "";

/// Where a scope's rows are: under its number, or (until the move of
/// schema 12's rows is done) under its key in the old tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) enum Scope {
    Id(u32),
    Legacy(String),
}

/// Scope numbers seen by this process (module docs). Bounded: scopes
/// are per folder x tenant x class x account, thousands rather than
/// millions, and a full cache is simply emptied.
#[derive(Debug, Default)]
pub(in crate::store) struct ScopeCache(Mutex<HashMap<String, u32>>);

/// The most numbers [`ScopeCache`] holds.
const CACHE_MAX: usize = 65_536;

impl ScopeCache {
    fn get(&self, key: &str) -> Option<u32> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key).copied()
    }

    fn put(&self, key: &str, id: u32) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(key.to_string(), id);
    }
}

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
        let id = match cache.get(key) {
            Some(id) => Some(id),
            None => {
                let found = table.get(key.as_str()).context("read view scopes")?;
                let id = found.map(|g| g.value());
                if let Some(id) = id {
                    cache.put(key, id);
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
    let mut out = Vec::new();
    for row in table.range(prefix..).context("read view scopes")? {
        let (k, v) = row.context("read view scopes")?;
        if !k.value().starts_with(prefix) {
            break;
        }
        out.push((k.value().to_string(), v.value()));
    }
    Ok(out)
}

/// The scope numbers of one write transaction.
pub(in crate::store) struct Numbers<'tx> {
    table: Table<'tx, &'static str, u32>,
}

impl<'tx> Numbers<'tx> {
    pub(in crate::store) fn open(tx: &'tx WriteTransaction) -> Result<Numbers<'tx>> {
        let table = tx.open_table(VIEW_SCOPES).context("open view scopes")?;
        Ok(Numbers { table })
    }

    /// The number of `key`, None if it has none (nothing is assigned).
    pub(in crate::store) fn find(&self, key: &str) -> Result<Option<u32>> {
        let found = self.table.get(key).context("read view scopes")?;
        Ok(found.map(|g| g.value()))
    }

    /// The number of `key`, assigned now if it has none.
    pub(in crate::store) fn assign(&mut self, key: &str) -> Result<u32> {
        if let Some(id) = self.find(key)? {
            return Ok(id);
        }
        let id = self.find(NEXT)?.unwrap_or(1);
        let next = id
            .checked_add(1)
            .ok_or_else(|| Error::storage_msg("the view scope numbers are used up".into()))?;
        self.table.insert(NEXT, next).context("write view scopes")?;
        self.table.insert(key, id).context("write view scopes")?;
        Ok(id)
    }

    /// Every numbered scope whose key starts with `prefix`.
    pub(in crate::store) fn with_prefix(&self, prefix: &str) -> Result<Vec<(String, u32)>> {
        debug_assert!(!prefix.is_empty(), "the empty key is the counter");
        with_prefix(&self.table, prefix)
    }
}
