//! Every access to the server ids: (account, server id) -> message id,
//! what was already fetched (ARCHITECTURE.md "Invariants", 2).
//!
//! Since schema 20 a canonical IMAP id (`imap:<folder>:<uidvalidity>:<uid>`,
//! [`chunk::canonical`]) lives in a chunk of its generation in
//! [`SERVER_UIDS`]; any other id (`pop3:<uidl>`, odd forms) stays a row of
//! [`SERVER_IDS`]. Why chunks: one row per id cost its full text and
//! redb's per-row overhead, and as every account appends at its own place
//! in the tree, the leaves split in the middle stayed half empty; a chunk
//! names account and generation once and each UID in about 2 bytes.
//!
//! While the move of schema 20 is pending (a mark in `meta`, see
//! [`moves`]), canonical ids may still be rows: readers look in the chunks
//! first, then in the rows, and a write of a canonical id takes its row
//! out in the same transaction, so an id is always in exactly one place.

use std::collections::HashSet;

use redb::{ReadTransaction, ReadableTable, Table, WriteTransaction};

use super::schema::{SERVER_IDS, SERVER_UIDS};
use crate::error::{Context, Result};

pub mod chunk;
pub mod moves;

use chunk::{canonical, Pair};

type Rows<'tx> = Table<'tx, (&'static str, &'static str), u64>;
type Chunks<'tx> = Table<'tx, (&'static str, &'static str, u32), &'static [u8]>;

/// The chunk being read and written, kept decoded until another one is
/// needed or [`ServerIds::finish`]: a batch of ascending UIDs reads and
/// writes its chunk once.
struct Open {
    account: String,
    generation: String,
    /// Its key in the table, None for a generation without chunks.
    key: Option<u32>,
    /// The UIDs this chunk is the home of: from `lo` up to the next
    /// chunk's key `hi`.
    lo: u32,
    hi: Option<u32>,
    pairs: Vec<Pair>,
    dirty: bool,
    /// Only appended to: written back as full chunks (`chunk::pieces`).
    appended: bool,
}

impl Open {
    fn holds(&self, account: &str, generation: &str, uid: u32) -> bool {
        self.account == account
            && self.generation == generation
            && self.lo <= uid
            && self.hi.is_none_or(|h| uid < h)
    }

    fn find(&self, uid: u32) -> std::result::Result<usize, usize> {
        self.pairs.binary_search_by_key(&uid, |p| p.0)
    }
}

/// The server ids in one write transaction (module docs). Call
/// [`ServerIds::finish`] before the commit: the open chunk is written then.
pub(super) struct ServerIds<'tx> {
    rows: Rows<'tx>,
    chunks: Chunks<'tx>,
    /// The move of schema 20 is pending: canonical ids may be rows.
    moving: bool,
    open: Option<Open>,
}

