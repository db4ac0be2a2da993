//! The entries of the numbered view lists in one write transaction: the
//! chunks of [`VIEW_CHUNKS`] (schema 16, row format in `super::chunk`) and,
//! while their move is pending (`super::rechunk`), schema 14's one row per
//! entry in [`VIEW_ENTRIES`].
//!
//! Changes are applied per scope as a sorted set of wanted states, so that
//! each chunk they touch is read, decoded and written once however many of
//! them land in it (a fetched batch, the move of thousands of entries).
//! Every entry is in exactly one of the two tables: an entry still in the
//! old table is removed there and never filed twice. A chunk that grows
//! past `super::chunk::CHUNK_MAX` is cut (`super::chunk::cut`); one that
//! empties is removed. Chunks are not merged: the next entries of the
//! scope fill them again.

use std::collections::BTreeMap;
use std::ops::Bound;

use redb::{ReadableTable, ReadableTableMetadata, Table, WriteTransaction};

use super::chunk;
use super::scopes::has_table;
use crate::error::{Context, Error, Result};
use crate::store::deltas::Pos;
use crate::store::schema::{VIEW_CHUNKS, VIEW_ENTRIES};

const LOWEST: Pos = (i64::MIN, 0);
const HIGHEST: Pos = (i64::MAX, u64::MAX);

/// True while schema 14's entry table exists (its move is pending).
pub(in crate::store) fn old_entries_in(tx: &WriteTransaction) -> Result<bool> {
    has_table(tx, redb::TableHandle::name(&VIEW_ENTRIES))
}

pub(super) struct Chunks<'tx> {
    table: Table<'tx, (u32, i64, u64), &'static [u8]>,
    old: Option<Table<'tx, (u32, i64, u64), ()>>,
}

