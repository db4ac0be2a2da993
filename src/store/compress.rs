//! Raw mails stored compressed, in the `raw_packed` table (schema 9).
//!
//! Why: redb gives a value that does not fit a 4 KiB leaf page a run of
//! pages of its own, so a ~4.4 KiB mail took 8 KiB plus its index, more
//! than a Maildir file. Compressed with zstd (RFC 8878) the same mail is
//! 1–2 KB, and several such rows share one leaf page. docs/PERFORMANCE.md
//! ("Raw mail compression") has the measurements that chose zstd at level
//! [`LEVEL`] over lz4, and those of the store's own dictionary ([`dict`],
//! schema 11).
//!
//! A row is one codec byte and the payload:
//! - [`STORED`]: the raw bytes as they are, for mails that do not shrink
//!   (the empty mail, a mail of already compressed attachments): never
//!   larger than the mail plus one byte;
//! - [`ZSTD`]: one zstd frame that records its content size, so that a
//!   read allocates exactly once and refuses a frame claiming more than
//!   [`MAX_RAW`];
//! - [`ZSTD_DICT`] (schema 11): the id of the store's dictionary and a
//!   zstd frame packed with it, see [`dict`]; rows of the other codecs stay
//!   as they are until [`recompress`] repacks them.
//!
//! Any other codec byte is a storage error, never a guess: a newer codec
//! comes with a new schema. `GetRaw` stays byte-exact (invariant 3): a
//! frame's content size is checked against what it unpacks to, and zstd
//! refuses a frame whose blocks do not decode.
//!
//! Migration: the schema step only creates the table; the rows of the old
//! `raw` table are moved over by [`pack_legacy`] at every open, in
//! transactions of at most [`PACK_ROWS`] rows or [`PACK_BYTES`] bytes, each
//! moving rows out of `raw` and into `raw_packed` atomically. The rows
//! still in `raw` are the progress: a kill at any point leaves every mail
//! in exactly one of the two tables, and the next open goes on where the
//! last committed transaction stopped. Reads look in both tables, so a
//! store restored from an older backup is readable before it is packed.

use redb::{Database, ReadTransaction, ReadableTable, Table, WriteTransaction};

use super::schema::{RAW, RAW_DICTS, RAW_PACKED};
use super::write_txn;
use crate::error::{Context, Error, Result};

pub mod dict;
pub mod recompress;

pub use dict::{Dict, Dicts, ZSTD_DICT};

/// Codec byte: the raw bytes follow unchanged.
pub const STORED: u8 = 0;
/// Codec byte: one zstd frame with its content size follows.
pub const ZSTD: u8 = 1;
/// zstd's level: 3 (its default) costs a fraction of a fetch's commit and
/// gets within a few percent of level 9 on mail; see docs/PERFORMANCE.md.
pub const LEVEL: i32 = 3;
/// The largest mail a row may claim to unpack to (the cap of a backup's
/// rows): a mail of more than 1 MiB is a blob file (`super::blobs`) unless
/// the CRM stored it itself (outbox, drafts), so a frame claiming more is
/// damage, not a mail.
pub const MAX_RAW: u64 = 64 * 1024 * 1024;
/// Rows moved per migration transaction.
pub const PACK_ROWS: usize = 500;
/// Raw bytes moved per migration transaction, so that a batch of big rows
/// keeps the write buffer small.
pub const PACK_BYTES: usize = 16 * 1024 * 1024;

/// The stored form of `raw`.
pub fn pack(raw: &[u8]) -> Result<Vec<u8>> {
    let z = zstd::bulk::compress(raw, LEVEL).context("compress a mail")?;
    let mut out = Vec::with_capacity(1 + z.len().min(raw.len()));
    if z.len() < raw.len() {
        out.push(ZSTD);
        out.extend_from_slice(&z);
    } else {
        out.push(STORED);
        out.extend_from_slice(raw);
    }
    Ok(out)
}

/// The raw bytes of a stored row of any codec; a [`ZSTD_DICT`] row finds
/// its dictionary in `dict_rows` (the `raw_dicts` table of the same
/// transaction) and prepared in `dicts`.
pub fn unpack_stored<T: ReadableTable<u32, &'static [u8]>>(
    row: &[u8],
    dict_rows: &T,
    dicts: &Dicts,
) -> Result<Vec<u8>> {
    match row.split_first() {
        Some((&ZSTD_DICT, payload)) => {
            let (id, frame) = dict::split(payload)?;
            let bytes = dict_rows.get(id).context("read mail dictionary")?;
            dict::unpack_with(dicts, id, bytes.as_ref().map(|b| b.value()), frame)
        }
        _ => unpack(row),
    }
}

