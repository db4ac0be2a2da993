//! Opening the database: what is refused, and why nothing is written
//! before it is known to be ours and whole.
//!
//! Order at start (and on a swap, see `super::health`):
//! 1. The file is looked at without redb. Missing or empty while the state
//!    directory holds `secret.key` or `blobs/` is damage, not a first
//!    start: a fresh store would make every blob file an orphan, and those
//!    are the only copies of big mails once delete-on-server removed them.
//!    The start is refused and nothing is touched. A first start that
//!    crashed never leaves those traces: the database and its schema are
//!    committed before the key file and `blobs/` are made.
//! 2. An existing file is opened over `super::backend::DryRun` with redb's
//!    integrity check (every page checksum of the committed trees; skipped
//!    for a file as this daemon closed it cleanly, see `super::closed`), and the
//!    schema, the installation id and the secrets are read from that
//!    instance. redb's check repairs and commits as it goes; the dry run
//!    keeps those writes in memory, so a damaged or foreign file is refused
//!    byte for byte untouched, and a redb panic on it is caught.
//! 3. `secret.key` is loaded (a file of the wrong size refuses the start)
//!    and compared with the stored secrets, before any write transaction.
//! 4. Only then is the file opened for writing (a crash before is recovered
//!    by redb here), created 0600 if new, and the schema written or
//!    migrated if needed — a current store is not written at all.
//!
//! The check reads the whole file once; redb's crash recovery after a kill
//! reads it once more.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use rand::RngCore;
use redb::{Builder, Database, ReadableDatabase, ReadableTable, TableError, TableHandle};

use super::backend::{DryRun, Fault, Watched};
use super::blobs::BLOB_DIR;
use super::schema::{self, KEY_INSTALLATION, KEY_VERSION, META, SCHEMA_VERSION, SECRETS};
use super::secret::{credential_key, SecretKey, KEY_FILE};
use super::{write_txn, Current, DB_FILE};
use crate::error::{Context, Error, Result};

mod guard;
mod moves;
#[cfg(test)]
pub(super) use guard::REDB_MAGIC;
use guard::{guarded, refused, Failure};

/// The store's page cache (read cache and write buffer together). redb's
/// default is 1 GiB, which the daemon's RSS grows into as mail passes
/// through (1.1 GB after 100 mails of 10 MB); mail is written once and
/// read rarely, so a small cache costs little.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The dry run's cache (step 2): its check reads every page once, so a
/// cache cannot speed it up, while a full one stays in the daemon's RSS
/// after the dry run is dropped (the allocator keeps the freed pages).
const CHECK_CACHE_BYTES: usize = 2 * 1024 * 1024;

/// What the dry run found in an existing file.
#[derive(Debug, Default)]
struct Census {
    /// None: a redb file without any table (a first start that crashed).
    version: Option<u64>,
    installation_id: Option<String>,
    secrets: usize,
    /// Secrets sealed by the key file of the state directory.
    sealed_by_key: usize,
}

/// Whether the dry run of step 2 walks every page checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pages {
    /// At start and after damage was seen: the file may be anyone's.
    Check,
    /// A file this process has just built and committed (a restore's new
    /// store, `super::health`'s swap): the walk reads the whole file while
    /// every store call waits at the swap's gate — the watchdog's probe
    /// among them — and could only find what redb's own commit already
    /// guarantees. The next start checks it like any other.
    Trusted,
}

