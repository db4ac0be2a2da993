//! Store-wide add-only numberings: a key string is given a `u32` once, in
//! a table `key -> number` (and, where readers need the way back, a table
//! `number -> key`), so that rows repeated per mail name the number
//! instead of the string. View scopes (schema 14, `super::views::scopes`)
//! and the places of the word index (schema 17, `super::search`) are
//! numbered this way.
//!
//! A number is assigned once and never changes or goes to another key (a
//! key that falls out of use keeps its row), so a number read from a
//! committed snapshot stays right for the life of the database. That is
//! what [`NumberCache`] keeps: it is filled from read transactions only,
//! never from a write transaction, whose numbers are gone again if it
//! aborts. It lives with the open database (`super::Current`), so a
//! swapped-in database starts empty. A read never assigns a number.

use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Mutex;

use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::error::{Context, Error, Result};

/// The row of a numbering's table that holds the next number to assign:
/// the empty key, which no numbered key has (each kind's keys start with
/// a non-empty tag).
const NEXT: &str = "";

/// One numbering: its tables and the name its errors use.
pub(in crate::store) trait Kind {
    /// `key -> number`, with the counter under [`NEXT`].
    const FORWARD: TableDefinition<'static, &'static str, u32>;
    /// `number -> key`, for kinds whose readers start from the number.
    const BACK: Option<TableDefinition<'static, u32, &'static str>>;
    /// What is numbered, for error messages ("view scope").
    const WHAT: &'static str;
    /// The contexts of its errors ("open view scopes", ...).
    const OPEN: &'static str;
    const READ: &'static str;
    const WRITE: &'static str;
}

/// Numbers (or keys) seen by this process in committed snapshots (module
/// docs). Bounded: a full cache is simply emptied.
#[derive(Debug)]
pub(in crate::store) struct NumberCache<K, V>(Mutex<HashMap<K, V>>);

impl<K, V> Default for NumberCache<K, V> {
    fn default() -> Self {
        NumberCache(Mutex::new(HashMap::new()))
    }
}

/// The most entries a [`NumberCache`] holds: scopes and places are per
/// folder x account (x tenant, class), thousands rather than millions.
const CACHE_MAX: usize = 65_536;

impl<K: Hash + Eq, V: Clone> NumberCache<K, V> {
    pub(in crate::store) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key).cloned()
    }

    /// Only with a value read in a read transaction (module docs).
    pub(in crate::store) fn put(&self, key: K, value: V) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(key, value);
    }
}

/// Every numbered key starting with `prefix`, with its number.
pub(in crate::store) fn with_prefix(
    table: &impl ReadableTable<&'static str, u32>,
    prefix: &str,
    read: &str,
) -> Result<Vec<(String, u32)>> {
    let mut out = Vec::new();
    for row in table.range(prefix..).context(read)? {
        let (k, v) = row.context(read)?;
        if !k.value().starts_with(prefix) {
            break;
        }
        out.push((k.value().to_string(), v.value()));
    }
    Ok(out)
}

/// The numbers of one kind in one write transaction.
pub(in crate::store) struct Numbers<'tx, K: Kind> {
    table: Table<'tx, &'static str, u32>,
    back: Option<Table<'tx, u32, &'static str>>,
    kind: PhantomData<K>,
}

impl<'tx, K: Kind> Numbers<'tx, K> {
    pub(in crate::store) fn open(tx: &'tx WriteTransaction) -> Result<Numbers<'tx, K>> {
        let table = tx.open_table(K::FORWARD).context(K::OPEN)?;
        let back = match K::BACK {
            Some(def) => Some(tx.open_table(def).context(K::OPEN)?),
            None => None,
        };
        Ok(Numbers {
            table,
            back,
            kind: PhantomData,
        })
    }

    /// The number of `key`, None if it has none (nothing is assigned).
    pub(in crate::store) fn find(&self, key: &str) -> Result<Option<u32>> {
        let found = self.table.get(key).context(K::READ)?;
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
            .ok_or_else(|| Error::storage_msg(format!("the {} numbers are used up", K::WHAT)))?;
        self.table.insert(NEXT, next).context(K::WRITE)?;
        self.table.insert(key, id).context(K::WRITE)?;
        if let Some(back) = &mut self.back {
            back.insert(id, key).context(K::WRITE)?;
        }
        Ok(id)
    }

    /// Every numbered key starting with `prefix`.
    pub(in crate::store) fn with_prefix(&self, prefix: &str) -> Result<Vec<(String, u32)>> {
        debug_assert!(!prefix.is_empty(), "the empty key is the counter");
        with_prefix(&self.table, prefix, K::READ)
    }
}
