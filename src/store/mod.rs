//! The embedded store (redb): accounts, secrets, fetched mail and its index.
//!
//! Mail is deleted from servers once it is stored (DESIGN.md §4, invariant
//! 1), so every write transaction is durable when `commit` returns:
//! `Durability::Immediate` plus two-phase commit, which redb needs to be
//! safe against a torn write of the commit slot (redb design doc, "2-phase
//! commit"). The store is opened by one daemon at a time; a lock file names
//! the pid that holds it.
//!
//! Files: [`schema`] (tables, meta, migrations), [`secret`] (encryption at
//! rest), `accounts` (accounts and secrets), `messages` (fetched mail),
//! [`blobs`] (big mails as files in `blobs/`, see there why),
//! `tracking` (server ids, content hashes, sync state), `purge` (what an
//! account deletion removes), `views` (visibility classes and the scopes a
//! message is listed in), `rank` (counts and deep offsets in O(log n)),
//! `list` (paging and visibility checks), `signatures` (signatures and
//! employees per tenant), `reset` (the restore safety reset), [`identity`]
//! (the copied-store check).

mod accounts;
mod backup_files;
pub mod blobs;
mod counters;
pub mod identity;
mod list;
mod messages;
mod purge;
mod rank;
mod reset;
pub mod schema;
mod secret;
mod signatures;
mod tracking;
mod views;

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::fcntl::{Flock, FlockArg};
use rand::RngCore;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableHandle, WriteTransaction};

pub use blobs::{BlobWriter, Raw, StagedBlob, BLOB_MIN};
pub use list::{ListQuery, Visibility};
pub use messages::{sha256_hex, MessageMeta, NewMail, Summary};
pub use secret::{Secret, SecretKind};

use crate::error::{Context, Error, Result};
use schema::{KEY_INSTALLATION, KEY_VERSION, META, SCHEMA_VERSION};
use secret::SecretKey;

/// File name of the store inside the state directory.
pub const DB_FILE: &str = "postfach.redb";
/// File name of the single-daemon lock inside the state directory.
pub const LOCK_FILE: &str = "postfachd.lock";
/// The first bytes of every redb file; anything else is not ours to open.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// The store. Send + Sync; the daemon shares one `Arc<Store>`. Every method
/// blocks on disk I/O, so async callers run it in `spawn_blocking`.
pub struct Store {
    db: Database,
    dir: PathBuf,
    path: PathBuf,
    installation_id: String,
    /// None when `secret.key` is missing: old secrets are unreadable, a new
    /// secret creates a new key.
    key: Mutex<Option<SecretKey>>,
    /// `blobs/` next to the database: mails above [`BLOB_MIN`].
    blobs: blobs::BlobDir,
    /// Held for the life of the store; dropping it releases the flock.
    _lock: Flock<File>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens or creates `<state_dir>/postfach.redb` (see the module docs).
    /// Refuses a second daemon (Busy), a file that is not a redb store, a
    /// damaged store and a newer schema (Storage); the file is never
    /// overwritten or repaired beyond redb's crash recovery.
    pub fn open(state_dir: &Path) -> Result<Store> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|e| Error::storage(&format!("cannot create {}", state_dir.display()), e))?;
        let lock = take_lock(state_dir)?;
        let path = state_dir.join(DB_FILE);
        let db = open_db(&path)?;
        let (installation_id, has_secrets) = init_schema(&db, &path)?;
        let blobs = blobs::BlobDir::open(state_dir)?;
        blobs::remove_orphans(&db, &blobs)?;
        let key_path = state_dir.join(secret::KEY_FILE);
        let key = match SecretKey::load(&key_path)? {
            Some(k) => Some(k),
            None if has_secrets => {
                tracing::error!(
                    "{} is missing: stored passwords and tokens cannot be read; set them again",
                    key_path.display()
                );
                None
            }
            None => Some(SecretKey::create(&key_path)?),
        };
        Ok(Store {
            db,
            dir: state_dir.to_path_buf(),
            path,
            installation_id,
            key: Mutex::new(key),
            blobs,
            _lock: lock,
        })
    }

    /// Random id written at first start; a restored or copied store is
    /// recognised by it.
    pub fn installation_id(&self) -> &str {
        &self.installation_id
    }

    /// Path of the store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A durable write transaction (module docs: Immediate + two-phase).
    pub(crate) fn write(&self) -> Result<WriteTransaction> {
        write_txn(&self.db)
    }

    pub(crate) fn read(&self) -> Result<redb::ReadTransaction> {
        self.db.begin_read().context("begin read")
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

/// Open an existing store or create a new one. A non-empty file that does
/// not start with redb's magic bytes is refused before redb sees it, so
/// nothing is ever written into a foreign file; a panic inside redb on a
/// damaged file becomes an error.
fn open_db(path: &Path) -> Result<Database> {
    let refuse = |why: &dyn std::fmt::Display| {
        Error::storage_msg(format!(
            "{} is not a usable postfach store ({why}); it was left untouched — restore a \
             backup or move it away",
            path.display()
        ))
    };
    let exists = match std::fs::metadata(path) {
        Ok(m) if m.len() > 0 => {
            let mut head = [0u8; REDB_MAGIC.len()];
            let read = File::open(path).and_then(|mut f| f.read_exact(&mut head));
            if read.is_err() || head != REDB_MAGIC {
                return Err(refuse(&"not a redb database"));
            }
            true
        }
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(Error::storage(
                &format!("cannot read {}", path.display()),
                e,
            ))
        }
    };
    let opened = std::panic::catch_unwind(|| {
        let mut builder = Database::builder();
        // redb's default cache is 1 GiB, which the daemon's RSS grows into
        // as mail passes through (1.1 GB after 100 mails of 10 MB); mail is
        // written once and read rarely, so a small cache costs little.
        builder.set_cache_size(CACHE_BYTES);
        if exists {
            builder.open(path)
        } else {
            builder.create(path)
        }
    });
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(refuse(&e)),
        Err(_) => Err(refuse(&"redb failed while reading it")),
    }
}