/// The raw bytes of a stored row of codec [`STORED`] or [`ZSTD`]; a
/// [`ZSTD_DICT`] row needs [`unpack_stored`].
pub fn unpack(row: &[u8]) -> Result<Vec<u8>> {
    let Some((&codec, payload)) = row.split_first() else {
        return Err(Error::storage_msg("stored mail row is empty".into()));
    };
    match codec {
        STORED => Ok(payload.to_vec()),
        ZSTD => {
            let size = zstd::zstd_safe::get_frame_content_size(payload)
                .ok()
                .flatten()
                .filter(|n| *n <= MAX_RAW)
                .ok_or_else(|| {
                    Error::storage_msg("stored mail has no valid compressed size".into())
                })?;
            let size = usize::try_from(size)
                .map_err(|_| Error::storage_msg("stored mail is too large".into()))?;
            let raw = zstd::bulk::decompress(payload, size).context("decompress a mail")?;
            if raw.len() != size {
                return Err(Error::storage_msg(
                    "stored mail is shorter than its frame says".into(),
                ));
            }
            Ok(raw)
        }
        ZSTD_DICT => Err(Error::storage_msg(
            "stored mail needs its dictionary to be read".into(),
        )),
        other => Err(Error::storage_msg(format!(
            "stored mail has unknown codec {other}"
        ))),
    }
}

/// Store the raw bytes of message `id` in an open `raw_packed` table.
pub(super) fn insert(table: &mut Table<u64, &[u8]>, id: u64, raw: &[u8]) -> Result<()> {
    table
        .insert(id, pack(raw)?.as_slice())
        .context("write raw mail")?;
    Ok(())
}

/// The raw bytes of message `id` if a row holds them (packed, or an old
/// row not yet packed); None for a blob or an unknown id.
pub(super) fn read(tx: &ReadTransaction, dicts: &Dicts, id: u64) -> Result<Option<Vec<u8>>> {
    let packed = tx.open_table(RAW_PACKED).context("open raw")?;
    if let Some(v) = packed.get(id).context("read raw mail")? {
        let dict_rows = tx.open_table(RAW_DICTS).context("open mail dictionaries")?;
        return unpack_stored(v.value(), &dict_rows, dicts).map(Some);
    }
    let legacy = tx.open_table(RAW).context("open raw")?;
    let v = legacy.get(id).context("read raw mail")?;
    Ok(v.map(|g| g.value().to_vec()))
}

/// Remove the row of message `id`, wherever it is.
pub(super) fn remove(tx: &WriteTransaction, id: u64) -> Result<()> {
    tx.open_table(RAW_PACKED)
        .context("open raw")?
        .remove(id)
        .context("remove raw mail")?;
    tx.open_table(RAW)
        .context("open raw")?
        .remove(id)
        .context("remove raw mail")?;
    Ok(())
}

/// Move every row of the old `raw` table into `raw_packed` (see the module
/// docs); returns how many were moved. Cheap when there is nothing to do:
/// one read of an empty table.
pub(super) fn pack_legacy(db: &Database) -> Result<u64> {
    let mut moved = 0u64;
    loop {
        let tx = write_txn(db)?;
        let (n, done) = pack_some(&tx)?;
        if n == 0 {
            return Ok(moved);
        }
        tx.commit().context("commit packed mails")?;
        moved += n as u64;
        tracing::info!(moved, "packing stored mails (schema 9)");
        if done {
            return Ok(moved);
        }
    }
}

/// One bounded transaction of [`pack_legacy`]: (rows moved, raw table empty).
fn pack_some(tx: &WriteTransaction) -> Result<(usize, bool)> {
    let mut legacy = tx.open_table(RAW).context("open raw")?;
    let mut packed = tx.open_table(RAW_PACKED).context("open raw")?;
    let (mut rows, mut bytes) = (0usize, 0usize);
    while rows < PACK_ROWS && bytes < PACK_BYTES {
        let Some((id, raw)) = legacy
            .pop_first()
            .context("read raw mail")?
            .map(|(k, v)| (k.value(), v.value().to_vec()))
        else {
            return Ok((rows, true));
        };
        insert(&mut packed, id, &raw)?;
        rows += 1;
        bytes += raw.len();
    }
    Ok((rows, false))
}

#[cfg(test)]
mod dict_tests;
#[cfg(test)]
mod tests;
