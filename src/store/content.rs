//! The content index: which stored mail (or tombstone) of an account a
//! content key names, so that a mail seen again under a new UIDVALIDITY or
//! UIDL is recognised by its bytes (ARCHITECTURE.md "Invariants", 2).
//!
//! Content keys are texts: the SHA-256 of the raw bytes and the mail key
//! of `super::digest` (64 lower-case hex digits each), and the header key
//! (`header:<hex>:<body length>`). Since schema 15 the table keeps them as
//! 32 bytes ([`CONTENT_KEYS`]); up to schema 14 it kept the text itself
//! ([`CONTENT`], about twice the bytes). [`stored_key`] is the one mapping
//! from a key text to its stored bytes, used by every reader and writer:
//!
//! - 64 lower-case hex digits are stored as the 32 bytes they spell. That
//!   is a bijection, so two such keys meet only if they are equal.
//! - Any other text is stored as its SHA-512/256 (FIPS 180-4). That is a
//!   different function from SHA-256 (other initial values, 64-bit
//!   words), so a text key meets a hash key only if a SHA-512/256 output
//!   equals a SHA-256 output, and two texts only on a SHA-512/256
//!   collision: as hard as finding a 256-bit collision. Plain SHA-256 of
//!   the text would not do: a mail whose bytes are exactly some header
//!   key's text has that SHA-256 as its raw hash, and would be taken for
//!   the mail of that header key and skipped (invariant 2 must never cost
//!   a mail, so no key is ever shortened either).
//!
//! While a store of schema 14 is converted ([`pack`]), a key lives in
//! exactly one of the two tables: [`Content`] reads the new table and then
//! the old one, and every write goes to the new table and takes the row
//! out of the old one in the same transaction.

use redb::{ReadTransaction, ReadableTable, Table, TableError, WriteTransaction};

use super::digest::AMBIGUOUS;
use super::keytags::{tag_of, KeyTag, TAG_BYTES};
use super::meta::TOMBSTONE;
use super::schema::{CONTENT, CONTENT_KEYS};
use crate::error::{Context, Result};

pub mod pack;

pub use super::keytags::stored_key;

/// True while the text-keyed table of schema 14 exists (its move is
/// pending). Never creates it.
pub(super) fn legacy_in(tx: &WriteTransaction) -> Result<bool> {
    let name = redb::TableHandle::name(&CONTENT);
    Ok(tx
        .list_tables()
        .context("list tables")?
        .any(|h| redb::TableHandle::name(&h) == name))
}

/// What content key `text` of `acct` names, in a read transaction.
pub(super) fn lookup(tx: &ReadTransaction, acct: &str, text: &str) -> Result<Option<u64>> {
    let keys = tx.open_table(CONTENT_KEYS).context("open content")?;
    if let Some(v) = keys
        .get((acct, &stored_key(text)))
        .context("read content")?
    {
        return Ok(Some(v.value()));
    }
    match tx.open_table(CONTENT) {
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        t => Ok(t
            .context("open content")?
            .get((acct, text))
            .context("read content")?
            .map(|g| g.value())),
    }
}

/// The content index in one write transaction (module docs).
pub(super) struct Content<'tx> {
    keys: Table<'tx, (&'static str, &'static [u8; 32]), u64>,
    old: Option<Table<'tx, (&'static str, &'static str), u64>>,
}

