//! The embedded store (redb): accounts, secrets, fetched mail and its index.
//!
//! Mail is deleted from servers once it is stored (ARCHITECTURE.md "Invariants", invariant
//! 1), so every write transaction is durable when `commit` returns:
//! `Durability::Immediate` plus two-phase commit, which redb needs to be
//! safe against a torn write of the commit slot (redb design doc, "2-phase
//! commit"). The store is opened by one daemon at a time; a lock file names
//! the pid that holds it.
//!
//! A damaged store never costs mail: [`opening`] refuses a missing, empty,
//! foreign or corrupted store file without writing to it; `health` is the
//! boundary of every store call (a redb panic becomes a Storage error of
//! that call, an I/O error such as a full disk reopens the database once it
//! can be, without a restart); [`blobs`] deletes only files of transactions
//! it can prove failed. The database can be replaced under running callers
//! ([`Store::swap`], see `swap` for what they see): the reopen after a
//! failure uses it, and so can a restore.
//!
//! Files: [`schema`] (tables, meta, migrations), [`secret`] (encryption at
//! rest), `accounts` (accounts and secrets), `messages` (fetched mail),
//! [`blobs`] (big mails as files in `blobs/`, see there why),
//! `tracking` (server ids, content hashes, sync state), [`content`]
//! (the content index and its keys), `purge` (what an
//! account deletion removes), `views` (visibility classes and the scopes a
//! message is listed in), `rank` (counts and deep offsets in O(log n)),
//! `list` (paging and visibility checks), `signatures` (signatures and
//! employees per tenant), `outbox` (mails being sent and their queue
//! records), `drafts` (saved drafts and their places on the server),
//! `packer` (a batch's raw rows and the store's mail dictionary),
//! `backend` (how redb reaches the file), `opening`, `health`,
//! `swap`, `snapshot` (what a backup reads), `reset` (the restore safety
//! reset), [`identity`] (the copied-store check).

mod account_row;
mod accounts;
mod adopt;
mod backend;
mod backup_files;
pub mod blobs;
pub mod closed;
pub mod compress;
pub mod content;
mod counters;
mod deltas;
pub mod digest;
mod drafts;
mod health;
pub mod identity;
pub mod install;
pub mod keytags;
mod list;
mod messages;
mod meta;
pub mod migrate;
mod numbers;
mod opening;
mod outbox;
mod packer;
mod purge;
mod rank;
mod rekey;
mod reset;
mod restored;
pub mod schema;
mod search;
/// The packed word index's row format, for tools and tests that read a
/// store or a backup.
pub use search::chunk as search_chunk;
/// The view list chunks' row format, likewise.
pub use views::chunk as view_chunk;
mod secret;
mod secret_export;
pub mod server_ids;
mod signatures;
mod snapshot;
mod stats;
pub mod summary;
mod swap;
mod tracking;
mod varint;
mod views;

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::ops::Deref;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::fcntl::{Flock, FlockArg};
use redb::{Database, Durability, ReadTransaction, ReadableDatabase, WriteTransaction};

pub use blobs::{BlobWriter, Raw, StagedBlob, BLOB_MIN};
pub use digest::MailKeys;
pub use drafts::{no_draft, DraftRecord, DRAFTS};
pub use list::{ListQuery, Visibility};
pub use messages::{sha256_hex, MessageMeta, NewMail, Summary};
pub use outbox::{OutboxRecord, OutboxState, Pending, HELD, OUTBOX};
pub use reset::Reset;
pub(crate) use restored::{log_restored_reset, reset_restored};
pub use secret::{Secret, SecretKind};
pub use secret_export::{BackupKey, KDF_M_KIB, KDF_P, KDF_T};
pub use snapshot::Snapshot;
pub use stats::OutboxCounts;

use crate::error::{Context, Error, Result};
use backend::Fault;
#[cfg(test)]
use opening::REDB_MAGIC;
use secret::SecretKey;
use swap::{Shared, Swappable};

