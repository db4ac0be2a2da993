//! Account labels of summary formats 2 and 3 (schemas 13 and 18): the
//! account id, tenant, account name and address that a mail was stored
//! under, kept once per distinct set in `summary_labels` and named by a
//! small number in each row, instead of repeated in every row (~45 bytes
//! a mail).
//!
//! A label is what the row held before, exactly: a rename or a tenant
//! change of an account makes a NEW label for the mails stored after it,
//! and older mails keep theirs (`super`'s module docs say why). A label
//! is never changed, removed or given another number once committed, so
//! a label read in one committed transaction is right in every later one:
//! [`LabelCache`] keeps those for the readers of one database and goes
//! with it when the database is swapped (`crate::store::swap`). A write
//! transaction may see labels that it added itself and that are gone if
//! it aborts (their numbers are then handed out again), so what it reads
//! stays in its own [`Labels`] and never reaches the shared cache.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, TableError, WriteTransaction};

use super::damaged;
use super::wire::{put_str, Reader};
use crate::error::{Context, Error, Result};
use crate::store::meta::MessageMeta;
use crate::store::schema::{SUMMARY_LABELS, SUMMARY_LABEL_IDS};

/// Labels a cache or a transaction's memo holds at most; past it they
/// start again empty. There are about as many labels as accounts and
/// renames, so a store of 1,000 accounts fits.
pub const CACHE_MAX: usize = 4096;

/// The account fields of a summary as the mail was stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Label {
    pub account: String,
    pub tenant: String,
    pub name: String,
    pub address: String,
}

impl Label {
    pub fn of(m: &MessageMeta) -> Label {
        Label {
            account: m.account.clone(),
            tenant: m.tenant.clone(),
            name: m.account_name.clone(),
            address: m.account_address.clone(),
        }
    }

    /// Fills the account fields of `m`.
    pub fn apply(&self, m: &mut MessageMeta) {
        m.account.clone_from(&self.account);
        m.tenant.clone_from(&self.tenant);
        m.account_name.clone_from(&self.name);
        m.account_address.clone_from(&self.address);
    }

    /// The stored form: four length-prefixed strings. The same bytes are
    /// the key of `summary_label_ids`, so one form is unique both ways.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.name.len() + self.address.len());
        for s in [&self.account, &self.tenant, &self.name, &self.address] {
            put_str(&mut out, s);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Label> {
        let mut r = Reader(bytes);
        let label = Label {
            account: r.str()?,
            tenant: r.str()?,
            name: r.str()?,
            address: r.str()?,
        };
        r.end()?;
        Ok(label)
    }
}

/// Labels read in committed transactions of one database (module docs).
#[derive(Debug, Default)]
pub struct LabelCache(Mutex<HashMap<u32, Arc<Label>>>);

impl LabelCache {
    fn get(&self, id: u32) -> Option<Arc<Label>> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&id).cloned()
    }

    fn keep(&self, id: u32, label: &Arc<Label>) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(id, Arc::clone(label));
    }

    /// How many labels it holds.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

type LabelTable = ReadOnlyTable<u32, &'static [u8]>;

enum Source<'a> {
    /// A read transaction: committed labels, shared through the cache.
    Read(Option<LabelTable>, Option<&'a LabelCache>),
    /// A write transaction: its tables are opened per lookup, since the
    /// caller may hold others open (redb allows one handle per table).
    Write(&'a WriteTransaction),
}

/// The labels of one transaction: looks them up for decoding and, in a
/// write transaction, adds new ones for encoding. Each label is read once
/// per transaction at most.
pub struct Labels<'a> {
    source: Source<'a>,
    by_id: RefCell<HashMap<u32, Arc<Label>>>,
    by_label: RefCell<HashMap<Arc<Label>, u32>>,
}

