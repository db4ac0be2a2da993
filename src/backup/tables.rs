//! The store tables a backup carries, and how their rows travel: out of a
//! redb read transaction into a `table:<name>` section ([`dump`]), and
//! from a verified section into a new database ([`load`]).
//!
//! Rows are `key_len u32 ‖ key ‖ value_len u32 ‖ value` (big-endian
//! lengths) in redb's own encoding of the table's types. A reader of a
//! backup trusts no row: lengths are capped, fixed-width types must have
//! their width, and redb's decoders (which panic on malformed bytes, e.g.
//! a key that is not UTF-8) run under `catch_unwind` in the caller.

use std::io::{Read, Write};

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use crate::error::{Context, Error, Result};

/// Calls the macro `$m` on every table that a backup carries, in a fixed
/// order. Not among them: `secrets` (a backup never carries the stored
/// form; see `super::secrets`) and `blob_trash` (deletions in progress,
/// meaningless in another installation).
macro_rules! for_tables {
    ($m:ident) => {
        $m!($crate::store::schema::META);
        $m!($crate::store::schema::ACCOUNTS);
        $m!($crate::store::schema::SYNC);
        $m!($crate::store::schema::RAW);
        $m!($crate::store::schema::RAW_PACKED);
        $m!($crate::store::schema::RAW_DICTS);
        $m!($crate::store::schema::BLOBS);
        $m!($crate::store::schema::MESSAGES);
        $m!($crate::store::schema::SUMMARY_LABELS);
        $m!($crate::store::schema::SUMMARY_LABEL_IDS);
        $m!($crate::store::schema::SERVER_IDS);
        $m!($crate::store::schema::SERVER_UIDS);
        $m!($crate::store::schema::CONTENT);
        $m!($crate::store::schema::CONTENT_KEYS);
        $m!($crate::store::schema::MESSAGE_SIDS);
        $m!($crate::store::schema::VIEW_INDEX);
        $m!($crate::store::schema::BUCKETS);
        $m!($crate::store::schema::VIEW_COUNTS);
        $m!($crate::store::schema::VIEW_SCOPES);
        $m!($crate::store::schema::VIEW_ENTRIES);
        $m!($crate::store::schema::VIEW_CHUNKS);
        $m!($crate::store::schema::VIEW_TOTALS);
        $m!($crate::store::schema::VIEW_ARRAYS);
        $m!($crate::store::schema::SIGNATURES);
        $m!($crate::store::schema::EMPLOYEES);
        $m!($crate::store::schema::EMPLOYEE_IMAGES);
        $m!($crate::store::schema::OUTBOX);
        $m!($crate::store::schema::OUTBOX_ACTIVE);
        $m!($crate::store::schema::DRAFTS);
        $m!($crate::store::schema::SEARCH_INDEX);
        $m!($crate::store::schema::SEARCH_POSTINGS);
        $m!($crate::store::schema::SEARCH_PLACES);
        $m!($crate::store::schema::SEARCH_PLACE_NAMES);
    };
}
pub(crate) use for_tables;

/// The longest key or value a restore accepts: more than any row the
/// store writes (mails above 1 MiB are blob files; pictures are small).
pub const ROW_PART_MAX: u32 = 64 * 1024 * 1024;

/// The section name of a table.
pub fn section_name<K: redb::Key + 'static, V: redb::Value + 'static>(
    def: &TableDefinition<K, V>,
) -> String {
    format!("table:{}", redb::TableHandle::name(def))
}

/// Rows of one table into `out`; returns how many.
pub fn dump<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &ReadTransaction,
    def: TableDefinition<K, V>,
    out: &mut dyn Write,
) -> Result<u64> {
    // A table the store dropped (the word index of schema 9, once packed)
    // is an empty section, so that the list of sections stays fixed.
    let table = match tx.open_table(def) {
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        t => t.context("open a table for the backup")?,
    };
    let mut rows = 0;
    for row in table.iter().context("read a table for the backup")? {
        let (k, v) = row.context("read a table for the backup")?;
        let kv = k.value();
        let vv = v.value();
        for part in [K::as_bytes(&kv).as_ref(), V::as_bytes(&vv).as_ref()] {
            let len = u32::try_from(part.len())
                .map_err(|_| Error::storage_msg("a stored row is too long to back up".into()))?;
            out.write_all(&len.to_be_bytes())
                .and_then(|()| out.write_all(part))
                .context("write the backup")?;
        }
        rows += 1;
    }
    Ok(rows)
}

fn bad(why: impl std::fmt::Display) -> Error {
    Error::invalid("fd", format!("not a usable postfach backup: {why}"))
}

/// One length-prefixed part; None at a clean end of the input.
fn part(input: &mut dyn Read, width: Option<usize>, at_row_start: bool) -> Result<Option<Vec<u8>>> {
    let mut l = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = input
            .read(l.get_mut(got..).unwrap_or_default())
            .context("read a staged table")?;
        if n == 0 {
            return match (got, at_row_start) {
                (0, true) => Ok(None),
                _ => Err(bad("a table row is cut off")),
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(l);
    if len > ROW_PART_MAX || width.is_some_and(|w| w != len as usize) {
        return Err(bad("a table row has an impossible length"));
    }
    let mut buf = vec![0u8; len as usize];
    input
        .read_exact(&mut buf)
        .map_err(|_| bad("a table row is cut off"))?;
    Ok(Some(buf))
}

/// The rows of a verified section into `def` of `tx`; returns how many.
/// May panic on malformed row bytes (module docs): run it under
/// `catch_unwind`.
pub fn load<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &WriteTransaction,
    def: TableDefinition<K, V>,
    input: &mut dyn Read,
) -> Result<u64> {
    let mut table = tx.open_table(def).context("create a restored table")?;
    let mut rows = 0;
    while let Some(k) = part(input, K::fixed_width(), true)? {
        let v = part(input, V::fixed_width(), false)?.ok_or_else(|| bad("a row is cut off"))?;
        table
            .insert(K::from_bytes(&k), V::from_bytes(&v))
            .context("write a restored row")?;
        rows += 1;
    }
    Ok(rows)
}