impl<'tx> ServerIds<'tx> {
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<ServerIds<'tx>> {
        Ok(ServerIds {
            moving: moves::pending(tx)?,
            rows: tx.open_table(SERVER_IDS).context("open server ids")?,
            chunks: tx.open_table(SERVER_UIDS).context("open server ids")?,
            open: None,
        })
    }

    /// The message id (or tombstone) `sid` of `account` maps to.
    pub(super) fn get(&mut self, account: &str, sid: &str) -> Result<Option<u64>> {
        if let Some((generation, uid)) = canonical(sid) {
            let o = self.load(account, generation, uid)?;
            if let Ok(i) = o.find(uid) {
                return Ok(Some(o.pairs[i].1));
            }
            if !self.moving {
                return Ok(None);
            }
        }
        let v = self.rows.get((account, sid)).context("read server ids")?;
        Ok(v.map(|g| g.value()))
    }

    /// Map `sid` of `account` to `id`, replacing what it mapped to.
    pub(super) fn insert(&mut self, account: &str, sid: &str, id: u64) -> Result<()> {
        let Some((generation, uid)) = canonical(sid) else {
            self.rows
                .insert((account, sid), id)
                .context("write server ids")?;
            return Ok(());
        };
        if self.moving {
            self.rows
                .remove((account, sid))
                .context("write server ids")?;
        }
        let o = self.load(account, generation, uid)?;
        match o.find(uid) {
            Ok(i) if o.pairs[i].1 == id => return Ok(()),
            Ok(i) => o.pairs[i].1 = id,
            Err(i) => {
                o.appended &= i == o.pairs.len();
                o.pairs.insert(i, (uid, id));
            }
        }
        o.dirty = true;
        Ok(())
    }

    /// Remove `sid` of `account`; returns what it mapped to.
    pub(super) fn remove(&mut self, account: &str, sid: &str) -> Result<Option<u64>> {
        let mut gone = None;
        if let Some((generation, uid)) = canonical(sid) {
            let o = self.load(account, generation, uid)?;
            if let Ok(i) = o.find(uid) {
                gone = Some(o.pairs.remove(i).1);
                o.dirty = true;
            }
            if !self.moving {
                return Ok(gone);
            }
        }
        let row = self
            .rows
            .remove((account, sid))
            .context("remove server id")?;
        Ok(gone.or(row.map(|g| g.value())))
    }

    /// Remove every server id of `account`.
    pub(super) fn remove_account(&mut self, account: &str) -> Result<()> {
        self.flush()?;
        let mut keys = Vec::new();
        for row in self
            .chunks
            .range((account, "", 0u32)..)
            .context("read server ids")?
        {
            let (k, _) = row.context("read server ids")?;
            let (a, generation, first) = k.value();
            if a != account {
                break;
            }
            keys.push((generation.to_string(), first));
        }
        for (generation, first) in &keys {
            self.chunks
                .remove((account, generation.as_str(), *first))
                .context("remove server id")?;
        }
        let mut sids = Vec::new();
        for row in self
            .rows
            .range((account, "")..)
            .context("read server ids")?
        {
            let (k, _) = row.context("read server ids")?;
            let (a, sid) = k.value();
            if a != account {
                break;
            }
            sids.push(sid.to_string());
        }
        for sid in &sids {
            self.rows
                .remove((account, sid.as_str()))
                .context("remove server id")?;
        }
        Ok(())
    }

    /// Write the open chunk back; the end of every writer.
    pub(super) fn finish(mut self) -> Result<()> {
        self.flush()
    }

    /// Make the home chunk of `uid` the open one and return it.
    fn load(&mut self, account: &str, generation: &str, uid: u32) -> Result<&mut Open> {
        if !self
            .open
            .as_ref()
            .is_some_and(|o| o.holds(account, generation, uid))
        {
            self.flush()?;
            self.open = Some(self.home(account, generation, uid)?);
        }
        self.open
            .as_mut()
            .ok_or_else(|| crate::error::Error::storage_msg("server id chunk not open".into()))
    }

    /// The chunk that holds `uid` of a generation, or would: the last one
    /// keyed at or below it, else the first one (which then gets a lower
    /// key), else a new one.
    fn home(&self, account: &str, generation: &str, uid: u32) -> Result<Open> {
        let mut at_or_below = self
            .chunks
            .range((account, generation, 0u32)..=(account, generation, uid))
            .context("read server ids")?;
        let found = match at_or_below.next_back() {
            Some(row) => {
                let (k, v) = row.context("read server ids")?;
                let key = k.value().2;
                Some((key, key, chunk::decode(key, v.value())?))
            }
            None => {
                let mut above = self
                    .chunks
                    .range((account, generation, uid)..=(account, generation, u32::MAX))
                    .context("read server ids")?;
                match above.next() {
                    Some(row) => {
                        let (k, v) = row.context("read server ids")?;
                        let key = k.value().2;
                        Some((key, 0, chunk::decode(key, v.value())?))
                    }
                    None => None,
                }
            }
        };
        let (key, lo, pairs) = match found {
            Some((key, lo, pairs)) => (Some(key), lo, pairs),
            None => (None, 0, Vec::new()),
        };
        let hi = match key.and_then(|k| k.checked_add(1)) {
            Some(next) => {
                let mut after = self
                    .chunks
                    .range((account, generation, next)..=(account, generation, u32::MAX))
                    .context("read server ids")?;
                match after.next() {
                    Some(row) => Some(row.context("read server ids")?.0.value().2),
                    None => None,
                }
            }
            None => None,
        };
        Ok(Open {
            account: account.to_string(),
            generation: generation.to_string(),
            key,
            lo,
            hi,
            pairs,
            dirty: false,
            appended: true,
        })
    }

    /// Write the open chunk back if it changed, cut to size.
    fn flush(&mut self) -> Result<()> {
        let Some(o) = self.open.take() else {
            return Ok(());
        };
        if !o.dirty {
            return Ok(());
        }
        let (account, generation) = (o.account.as_str(), o.generation.as_str());
        if let Some(key) = o.key {
            self.chunks
                .remove((account, generation, key))
                .context("write server ids")?;
        }
        for piece in chunk::pieces(&o.pairs, o.appended) {
            self.chunks
                .insert(
                    (account, generation, piece[0].0),
                    chunk::encode(piece).as_slice(),
                )
                .context("write server ids")?;
        }
        Ok(())
    }
}