impl<'a> Labels<'a> {
    /// For decoding in a read transaction; `cache` is the database's
    /// (None: tools and tests that read a file on their own).
    pub fn read(tx: &ReadTransaction, cache: Option<&'a LabelCache>) -> Result<Labels<'a>> {
        // A store from before schema 13 that is only read has no table.
        let table = match tx.open_table(SUMMARY_LABELS) {
            Err(TableError::TableDoesNotExist(_)) => None,
            t => Some(t.context("open summary labels")?),
        };
        Ok(Labels::new(Source::Read(table, cache)))
    }

    /// For decoding and encoding in a write transaction.
    pub fn write(tx: &'a WriteTransaction) -> Labels<'a> {
        Labels::new(Source::Write(tx))
    }

    fn new(source: Source<'a>) -> Labels<'a> {
        Labels {
            source,
            by_id: RefCell::default(),
            by_label: RefCell::default(),
        }
    }

    /// The label numbered `id`; a number without a label is damage.
    pub fn get(&self, id: u32) -> Result<Arc<Label>> {
        if let Some(l) = self.by_id.borrow().get(&id) {
            return Ok(Arc::clone(l));
        }
        let label = match &self.source {
            Source::Read(table, cache) => {
                if let Some(l) = cache.and_then(|c| c.get(id)) {
                    self.remember(id, &l);
                    return Ok(l);
                }
                let row = match table {
                    Some(t) => t.get(id).context("read summary labels")?,
                    None => None,
                };
                let row = row.ok_or_else(|| missing(id))?;
                let label = Arc::new(Label::decode(row.value())?);
                if let Some(c) = cache {
                    c.keep(id, &label);
                }
                label
            }
            Source::Write(tx) => {
                let table = match tx.open_table(SUMMARY_LABELS) {
                    Err(TableError::TableDoesNotExist(_)) => return Err(missing(id)),
                    t => t.context("open summary labels")?,
                };
                let row = table.get(id).context("read summary labels")?;
                let label = Label::decode(row.ok_or_else(|| missing(id))?.value())?;
                Arc::new(label)
            }
        };
        self.remember(id, &label);
        Ok(label)
    }

    /// The number of `label`, added in this write transaction if the
    /// store has none for it yet (numbers start at 1, in order).
    pub fn intern(&self, label: &Label) -> Result<u32> {
        if let Some(id) = self.by_label.borrow().get(label) {
            return Ok(*id);
        }
        let Source::Write(tx) = self.source else {
            return Err(Error::storage_msg(
                "a summary label was to be added in a read transaction".into(),
            ));
        };
        let key = label.encode();
        let mut ids = tx
            .open_table(SUMMARY_LABEL_IDS)
            .context("open summary labels")?;
        let known = ids.get(key.as_slice()).context("read summary labels")?;
        let id = match known.map(|g| g.value()) {
            Some(id) => id,
            None => {
                let mut labels = tx
                    .open_table(SUMMARY_LABELS)
                    .context("open summary labels")?;
                let last = labels.last().context("read summary labels")?;
                let id = last
                    .map_or(Some(1), |(k, _)| k.value().checked_add(1))
                    .ok_or_else(|| damaged("no summary label number left"))?;
                labels
                    .insert(id, key.as_slice())
                    .context("write summary labels")?;
                ids.insert(key.as_slice(), id)
                    .context("write summary labels")?;
                id
            }
        };
        self.remember(id, &Arc::new(label.clone()));
        Ok(id)
    }

    fn remember(&self, id: u32, label: &Arc<Label>) {
        let (mut by_id, mut by_label) = (self.by_id.borrow_mut(), self.by_label.borrow_mut());
        if by_id.len() >= CACHE_MAX {
            by_id.clear();
            by_label.clear();
        }
        by_id.insert(id, Arc::clone(label));
        by_label.insert(Arc::clone(label), id);
    }
}

fn missing(id: u32) -> Error {
    damaged(&format!("it names label {id}, which is missing"))
}

#[cfg(test)]
mod tests;