/// The store's page cache (read cache and write buffer together).
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Read or write the schema version and installation id. Returns the id and
/// whether any secret is stored (to decide about a missing key file).
fn init_schema(db: &Database, path: &Path) -> Result<(String, bool)> {
    let tx = write_txn(db)?;
    let tables: Vec<String> = tx
        .list_tables()
        .context("list tables")?
        .map(|t| t.name().to_string())
        .collect();
    let version = if tables.iter().any(|t| t == META.name()) {
        schema::get_u64(&tx, KEY_VERSION)?
    } else {
        None
    };
    match version {
        None if !tables.is_empty() => {
            return Err(Error::storage_msg(format!(
                "{} is a redb database but not a postfach store (no schema version); it was \
                 left untouched",
                path.display()
            )))
        }
        None => {
            schema::create_tables(&tx)?;
            schema::put_u64(&tx, KEY_VERSION, SCHEMA_VERSION)?;
            let mut raw = [0u8; 16];
            rand::rngs::OsRng
                .try_fill_bytes(&mut raw)
                .map_err(|e| Error::storage("no randomness for the installation id", e))?;
            let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            let mut meta = tx.open_table(META).context("open meta")?;
            meta.insert(KEY_INSTALLATION, id.as_bytes())
                .context("write meta")?;
        }
        Some(v) if v > SCHEMA_VERSION => {
            return Err(Error::storage_msg(format!(
                "{} has store schema {v}, newer than this postfachd knows ({SCHEMA_VERSION}); \
                 run the newer postfachd or restore a backup",
                path.display()
            )))
        }
        Some(v) if v < SCHEMA_VERSION => schema::migrate(&tx, v)?,
        Some(_) => {}
    }
    let (id, has_secrets) = {
        let meta = tx.open_table(META).context("open meta")?;
        let id = meta
            .get(KEY_INSTALLATION)
            .context("read meta")?
            .map(|g| String::from_utf8_lossy(g.value()).into_owned())
            .ok_or_else(|| {
                Error::storage_msg(format!("{} has no installation id", path.display()))
            })?;
        let secrets = tx.open_table(schema::SECRETS).context("open secrets")?;
        let any = secrets.iter().context("read secrets")?.next().is_some();
        (id, any)
    };
    tx.commit().context("commit schema")?;
    Ok((id, has_secrets))
}

#[cfg(test)]
pub(crate) mod tests;