/// File name of the store inside the state directory.
pub const DB_FILE: &str = "postfach.redb";
/// File name of the single-daemon lock inside the state directory.
pub const LOCK_FILE: &str = "postfachd.lock";

/// The store. Send + Sync; the daemon shares one `Arc<Store>`. Every method
/// blocks on disk I/O, so async callers run it in `spawn_blocking`.
pub struct Store {
    dir: PathBuf,
    path: PathBuf,
    /// The database now; replaced by [`Store::swap`] and the reopen after
    /// a failure.
    current: Swappable<Current>,
    /// The installation id of `current`, readable without waiting for a
    /// swap (a D-Bus property reads it on the async runtime).
    installation_id: Mutex<String>,
    health: health::Health,
    /// None when `secret.key` is missing: old secrets are unreadable, a new
    /// secret creates a new key.
    key: Mutex<Option<SecretKey>>,
    /// `blobs/` next to the database: mails above [`BLOB_MIN`].
    blobs: blobs::BlobDir,
    /// The prepared mail dictionaries (`compress::dict`).
    dicts: compress::Dicts,
    /// Held for the life of the store; dropping it releases the flock.
    _lock: Flock<File>,
}

/// The database the store serves from.
#[derive(Debug, Default)]
struct Current {
    /// None: closed after a failure that a reopen could not repair yet.
    db: Option<Database>,
    /// False while only a read-only view could be opened (full disk).
    writable: bool,
    installation_id: String,
    /// The first I/O error of `db`'s file.
    fault: Arc<Fault>,
    /// The summary labels `db`'s readers have met (`summary::labels`):
    /// they belong to this file, so a swap drops them with it.
    labels: summary::LabelCache,
    /// View scope numbers read from `db` (`views::scopes`); they belong to
    /// this database, so a swap starts with an empty cache.
    scopes: views::scopes::ScopeCache,
    /// Word index places by number read from `db` (`search::places`),
    /// likewise.
    places: search::places::PlaceCache,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens or creates `<state_dir>/postfach.redb` (see `opening` for
    /// what is refused and why nothing is written before the checks).
    /// Busy if another daemon holds the directory; Storage otherwise.
    pub fn open(state_dir: &Path) -> Result<Store> {
        if !state_dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(state_dir)
                .map_err(|e| {
                    Error::storage(&format!("cannot create {}", state_dir.display()), e)
                })?;
        }
        let lock = take_lock(state_dir)?;
        // A restore interrupted by a crash is finished or undone first.
        install::recover(state_dir)?;
        let (current, key) = opening::open_checked(state_dir, opening::Pages::Check)?;
        let blobs = blobs::BlobDir::open(state_dir)?;
        if let Some(db) = &current.db {
            // Housekeeping: what it leaves, a later sweep removes.
            if let Err(e) = blobs::sweep(db, &blobs) {
                tracing::warn!("blob files not swept at start: {e}");
            }
        }
        Ok(Store {
            dir: state_dir.to_path_buf(),
            path: state_dir.join(DB_FILE),
            installation_id: Mutex::new(current.installation_id.clone()),
            current: Swappable::new(current),
            health: health::Health::default(),
            key: Mutex::new(key),
            blobs,
            dicts: compress::Dicts::default(),
            _lock: lock,
        })
    }

    /// Random id written at first start; a restored or copied store is
    /// recognised by it. Follows a [`Store::swap`].
    pub fn installation_id(&self) -> String {
        let id = self.installation_id.lock();
        id.unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Path of the store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A durable write transaction (module docs: Immediate + two-phase).
    /// Storage error while the store is closed or read-only after a
    /// failure (see `health`).
    pub(crate) fn write(&self) -> Result<WriteTx<'_>> {
        let current = self.current.read();
        let tx = match (&current.db, current.writable) {
            (Some(db), true) => write_txn(db)?,
            (Some(_), false) => return Err(self.read_only()),
            (None, _) => return Err(self.unusable()),
        };
        Ok(WriteTx {
            tx,
            store: self,
            _current: current,
        })
    }