/// Opens the store file of `dir` with every check of the module docs;
/// returns the database and the secret key (None: the key file is missing
/// and secrets exist, see `super::accounts`).
pub(super) fn open_checked(dir: &Path, pages: Pages) -> Result<(Current, Option<SecretKey>)> {
    let path = dir.join(DB_FILE);
    let pages = match pages {
        Pages::Check if super::closed::take(dir) => {
            tracing::info!(
                "{} is as postfachd closed it cleanly: its pages are not walked",
                path.display()
            );
            Pages::Trusted
        }
        other => other,
    };
    let census = match std::fs::metadata(&path) {
        Ok(m) if m.len() > 0 => {
            let key = match credential_key()? {
                Some(k) => Some(k),
                None => SecretKey::load(&dir.join(KEY_FILE))?,
            };
            Some((dry_run(&path, key.as_ref(), pages)?, key))
        }
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Error::storage(
                &format!("cannot read {}", path.display()),
                e,
            ))
        }
    };
    let (census, key) = match census {
        Some((c, key)) if c.version.is_some() => (c, key),
        other => {
            let why = match &other {
                None => "is missing or empty",
                Some(_) => "holds no postfach data",
            };
            refuse_if_installed(dir, &path, why)?;
            (Census::default(), other.and_then(|(_, k)| k))
        }
    };
    if let Some(v) = census.version.filter(|v| *v > SCHEMA_VERSION) {
        return Err(Error::storage_msg(format!(
            "{} has store schema {v}, newer than this postfachd knows ({SCHEMA_VERSION}); it \
             was left untouched — run the newer postfachd or restore a backup",
            path.display()
        )));
    }
    check_key(dir, &census, key.as_ref());
    // Checked: from here on the directory and the file are ours to fix.
    fix_mode(dir, 0o700)?;
    for file in [path.clone(), dir.join(KEY_FILE)] {
        if file.exists() {
            fix_mode(&file, 0o600)?;
        }
    }
    let (db, fault) = open_writable(&path)?;
    let installation_id = match (&census.installation_id, census.version) {
        (Some(id), Some(SCHEMA_VERSION)) => id.clone(),
        _ => init_schema(&db, &path, census.version)?,
    };
    moves::at_open(&db, dir)?;
    let key = match key.map_or_else(credential_key, |k| Ok(Some(k)))? {
        Some(k) => Some(k),
        None if census.secrets > 0 => None,
        None => Some(SecretKey::create(&dir.join(KEY_FILE))?),
    };
    let current = Current {
        db: Some(db),
        writable: true,
        installation_id,
        fault,
        labels: Default::default(),
        scopes: Default::default(),
        places: Default::default(),
    };
    Ok((current, key))
}

/// Reopens a store that this process had open, after an I/O error: redb's
/// crash recovery only (the file was last written by this process, through
/// two-phase commits).
pub(super) fn reopen(dir: &Path) -> Result<Current> {
    let path = dir.join(DB_FILE);
    let (db, fault) = open_writable(&path)?;
    let installation_id = read_installation_id(&db, &path)?;
    Ok(Current {
        db: Some(db),
        writable: true,
        installation_id,
        fault,
        labels: Default::default(),
        scopes: Default::default(),
        places: Default::default(),
    })
}

/// The file as it is, for reading only, when it cannot be opened for
/// writing (a full disk fails redb's recovery commit): recovery runs in
/// memory over a dry run.
pub(super) fn open_read_only(dir: &Path) -> Result<Current> {
    let path = dir.join(DB_FILE);
    let db = guarded(&path, false, || {
        let file = File::open(&path)?;
        Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(DryRun::new(file)?)
            .map_err(Failure::from)
    })?;
    let installation_id = read_installation_id(&db, &path)?;
    Ok(Current {
        db: Some(db),
        writable: false,
        installation_id,
        fault: Arc::default(),
        labels: Default::default(),
        scopes: Default::default(),
        places: Default::default(),
    })
}

/// Step 2 of the module docs.
fn dry_run(path: &Path, key: Option<&SecretKey>, pages: Pages) -> Result<Census> {
    if pages == Pages::Check {
        tracing::info!("checking every page of {}", path.display());
    }
    let db = guarded(path, true, || {
        let file = File::open(path)?;
        Builder::new()
            .set_cache_size(CHECK_CACHE_BYTES)
            .set_check_integrity_on_open(pages == Pages::Check)
            .create_with_backend(DryRun::new(file)?)
            .map_err(Failure::from)
    })?;
    let census = catch_unwind(AssertUnwindSafe(|| census(&db, path, key)))
        .unwrap_or_else(|_| Err(refused(path, &"redb failed while reading it")))?;
    Ok(census)
}

fn census(db: &Database, path: &Path, key: Option<&SecretKey>) -> Result<Census> {
    let tx = db.begin_read().context("begin read")?;
    let tables: Vec<String> = tx
        .list_tables()
        .context("list tables")?
        .map(|t| t.name().to_string())
        .collect();
    if tables.is_empty() {
        return Ok(Census::default());
    }
    let meta = match tx.open_table(META) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Err(not_postfach(path)),
        Err(e) => return Err(Error::storage("open meta", e)),
    };
    let version = match meta.get(KEY_VERSION).context("read meta")? {
        Some(v) => u64::from_be_bytes(v.value().try_into().map_err(|_| not_postfach(path))?),
        None => return Err(not_postfach(path)),
    };
    let installation_id = meta
        .get(KEY_INSTALLATION)
        .context("read meta")?
        .map(|g| String::from_utf8_lossy(g.value()).into_owned())
        .ok_or_else(|| Error::storage_msg(format!("{} has no installation id", path.display())))?;
    let mut census = Census {
        version: Some(version),
        installation_id: Some(installation_id),
        ..Census::default()
    };
    let secrets = tx.open_table(SECRETS).context("open secrets")?;
    for row in secrets.iter().context("read secrets")? {
        let (_, sealed) = row.context("read secrets")?;
        census.secrets += 1;
        if key.is_some_and(|k| k.sealed_by_me(sealed.value())) {
            census.sealed_by_key += 1;
        }
    }
    Ok(census)
}

