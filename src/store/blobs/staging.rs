//! The writing side of blobs: a mail streamed into a staging file
//! ([`BlobWriter`]), the finished file waiting for its commit
//! ([`StagedBlob`]), and [`Raw`], the bytes of a fetched mail either way.
//! See `super` for the file layout and the crash rules.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::digest::{Digester, MailKeys};

/// A file-system error of the blob files; a full disk says so first.
pub(super) fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    let full = match e.kind() {
        std::io::ErrorKind::StorageFull => "no space left for the store: ",
        _ => "",
    };
    Error::storage(&format!("{full}{what} {}", path.display()), e)
}

/// The bytes of a fetched mail: in memory, or (above
/// [`super::BLOB_MIN`]) streamed into a blob file (see
/// `super` for why big mails never pass through redb).
#[derive(Debug)]
pub enum Raw {
    Bytes(Vec<u8>),
    Blob(StagedBlob),
}

impl Raw {
    /// Length of the whole mail.
    pub fn len(&self) -> u64 {
        match self {
            Raw::Bytes(b) => b.len() as u64,
            Raw::Blob(b) => b.len(),
        }
    }

    /// Whether the mail is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of it held in memory (a blob keeps only its head): what a
    /// fetcher counts against its memory budget.
    pub fn in_memory(&self) -> u64 {
        match self {
            Raw::Bytes(b) => b.len() as u64,
            Raw::Blob(b) => b.head().len() as u64,
        }
    }
}

impl Raw {
    /// Lower-case hex SHA-256 of the whole mail (the content key).
    pub fn sha256_hex(&self) -> String {
        match self {
            Raw::Bytes(b) => crate::store::sha256_hex(b),
            Raw::Blob(b) => b.sha256.clone(),
        }
    }

    /// The keys that recognise the mail whatever bookkeeping fields a
    /// server wrote into it (crate::store::digest).
    pub fn keys(&self) -> MailKeys {
        match self {
            Raw::Bytes(b) => MailKeys::of(b),
            Raw::Blob(b) => b.keys.clone(),
        }
    }

    /// What the summary is made from: the whole mail, or a blob's head.
    pub fn summary_bytes(&self) -> &[u8] {
        match self {
            Raw::Bytes(b) => b,
            Raw::Blob(b) => &b.head,
        }
    }
}

impl From<Vec<u8>> for Raw {
    fn from(bytes: Vec<u8>) -> Raw {
        Raw::Bytes(bytes)
    }
}

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    crate::hex::lower(bytes)
}

/// Streams one mail into a staging file; see `super`. Blocking
/// I/O: async callers run it on the blocking pool.
pub struct BlobWriter {
    /// None once finished.
    file: Option<File>,
    path: PathBuf,
    len: u64,
    hasher: Sha256,
    digester: Digester,
    head: Vec<u8>,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("path", &self.path)
            .field("len", &self.len)
            .finish()
    }
}

impl BlobWriter {
    /// A new, empty staging file at `path` (mode 0600; it must not exist).
    pub(super) fn create(path: PathBuf) -> Result<BlobWriter> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_err("cannot create", &path, e))?;
        Ok(BlobWriter {
            file: Some(file),
            path,
            len: 0,
            hasher: Sha256::new(),
            digester: Digester::default(),
            head: Vec::new(),
        })
    }

    /// Appends `buf`, exactly as received (invariant 3).
    pub fn write(&mut self, buf: &[u8]) -> Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::storage_msg("blob written after it was finished".into()))?;
        file.write_all(buf)
            .map_err(|e| io_err("cannot write", &self.path, e))?;
        self.hasher.update(buf);
        self.digester.update(buf);
        self.len = self.len.saturating_add(buf.len() as u64);
        let room = super::HEAD_BYTES.saturating_sub(self.head.len());
        self.head
            .extend_from_slice(buf.get(..room.min(buf.len())).unwrap_or_default());
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// fsyncs the file and hands it over for [`Store::commit_batch`](super::Store::commit_batch).
    pub fn finish(mut self) -> Result<StagedBlob> {
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::storage_msg("blob finished twice".into()))?;
        file.sync_all()
            .map_err(|e| io_err("cannot sync", &self.path, e))?;
        drop(file);
        let hasher = std::mem::take(&mut self.hasher);
        Ok(StagedBlob {
            path: std::mem::take(&mut self.path),
            len: self.len,
            sha256: hex(&hasher.finalize()),
            keys: std::mem::take(&mut self.digester).finish(),
            head: std::mem::take(&mut self.head),
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A finished, fsynced blob waiting in `tmp/` for its commit; dropped
/// uncommitted (a known mail, a failed batch), it removes its file.
pub struct StagedBlob {
    path: PathBuf,
    len: u64,
    sha256: String,
    keys: MailKeys,
    head: Vec<u8>,
}

impl StagedBlob {
    /// Renames the file to `to` (replacing what is there); from then on
    /// dropping this no longer removes it.
    pub(super) fn move_to(mut self, to: &Path) -> Result<()> {
        std::fs::rename(&self.path, to).map_err(|e| io_err("cannot move blob to", to, e))?;
        self.path = PathBuf::new();
        Ok(())
    }

    /// Length of the whole mail.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the mail is empty (never, for a blob, in practice).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// SHA-256 of the whole mail, as `super::sha256_hex` of its bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The first [`super::HEAD_BYTES`] of the mail, for its summary.
    pub fn head(&self) -> &[u8] {
        &self.head
    }
}

impl std::fmt::Debug for StagedBlob {
    /// Path, length and hash; never the mail's content.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedBlob")
            .field("path", &self.path)
            .field("len", &self.len)
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