    pub(crate) fn read(&self) -> Result<ReadTx<'_>> {
        let current = self.current.read();
        let tx = match &current.db {
            Some(db) => db.begin_read().context("begin read")?,
            None => return Err(self.unusable()),
        };
        Ok(ReadTx {
            tx,
            _current: current,
        })
    }
}

/// A write transaction on the current database; no swap happens while it
/// lives. Derefs to redb's transaction.
pub(crate) struct WriteTx<'a> {
    // Declared first: dropped (aborted) before the database may go.
    tx: WriteTransaction,
    store: &'a Store,
    _current: Shared<'a, Current>,
}

impl Deref for WriteTx<'_> {
    type Target = WriteTransaction;
    fn deref(&self) -> &WriteTransaction {
        &self.tx
    }
}

impl WriteTx<'_> {
    /// Commits. A failed commit may or may not have reached the disk, so
    /// the store is reopened before its next call and the blob files of
    /// the batch are judged against what the file then says (`blobs`).
    pub(crate) fn commit(self) -> std::result::Result<(), redb::CommitError> {
        let WriteTx {
            tx,
            store,
            _current,
        } = self;
        let result = tx.commit();
        match &result {
            Ok(()) => store.health.wrote(),
            // An I/O error of the file says why; any other failure is
            // recorded as it is.
            Err(e) => {
                if store.fault_headline(&_current.fault).is_none() {
                    let why = format!("a commit failed ({e}); the store is reopened");
                    store.health.trouble(Error::storage_msg(why), false);
                }
            }
        }
        result
    }
}

/// A read transaction (a snapshot) on the current database; no swap
/// happens while it lives.
pub(crate) struct ReadTx<'a> {
    tx: ReadTransaction,
    _current: Shared<'a, Current>,
}

impl ReadTx<'_> {
    /// The scope numbers known of this transaction's database.
    pub(in crate::store) fn scopes(&self) -> &views::scopes::ScopeCache {
        &self._current.scopes
    }

    /// The word index places known of this transaction's database.
    pub(in crate::store) fn places(&self) -> &search::places::PlaceCache {
        &self._current.places
    }
}

impl Deref for ReadTx<'_> {
    type Target = ReadTransaction;
    fn deref(&self) -> &ReadTransaction {
        &self.tx
    }
}

impl ReadTx<'_> {
    /// The summary labels of this transaction, through the cache of its
    /// database (`summary::labels`).
    pub(crate) fn labels(&self) -> Result<summary::Labels<'_>> {
        summary::Labels::read(&self.tx, Some(&self._current.labels))
    }
}

fn write_txn(db: &Database) -> Result<WriteTransaction> {
    let mut tx = db.begin_write().context("begin write")?;
    tx.set_durability(Durability::Immediate)
        .context("set durability")?;
    tx.set_two_phase_commit(true);
    Ok(tx)
}

/// Take the exclusive, non-blocking flock on `postfachd.lock` and write our
/// pid into it, so a second daemon can say who holds the directory.
fn take_lock(dir: &Path) -> Result<Flock<File>> {
    let path = dir.join(LOCK_FILE);
    let ctx = format!("cannot open lock file {}", path.display());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::storage(&ctx, e))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            lock.set_len(0)
                .and_then(|()| lock.rewind())
                .and_then(|()| writeln!(*lock, "{}", std::process::id()))
                .map_err(|e| Error::storage(&ctx, e))?;
            Ok(lock)
        }
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let pid = if pid.is_empty() { "unknown" } else { pid };
            Err(Error::Busy(format!(
                "another postfachd (pid {pid}) is using {}",
                dir.display()
            )))
        }
        Err((_, errno)) => Err(Error::storage(&ctx, errno)),
    }
}

#[cfg(test)]
pub(crate) mod tests;