fn not_postfach(path: &Path) -> Error {
    Error::storage_msg(format!(
        "{} is a redb database but not a postfach store (no schema version); it was left \
         untouched",
        path.display()
    ))
}

/// Step 1 of the module docs: what of an installation is there.
fn refuse_if_installed(dir: &Path, path: &Path, why: &str) -> Result<()> {
    let mut traces = Vec::new();
    if dir.join(KEY_FILE).exists() {
        traces.push(KEY_FILE.to_string());
    }
    let blobs = dir.join(BLOB_DIR);
    if blobs.is_dir() {
        let files = std::fs::read_dir(&blobs).map_or(0, |d| d.count());
        traces.push(format!("{BLOB_DIR}/ ({files} entries)"));
    }
    if traces.is_empty() {
        return Ok(());
    }
    Err(Error::storage_msg(format!(
        "{} holds an installation ({}) but its store {} {why}; postfachd changed nothing, so \
         that no mail file is lost — restore the store from a backup, or move the whole state \
         directory away to start empty",
        dir.display(),
        traces.join(", "),
        path.display()
    )))
}

/// Step 3 of the module docs; a mismatch is logged, not refused: the mail
/// is still good, and each account says that its password must be set again.
fn check_key(dir: &Path, census: &Census, key: Option<&SecretKey>) {
    let key_path = dir.join(KEY_FILE);
    match key {
        None if census.secrets > 0 => tracing::error!(
            "{} is missing: stored passwords and tokens cannot be read; set them again",
            key_path.display()
        ),
        Some(_) if census.sealed_by_key < census.secrets => tracing::error!(
            "{} did not seal {} of the {} stored passwords and tokens (the key file was \
             replaced?); those must be set again",
            key_path.display(),
            census.secrets - census.sealed_by_key,
            census.secrets
        ),
        _ => {}
    }
}

/// Step 4: the file for the daemon's writes, created 0600 if new.
fn open_writable(path: &Path) -> Result<(Database, Arc<Fault>)> {
    let fault = Arc::new(Fault::default());
    let watched = fault.clone();
    let db = guarded(path, false, || {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(Watched::new(file, watched)?)
            .map_err(Failure::from)
    })?;
    Ok((db, fault))
}

/// Sets `path` to `mode` when it is looser (logged: someone changed it).
pub(super) fn fix_mode(path: &Path, mode: u32) -> Result<()> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::storage(&format!("cannot read {}", path.display()), e))?;
    let now = meta.permissions().mode() & 0o777;
    if now & !mode != 0 {
        tracing::warn!(
            path = %path.display(),
            "mode {now:o} let others read the store; set to {mode:o}"
        );
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::storage(&format!("cannot chmod {}", path.display()), e))?;
    }
    Ok(())
}

fn read_installation_id(db: &Database, path: &Path) -> Result<String> {
    let tx = db.begin_read().context("begin read")?;
    let meta = tx.open_table(META).context("open meta")?;
    let id = meta.get(KEY_INSTALLATION).context("read meta")?;
    id.map(|g| String::from_utf8_lossy(g.value()).into_owned())
        .ok_or_else(|| Error::storage_msg(format!("{} has no installation id", path.display())))
}

/// Writes the tables, version and a new installation id of a fresh store,
/// or migrates an older one; returns the installation id.
fn init_schema(db: &Database, path: &Path, version: Option<u64>) -> Result<String> {
    let tx = write_txn(db)?;
    match version {
        None => {
            schema::create_tables(&tx)?;
            schema::put_u64(&tx, KEY_VERSION, SCHEMA_VERSION)?;
            let mut raw = [0u8; 16];
            rand::rngs::OsRng
                .try_fill_bytes(&mut raw)
                .map_err(|e| Error::storage("no randomness for the installation id", e))?;
            let id: String = crate::hex::lower(&raw);
            let mut meta = tx.open_table(META).context("open meta")?;
            meta.insert(KEY_INSTALLATION, id.as_bytes())
                .context("write meta")?;
        }
        Some(v) => super::migrate::migrate(&tx, v)?,
    }
    tx.commit().context("commit schema")?;
    read_installation_id(db, path)
}

#[cfg(test)]
mod tests;
