//! Which blob files may be deleted without a row pointing to them.
//!
//! A file `blobs/<id>` that no `blobs` row names is deleted only when the
//! database proves that the transaction that made or removed it is over:
//! 1. `id >= next_message`: the file was renamed into place by a batch
//!    whose commit never happened. A batch reads `next_message` inside its
//!    write transaction, names its files from there on and advances the
//!    counter in the same transaction as the rows, so a committed batch
//!    always leaves `next_message` above its files.
//! 2. `id` in the `blob_trash` table: a deletion committed its row's
//!    removal together with this entry and then unlinks the file; a crash
//!    or a failed unlink in between leaves the entry.
//!
//! Every other file without a row is kept and counted in a warning: the
//! database cannot tell whose it is (a store file replaced by an older
//! copy, a file put there by hand), and deleting it could delete the only
//! copy of a mail. Files in `tmp/` are staging files no row can name
//! (`super::BlobDir::open` empties it at start).
//!
//! The sweep runs after every open of the database (start and reopen,
//! `super::super::health`); the trash is also drained by each later
//! deletion, so it stays small. While a snapshot pins the blobs, files of
//! deleted mails stay (their trash entries too) so that the snapshot can
//! still read them; the next drain after it ends removes them.

use std::collections::BTreeSet;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableError};

use super::{blob_len, BlobDir};
use crate::error::{Context, Error, Result};
use crate::store::schema::{BLOB_TRASH, KEY_NEXT_MESSAGE, META};
use crate::store::write_txn;

/// The committed `next_message` counter (1 in a store without mail).
fn next_message(tx: &ReadTransaction) -> Result<u64> {
    let meta = tx.open_table(META).context("open meta")?;
    let value = meta.get(KEY_NEXT_MESSAGE).context("read meta")?;
    match value {
        None => Ok(1),
        Some(g) => {
            g.value().try_into().map(u64::from_be_bytes).map_err(|_| {
                Error::storage_msg(format!("meta value {KEY_NEXT_MESSAGE} is damaged"))
            })
        }
    }
}

/// The ids in `blob_trash` (none if the table was never made).
fn trash_ids(tx: &ReadTransaction) -> Result<BTreeSet<u64>> {
    let table = match tx.open_table(BLOB_TRASH) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(BTreeSet::new()),
        Err(e) => return Err(Error::storage("open blob trash", e)),
    };
    let mut ids = BTreeSet::new();
    for row in table.iter().context("read blob trash")? {
        ids.insert(row.context("read blob trash")?.0.value());
    }
    Ok(ids)
}

/// The sweep of the module docs, on a database just opened for writing.
pub(crate) fn sweep(db: &Database, dir: &BlobDir) -> Result<()> {
    let files = dir.ids()?;
    let trash = {
        let tx = db.begin_read().context("begin read")?;
        let trash = trash_ids(&tx)?;
        if files.is_empty() && trash.is_empty() {
            return Ok(());
        }
        let next = next_message(&tx)?;
        let (mut failed, mut deleted, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
        for id in files {
            if blob_len(&tx, id)?.is_some() {
                continue;
            }
            if id >= next {
                failed.push(id);
            } else if trash.contains(&id) {
                deleted.push(id);
            } else {
                unknown.push(id);
            }
        }
        if !failed.is_empty() {
            tracing::info!(
                count = failed.len(),
                "removing blob files of batches that did not commit"
            );
            dir.discard(&failed);
        }
        dir.unlink_deleted(&deleted);
        if !unknown.is_empty() {
            let some: Vec<String> = unknown.iter().take(10).map(u64::to_string).collect();
            tracing::warn!(
                count = unknown.len(),
                "kept {} file(s) in {} that no message points to and no failed transaction \
                 explains (e.g. {}); they may be mail of another copy of the store",
                unknown.len(),
                dir.dir.display(),
                some.join(", ")
            );
        }
        trash
    };
    if !trash.is_empty() && !dir.pinned() {
        let tx = write_txn(db)?;
        drain(&tx, dir)?;
        tx.commit().context("commit blob trash")?;
    }
    Ok(())
}

/// Inside a deletion's transaction: unlinks the files of earlier
/// deletions (already committed) and empties the trash, unless a snapshot
/// pins the blobs.
pub(crate) fn drain(tx: &redb::WriteTransaction, dir: &BlobDir) -> Result<()> {
    if dir.pinned() {
        return Ok(());
    }
    let mut table = tx.open_table(BLOB_TRASH).context("open blob trash")?;
    let mut ids = Vec::new();
    for row in table.iter().context("read blob trash")? {
        ids.push(row.context("read blob trash")?.0.value());
    }
    dir.unlink_deleted(&ids);
    for id in ids {
        table.remove(id).context("write blob trash")?;
    }
    Ok(())
}

/// Inside a deletion's transaction: records the blobs whose rows it removes.
pub(crate) fn trash(tx: &redb::WriteTransaction, ids: &[u64]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut table = tx.open_table(BLOB_TRASH).context("open blob trash")?;
    for &id in ids {
        table.insert(id, ()).context("write blob trash")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