/// The server ids of `account` that start with `prefix` (callers pass "",
/// `imap:INBOX:`, `imap:INBOX:<uidvalidity>:`, `pop3:`...).
pub(super) fn known(tx: &ReadTransaction, account: &str, prefix: &str) -> Result<HashSet<String>> {
    let rows = tx.open_table(SERVER_IDS).context("open server ids")?;
    let chunks = tx.open_table(SERVER_UIDS).context("open server ids")?;
    let mut out = HashSet::new();
    for row in rows.range((account, prefix)..).context("read server ids")? {
        let (k, _) = row.context("read server ids")?;
        let (a, sid) = k.value();
        if a != account || !sid.starts_with(prefix) {
            break;
        }
        out.insert(sid.to_string());
    }
    // Generations that are a proper prefix of `prefix`: their ids are
    // checked one by one (e.g. prefix `imap:INBOX:7:1`).
    for (i, _) in prefix.match_indices(':') {
        let generation = &prefix[..=i];
        if generation.len() < prefix.len() {
            each_pair(&chunks, account, generation, |sid| {
                if sid.starts_with(prefix) {
                    out.insert(sid);
                }
            })?;
        }
    }
    // Generations that start with `prefix`: all their ids.
    for row in chunks
        .range((account, prefix, 0u32)..)
        .context("read server ids")?
    {
        let (k, v) = row.context("read server ids")?;
        let (a, generation, first) = k.value();
        if a != account || !generation.starts_with(prefix) {
            break;
        }
        for (uid, _) in chunk::decode(first, v.value())? {
            out.insert(format!("{generation}{uid}"));
        }
    }
    Ok(out)
}

/// Every server id of one generation, as text.
fn each_pair(
    chunks: &impl ReadableTable<(&'static str, &'static str, u32), &'static [u8]>,
    account: &str,
    generation: &str,
    mut f: impl FnMut(String),
) -> Result<()> {
    for row in chunks
        .range((account, generation, 0u32)..=(account, generation, u32::MAX))
        .context("read server ids")?
    {
        let (k, v) = row.context("read server ids")?;
        for (uid, _) in chunk::decode(k.value().2, v.value())? {
            f(format!("{generation}{uid}"));
        }
    }
    Ok(())
}

/// Every (server id, message id) pair, rows and chunks, for rebuilding the
/// reverse map.
pub(super) fn each(
    tx: &WriteTransaction,
    mut f: impl FnMut(&str, u64) -> Result<()>,
) -> Result<()> {
    let rows = tx.open_table(SERVER_IDS).context("open server ids")?;
    for row in rows.iter().context("read server ids")? {
        let (k, v) = row.context("read server ids")?;
        f(k.value().1, v.value())?;
    }
    let chunks = tx.open_table(SERVER_UIDS).context("open server ids")?;
    for row in chunks.iter().context("read server ids")? {
        let (k, v) = row.context("read server ids")?;
        let (_, generation, first) = k.value();
        for (uid, id) in chunk::decode(first, v.value())? {
            f(&format!("{generation}{uid}"), id)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
