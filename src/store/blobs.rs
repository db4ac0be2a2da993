//! Big mails as files next to the database: `<state dir>/blobs/<id>`.
//!
//! Why not redb: a value larger than a page gets a power-of-two run of
//! pages in a dirty page buffer (a 10 MB mail: 16 MB), and after the commit
//! redb keeps flushed pages in its read cache (`CACHE_BYTES`, 32 MB), so a
//! single big mail passing through redb costs up to 3–5 times its size in
//! memory. Shrinking the cache is no option: the mailbox queries at a
//! million mails live on it. So a mail above [`BLOB_MIN`] is never held
//! whole in memory and never stored as a redb value: the fetcher streams it
//! into a [`BlobWriter`] (a file in `blobs/tmp/`), and
//! [`Store::commit_batch`](super::Store::commit_batch) renames it to
//! `blobs/<message id>` and records its length in the `blobs` table, in the
//! same transaction as the mail's index entries (the blobdir of Delta Chat
//! has the same shape).
//!
//! Durability (ARCHITECTURE.md "Invariants", 1): [`BlobWriter::finish`] fsyncs
//! the file; the commit renames every blob of the batch, fsyncs the
//! `blobs/` directory once, and only then commits the rows that point to
//! the files. A crash can leave:
//! - a file in `tmp/`: never committed; [`BlobDir::open`] empties `tmp/`;
//! - `blobs/<id>` without a row (crash between rename and commit, or between
//!   a deletion's commit and its unlink): removed by the sweep after the
//!   next open, which deletes only what the database proves dead (`sweep`:
//!   the batch never committed, or the deletion did). An id whose batch
//!   never committed is handed out again, and the rename of the next batch
//!   replaces such a leftover atomically. A commit that itself failed
//!   keeps its files (it may have reached the disk all the same): the store
//!   reopens before its next call (`super::health`) and sweeps them if the
//!   commit did not happen.
//!
//! A backup reads a [`super::Snapshot`], which pins the files of mails
//! deleted while it lives; a restore must replace the redb file and
//! `blobs/` together ([`super::Store::swap`]).
//!
//! Summary: a blob mail is summarised by `crate::mime::summarize` from
//! its first [`HEAD_BYTES`] only (`size` is the blob's length), so the
//! whole mail is never read back for the index. The header block fits in
//! practice; when it does not, the headers past the cut are missing (a
//! `Subject` or `Date` after 64 KiB of `Received:` lines gets the usual
//! fallbacks: empty subject, the received time), and the header cut in
//! the middle is kept truncated or dropped. A multipart mail's attachments are judged
//! from the parts that start within the head: a mail whose only attachment
//! starts after a 64 KiB text part is listed without `has_attachments`
//! (`GetMessage` parses the whole mail and lists it). Parsing never
//! decides whether a mail is stored (invariant 4).
//!
//! Dropping an unfinished [`BlobWriter`] or an uncommitted [`StagedBlob`]
//! removes its file, so a failed or skipped download leaves nothing behind
//! in a long-running daemon.

mod staging;
mod sweep;

use std::fs::{DirBuilder, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::RngCore;
use redb::ReadTransaction;

use staging::io_err;
pub use staging::{BlobWriter, Raw, StagedBlob};
pub(crate) use sweep::{drain, sweep, trash};

use super::schema::BLOBS;
use super::Store;
use crate::error::Context;
use crate::error::{Error, Result};

/// Mails larger than this (by the server's announced size) are streamed
/// into blob files. 1 MiB: small enough that the fetcher's and redb's
/// copies of a mail stay a few MB, large enough that ordinary mail (the
/// vast majority is under 100 KB) keeps one transaction and no extra files.
pub const BLOB_MIN: u64 = 1024 * 1024;

/// Whether a mail of this size (as the server lists it: IMAP RFC822.SIZE,
/// POP3 LIST) is streamed into a blob file by the fetchers.
pub fn is_big(listed_size: u64) -> bool {
    listed_size > BLOB_MIN
}

/// What a mail of this listed size holds in memory once downloaded: the
/// whole mail, or a blob's head. The fetchers' memory budget
/// (crate::pipeline) counts this, not the listed size.
pub fn held(listed_size: u64) -> u64 {
    if is_big(listed_size) {
        HEAD_BYTES as u64
    } else {
        listed_size
    }
}

/// How much of a blob's start is kept in memory for its summary: the
/// header block of real mail is a few KB, rarely more than 20 KB
/// (long `Received:` chains); the module docs say what happens when it
/// does not fit.
pub const HEAD_BYTES: usize = 64 * 1024;

/// Directory name of the blobs inside the state directory.
pub const BLOB_DIR: &str = "blobs";
/// Staging directory inside [`BLOB_DIR`].
const TMP_DIR: &str = "tmp";

/// The `blobs/` directory of a store.
#[derive(Debug)]
pub(crate) struct BlobDir {
    dir: PathBuf,
    /// Snapshots alive: files of deleted mails stay while there are any.
    pins: AtomicUsize,
}

/// Keeps the files of deleted mails while it lives (see `sweep`).
#[derive(Debug)]
pub(crate) struct Pin<'a>(&'a BlobDir);

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        self.0.pins.fetch_sub(1, Ordering::SeqCst);
    }
}