impl<'tx> Content<'tx> {
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<Content<'tx>> {
        let old = if legacy_in(tx)? {
            Some(tx.open_table(CONTENT).context("open content")?)
        } else {
            None
        };
        Ok(Content {
            keys: tx.open_table(CONTENT_KEYS).context("open content")?,
            old,
        })
    }

    /// What key `text` of `acct` names: a message id, [`TOMBSTONE`] or
    /// [`AMBIGUOUS`].
    pub(super) fn get(&self, acct: &str, text: &str) -> Result<Option<u64>> {
        if let Some(v) = self
            .keys
            .get((acct, &stored_key(text)))
            .context("read content")?
        {
            return Ok(Some(v.value()));
        }
        match &self.old {
            None => Ok(None),
            Some(old) => Ok(old
                .get((acct, text))
                .context("read content")?
                .map(|g| g.value())),
        }
    }

    /// Key `text` of `acct` names `id` from now on.
    pub(super) fn insert(&mut self, acct: &str, text: &str, id: u64) -> Result<()> {
        self.keys
            .insert((acct, &stored_key(text)), id)
            .context("write content")?;
        if let Some(old) = &mut self.old {
            old.remove((acct, text)).context("write content")?;
        }
        Ok(())
    }

    /// Files key `text` of `acct` for message `id` unless it already names
    /// one: a header key (`super::digest`) of another mail becomes
    /// [`AMBIGUOUS`].
    pub(super) fn add(&mut self, acct: &str, text: &str, id: u64) -> Result<()> {
        let value = match self.get(acct, text)? {
            None => id,
            Some(b) if b == id || b == AMBIGUOUS => return Ok(()),
            // Even a deleted mail's: a header key must never hide new mail.
            Some(_) if text.starts_with("header:") => AMBIGUOUS,
            Some(_) => return Ok(()),
        };
        self.insert(acct, text, value)
    }

    /// A deleted message's key, known by its tag (super::keytags), becomes
    /// a tombstone: every row of `acct` under the tag that names `id`, and
    /// no other (another mail's key with the same tag, the ambiguity mark
    /// or a tombstone is left as it is).
    pub(super) fn bury(&mut self, acct: &str, tag: KeyTag, id: u64) -> Result<()> {
        for key in self.keys_of(acct, tag, id)? {
            self.keys
                .insert((acct, &key), TOMBSTONE)
                .context("write content")?;
        }
        for text in self.old_texts_of(acct, tag, id)? {
            self.insert(acct, &text, TOMBSTONE)?;
        }
        Ok(())
    }

    /// Whether a key of `acct` under `tag` names `id`: the message has a
    /// content row of its own (fetched mail).
    pub(super) fn names(&self, acct: &str, tag: KeyTag, id: u64) -> Result<bool> {
        Ok(!self.keys_of(acct, tag, id)?.is_empty()
            || !self.old_texts_of(acct, tag, id)?.is_empty())
    }

    /// The stored keys of `acct` that start with `tag` and name `id`: a
    /// range of the table, normally one row (super::keytags).
    fn keys_of(&self, acct: &str, tag: KeyTag, id: u64) -> Result<Vec<[u8; 32]>> {
        let (mut lo, mut hi) = ([0u8; 32], [0xffu8; 32]);
        lo[..TAG_BYTES].copy_from_slice(&tag);
        hi[..TAG_BYTES].copy_from_slice(&tag);
        let mut out = Vec::new();
        for row in self
            .keys
            .range((acct, &lo)..=(acct, &hi))
            .context("read content")?
        {
            let (k, v) = row.context("read content")?;
            if v.value() == id {
                out.push(*k.value().1);
            }
        }
        Ok(out)
    }

    /// Likewise in the text-keyed table of schema 14, while its move is
    /// pending. Its rows are keyed by text, so the tag cannot bound a
    /// range: this reads the account's rows. In practice it finds no
    /// table: the move runs to its end at open, before the store is
    /// shared and before the keying of old mail (super::opening::moves).
    /// Should a store ever be written with the move pending (a test stops
    /// it midway), deletion stays exact at the cost of the scan.
    fn old_texts_of(&self, acct: &str, tag: KeyTag, id: u64) -> Result<Vec<String>> {
        let Some(old) = &self.old else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in old.range((acct, "")..).context("read content")? {
            let (k, v) = row.context("read content")?;
            let (a, text) = k.value();
            if a != acct {
                break;
            }
            if v.value() == id && tag_of(text) == Some(tag) {
                out.push(text.to_string());
            }
        }
        Ok(out)
    }

    /// Every key of `acct`, tombstones included (a deleted account).
    pub(super) fn remove_account(&mut self, acct: &str) -> Result<()> {
        let mut keys = Vec::new();
        for row in self
            .keys
            .range((acct, &[0u8; 32])..)
            .context("read content")?
        {
            let (k, _) = row.context("read content")?;
            let (a, key) = k.value();
            if a != acct {
                break;
            }
            keys.push(*key);
        }
        for k in &keys {
            self.keys.remove((acct, k)).context("write content")?;
        }
        if let Some(old) = &mut self.old {
            let mut texts = Vec::new();
            for row in old.range((acct, "")..).context("read content")? {
                let (k, _) = row.context("read content")?;
                let (a, text) = k.value();
                if a != acct {
                    break;
                }
                texts.push(text.to_string());
            }
            for t in &texts {
                old.remove((acct, t.as_str())).context("write content")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