impl<'tx> Chunks<'tx> {
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<Chunks<'tx>> {
        let old = if old_entries_in(tx)? {
            Some(tx.open_table(VIEW_ENTRIES).context("open old view index")?)
        } else {
            None
        };
        Ok(Chunks {
            table: tx.open_table(VIEW_CHUNKS).context("open view index")?,
            old,
        })
    }

    /// The key of the newest chunk of `scope` at or before `pos`.
    fn below(&self, scope: u32, pos: Pos) -> Result<Option<Pos>> {
        let mut r = self
            .table
            .range((scope, LOWEST.0, LOWEST.1)..=(scope, pos.0, pos.1))
            .context("read view index")?;
        match r.next_back() {
            Some(row) => Ok(Some(key(row.context("read view index")?.0.value()))),
            None => Ok(None),
        }
    }

    /// The key of the first chunk of `scope` after `from` (Unbounded: the
    /// scope's oldest).
    fn after(&self, scope: u32, from: Bound<Pos>) -> Result<Option<Pos>> {
        let lo = match from {
            Bound::Unbounded => Bound::Included((scope, LOWEST.0, LOWEST.1)),
            b => b.map(|p| (scope, p.0, p.1)),
        };
        let hi = Bound::Included((scope, HIGHEST.0, HIGHEST.1));
        let mut r = self
            .table
            .range::<(u32, i64, u64)>((lo, hi))
            .context("read view index")?;
        match r.next() {
            Some(row) => Ok(Some(key(row.context("read view index")?.0.value()))),
            None => Ok(None),
        }
    }

    fn load(&self, scope: u32, k: Pos) -> Result<Vec<Pos>> {
        let v = self
            .table
            .get((scope, k.0, k.1))
            .context("read view index")?;
        let v = v.ok_or_else(|| Error::storage_msg("view list chunk vanished".into()))?;
        chunk::decode(k, v.value())
    }

    fn in_old(&self, scope: u32, pos: Pos) -> Result<bool> {
        let Some(old) = &self.old else {
            return Ok(false);
        };
        let found = old.get((scope, pos.0, pos.1));
        Ok(found.context("read old view index")?.is_some())
    }

    /// Whether `scope` holds the entry `pos`, in either table.
    pub(super) fn contains(&self, scope: u32, pos: Pos) -> Result<bool> {
        if self.in_old(scope, pos)? {
            return Ok(true);
        }
        match self.below(scope, pos)? {
            Some(k) => Ok(self.load(scope, k)?.binary_search(&pos).is_ok()),
            None => Ok(false),
        }
    }

    /// Bring the entries of `scope` to the wanted states `changes` (true:
    /// filed); `changed` hears the date and the change (1 or -1) of every
    /// entry really filed or removed.
    pub(super) fn apply(
        &mut self,
        scope: u32,
        changes: &BTreeMap<Pos, bool>,
        mut changed: impl FnMut(i64, i64),
    ) -> Result<()> {
        let mut todo = changes.iter().peekable();
        while let Some((&first, _)) = todo.peek() {
            // The chunk covering `first`: the newest at or before it, else
            // the scope's oldest; it takes every change below the next key.
            let k = match self.below(scope, first)? {
                Some(k) => Some(k),
                None => self.after(scope, Bound::Unbounded)?,
            };
            let (mut entries, next) = match k {
                Some(k) => (self.load(scope, k)?, self.after(scope, Bound::Excluded(k))?),
                None => (Vec::new(), None),
            };
            let last = entries.last().copied();
            let mut in_order = true;
            while let Some((&pos, &want)) = todo.next_if(|(p, _)| next.is_none_or(|n| **p < n)) {
                match (entries.binary_search(&pos), want) {
                    (Ok(_), true) => {}
                    (Err(i), true) => {
                        if self.in_old(scope, pos)? {
                            continue;
                        }
                        entries.insert(i, pos);
                        in_order &= last.is_none_or(|l| pos > l);
                        changed(pos.0, 1);
                    }
                    (Ok(i), false) => {
                        entries.remove(i);
                        changed(pos.0, -1);
                    }
                    (Err(_), false) => {
                        if let Some(old) = &mut self.old {
                            let gone = old.remove((scope, pos.0, pos.1));
                            if gone.context("write old view index")?.is_some() {
                                changed(pos.0, -1);
                            }
                        }
                    }
                }
            }
            self.write(scope, k, entries, in_order)?;
        }
        Ok(())
    }

    /// Write the entries of the chunk that was keyed `k` (cut into pieces
    /// if it grew too big; removed if empty).
    fn write(&mut self, scope: u32, k: Option<Pos>, entries: Vec<Pos>, fill: bool) -> Result<()> {
        if let Some(k) = k {
            if entries.first() != Some(&k) {
                self.table
                    .remove((scope, k.0, k.1))
                    .context("write view index")?;
            }
        }
        for piece in chunk::cut(entries, fill) {
            if let Some(first) = piece.first() {
                self.table
                    .insert((scope, first.0, first.1), chunk::encode(&piece).as_slice())
                    .context("write view index")?;
            }
        }
        Ok(())
    }

    /// Ids of every entry of `scope`, in either table.
    pub(super) fn ids(&self, scope: u32, out: &mut Vec<u64>) -> Result<()> {
        let rows = self
            .table
            .range((scope, LOWEST.0, LOWEST.1)..=(scope, HIGHEST.0, HIGHEST.1))
            .context("read view index")?;
        for row in rows {
            let (k, v) = row.context("read view index")?;
            let entries = chunk::decode(key(k.value()), v.value())?;
            out.extend(entries.iter().map(|e| e.1));
        }
        if let Some(old) = &self.old {
            let rows = old
                .range((scope, LOWEST.0, LOWEST.1)..=(scope, HIGHEST.0, HIGHEST.1))
                .context("read old view index")?;
            for row in rows {
                out.push(row.context("read old view index")?.0.value().2);
            }
        }
        Ok(())
    }

    /// Take up to `max` of the first entries out of schema 14's table:
    /// (scope, entry) in key order, and whether none are left.
    pub(super) fn take_old(&mut self, max: usize) -> Result<(Vec<(u32, Pos)>, bool)> {
        let mut taken = Vec::new();
        let Some(old) = &mut self.old else {
            return Ok((taken, true));
        };
        while taken.len() < max {
            let Some((k, _)) = old.pop_first().context("read old view index")? else {
                break;
            };
            let (scope, date, id) = k.value();
            taken.push((scope, (date, id)));
        }
        let empty = old.is_empty().context("read old view index")?;
        Ok((taken, empty))
    }
}

fn key(k: (u32, i64, u64)) -> Pos {
    (k.1, k.2)
}