impl BlobDir {
    /// Creates `blobs/` and `blobs/tmp/` (0700) and empties `tmp/`: whatever
    /// is staged there was never committed (see the module docs).
    pub(crate) fn open(state_dir: &Path) -> Result<BlobDir> {
        let dir = state_dir.join(BLOB_DIR);
        let tmp = dir.join(TMP_DIR);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tmp)
            .map_err(|e| io_err("cannot create", &tmp, e))?;
        for entry in std::fs::read_dir(&tmp).map_err(|e| io_err("cannot list", &tmp, e))? {
            let path = entry.map_err(|e| io_err("cannot list", &tmp, e))?.path();
            std::fs::remove_file(&path).map_err(|e| io_err("cannot remove", &path, e))?;
        }
        // The directories themselves must survive a crash like the files
        // renamed into them: their entries are made durable once, here.
        for d in [state_dir, dir.as_path()] {
            File::open(d)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_err("cannot sync", d, e))?;
        }
        Ok(BlobDir {
            dir,
            pins: AtomicUsize::new(0),
        })
    }

    /// The committed file of message `id`.
    pub(crate) fn path(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// Message ids that have a file in `blobs/` (names that are not a
    /// number are not ours and stay).
    pub(crate) fn ids(&self) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        let list = std::fs::read_dir(&self.dir).map_err(|e| io_err("cannot list", &self.dir, e))?;
        for entry in list {
            let entry = entry.map_err(|e| io_err("cannot list", &self.dir, e))?;
            if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// A new staging file `tmp/<random>`, mode 0600.
    pub(crate) fn writer(&self) -> Result<BlobWriter> {
        let mut name = [0u8; 12];
        rand::rngs::OsRng
            .try_fill_bytes(&mut name)
            .map_err(|e| Error::storage("no randomness for a blob file name", e))?;
        let name: String = crate::hex::lower(&name);
        BlobWriter::create(self.dir.join(TMP_DIR).join(name))
    }

    /// Moves a staged blob to `blobs/<id>` (replacing a leftover of an
    /// uncommitted batch). Not durable until
    /// [`BlobDir::sync`].
    pub(crate) fn commit_file(&self, blob: StagedBlob, id: u64) -> Result<()> {
        blob.move_to(&self.path(id))
    }

    /// fsync of `blobs/`: makes the renames into it durable.
    pub(crate) fn sync(&self) -> Result<()> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("cannot sync", &self.dir, e))
    }

    /// Removes files that no committed row names: those of a batch that
    /// failed before its commit.
    pub(crate) fn discard(&self, ids: &[u64]) {
        self.unlink(ids, "cannot remove blob of an uncommitted batch");
    }

    /// Removes the files of deleted messages once their deletion committed,
    /// unless a snapshot pins them; a file left here stays in the trash
    /// for a later drain (`sweep`), so failures are logged, not returned.
    pub(crate) fn unlink_deleted(&self, ids: &[u64]) {
        if !self.pinned() {
            self.unlink(ids, "cannot remove blob of a deleted mail");
        }
    }

    fn unlink(&self, ids: &[u64], what: &str) {
        for &id in ids {
            let path = self.path(id);
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), "{what}: {e}");
                }
            }
        }
    }

    /// Holds the files of mails deleted from now on until it is dropped.
    pub(crate) fn pin(&self) -> Pin<'_> {
        self.pins.fetch_add(1, Ordering::SeqCst);
        Pin(self)
    }

    pub(crate) fn pinned(&self) -> bool {
        self.pins.load(Ordering::SeqCst) > 0
    }
}

/// The length the `blobs` table records for message `id`, if it is a blob.
pub(super) fn blob_len(tx: &ReadTransaction, id: u64) -> Result<Option<u64>> {
    let t = tx.open_table(BLOBS).context("open blobs")?;
    let v = t.get(id).context("read blob row")?;
    Ok(v.map(|g| g.value()))
}

impl Store {
    /// A staging file for a mail above [`BLOB_MIN`]; hand the finished
    /// blob to [`Store::commit_batch`] as [`Raw::Blob`].
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        self.blobs.writer()
    }

    /// The file of blob message `id`, checked against the length its row
    /// records. A file deleted between the row lookup and the read (the
    /// message was deleted meanwhile) is None, as if the lookup came later;
    /// a file missing while its row exists is a Storage error.
    pub(super) fn read_blob(&self, id: u64, len: u64) -> Result<Option<Vec<u8>>> {
        let path = self.blobs.path(id);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() as u64 == len => Ok(Some(bytes)),
            Ok(bytes) => Err(Error::storage_msg(format!(
                "the file of message {id} ({}) has {} bytes, the store recorded {len}",
                path.display(),
                bytes.len()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if blob_len(&*self.read()?, id)?.is_none() {
                    return Ok(None);
                }
                Err(Error::storage_msg(format!(
                    "the file of message {id} ({}) is missing",
                    path.display()
                )))
            }
            Err(e) => Err(io_err("cannot read", &path, e)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
