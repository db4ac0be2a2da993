//! Restoring a backup, the part before the switch: read and verify the
//! whole backup into `restore-staging/` (nothing else is touched before
//! every checksum held), then build the complete new installation in
//! `restore-new/`: a fresh database filled from the `table:` sections,
//! with the restore safety reset already applied and the identity of its
//! future place recorded, and `blobs/` holding each big mail's file.
//! Installing it is `crate::store::install` (the crash-safe switch).
//!
//! Limits (a hostile fd must not fill memory or disk): the format caps
//! every header, name and chunk (`super::format`); a backup may be at most
//! half of the space free in the state directory's file system when the
//! restore begins (the unpacked sections and the new database together
//! need about twice the tables' size; big mails are moved, not copied);
//! rows are capped (`super::tables::ROW_PART_MAX`).
//!
//! Schema: a backup of this daemon's store schema restores, and so does one
//! of an older schema down to [`OLDEST_RESTORABLE`] (migrated while the new
//! database is built); any other is refused with the versions named.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use redb::{Builder, Durability, ReadableTable, ReadableTableMetadata};

use super::format::unpack;
use super::snapshot::SECRETS_SECTION;
use super::tables::{for_tables, load, section_name};
use crate::error::{Context, Error, Result};
use crate::store::blobs::BLOB_DIR;
use crate::store::install::{crash_point, sync_dir, NEW_DIR, STAGING_DIR};
use crate::store::schema::{self, ACCOUNTS, BLOBS, KEY_INSTALLATION, KEY_VERSION, MESSAGES, META};
use crate::store::{BackupKey, Store, DB_FILE};

/// The oldest store schema whose backups restore here. Every migration
/// step after schema 4 only adds tables (`crate::store::schema`), so the
/// tables of such a backup load with today's definitions, the missing
/// ones start empty, and the store's migration finishes the job. A step
/// that changes a table's layout must raise this to its new version.
pub const OLDEST_RESTORABLE: u64 = 4;

/// Space kept free beyond the backup's share of the disk.
const RESERVE: u64 = 64 * 1024 * 1024;
/// The new database's page cache while it is filled.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// What a prepared restore holds: the Restore report's values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Ids of the restored accounts, in creation order.
    pub accounts: Vec<String>,
    /// Ids whose delete-on-server was switched off, and how many outbox
    /// mails were held (`crate::store::Reset`).
    pub reset: crate::store::Reset,
    pub messages: u64,
    /// Whether passwords and tokens came back.
    pub secrets: bool,
}

fn bad(why: impl std::fmt::Display) -> Error {
    Error::invalid("fd", format!("not a usable postfach backup: {why}"))
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::storage(&format!("cannot {what} {}", path.display()), e)
}

fn fresh_dir(path: &Path) -> Result<()> {
    remove(path)?;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|e| io("create", path, e))
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove", path, e)),
    }
}

/// How many bytes a backup may have (module docs).
fn limit(dir: &Path) -> Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir)
        .map_err(|e| Error::storage(&format!("cannot stat {}", dir.display()), e))?;
    #[allow(clippy::useless_conversion)] // the field types differ between platforms
    let free = u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size()));
    Ok(free.saturating_sub(RESERVE) / 2)
}

/// Read, verify and build (module docs); blocking. On error nothing of
/// it is left in `state_dir`.
pub fn prepare(store: &Store, input: &mut dyn Read, passphrase: Option<&str>) -> Result<Prepared> {
    let state_dir = store.state_dir();
    let staging = state_dir.join(STAGING_DIR);
    let new = state_dir.join(NEW_DIR);
    let result = (|| {
        fresh_dir(&staging)?;
        remove(&new)?;
        let unpacked = unpack(input, &staging, limit(state_dir)?)?;
        crash_point("staged");
        let header: serde_json::Value =
            serde_json::from_slice(&unpacked.header).map_err(|_| bad("header is not JSON"))?;
        let version = header
            .get("schema_version")
            .and_then(|v| v.as_u64())
            .filter(|v| (OLDEST_RESTORABLE..=schema::SCHEMA_VERSION).contains(v))
            .ok_or_else(|| {
                bad(format!(
                    "it holds store schema {}, this postfachd restores schemas \
                     {OLDEST_RESTORABLE} to {}",
                    header
                        .get("schema_version")
                        .map_or("?".into(), |v| crate::redact::cap(&v.to_string())),
                    schema::SCHEMA_VERSION
                ))
            })?;
        let mut tables: HashMap<String, PathBuf> = HashMap::new();
        let mut blobs: Vec<(u64, PathBuf)> = Vec::new();
        for (name, path) in unpacked.sections {
            if let Some(id) = name.strip_prefix("blob:") {
                let id = id.parse().map_err(|_| bad("a big mail without a number"))?;
                blobs.push((id, path));
            } else if tables.insert(name.clone(), path).is_some() {
                return Err(bad(format!("section {name} twice")));
            }
        }
        let secrets = match (tables.remove(SECRETS_SECTION), passphrase) {
            (Some(path), Some(p)) => Some((backup_key(&header, p)?, path)),
            _ => None,
        };
        fresh_dir(&new)?;
        let built = build(store, &new, version, &mut tables, &blobs, secrets)?;
        if let Some(name) = tables.keys().next() {
            return Err(bad(format!("unknown section {}", crate::redact::cap(name))));
        }
        crash_point("built");
        Ok(built)
    })();
    let _ = remove(&staging);
    if result.is_err() {
        let _ = remove(&new);
    }
    result
}

/// The key of a backup's secrets, from its header's `kdf` and the
/// passphrase.
fn backup_key(header: &serde_json::Value, passphrase: &str) -> Result<BackupKey> {
    let kdf = header
        .get("kdf")
        .ok_or_else(|| bad("secrets without a key derivation"))?;
    let num = |k: &str| {
        kdf.get(k)
            .and_then(|v| v.as_u64())
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| bad("key derivation parameters"))
    };
    if kdf.get("alg").and_then(|a| a.as_str()) != Some("argon2id") {
        return Err(bad("unknown key derivation"));
    }
    let salt_hex = kdf.get("salt").and_then(|s| s.as_str()).unwrap_or_default();
    let salt: Vec<u8> = (0..salt_hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(salt_hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    if salt.len() < 8 || salt.len() * 2 != salt_hex.len() {
        return Err(bad("key derivation salt"));
    }
    BackupKey::derive(passphrase, &salt, num("m_kib")?, num("t")?, num("p")?)
}

/// The new database and `blobs/` in `new` (module docs). Consumes the
/// table sections it knows from `tables`.
fn build(
    store: &Store,
    new: &Path,
    version: u64,
    tables: &mut HashMap<String, PathBuf>,
    blob_files: &[(u64, PathBuf)],
    secrets: Option<(BackupKey, PathBuf)>,
) -> Result<Prepared> {
    let state_dir = store.state_dir();
    let db_path = new.join(DB_FILE);
    // 0600 like the store it replaces (`crate::store::opening`).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&db_path)
        .map_err(|e| io("create", &db_path, e))?;
    let db = Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create_with_backend(
            redb::backends::FileBackend::new(file).context("open the restored store")?,
        )
        .context("create the restored store")?;
    let mut tx = db.begin_write().context("begin the restored store")?;
    tx.set_durability(Durability::Immediate)
        .context("set durability")?;
    tx.set_two_phase_commit(true);
    schema::create_tables(&tx)?;
    let loaded = catch_unwind(AssertUnwindSafe(|| -> Result<()> {
        macro_rules! one {
            ($def:expr) => {{
                if let Some(path) = tables.remove(&section_name(&$def)) {
                    let file = File::open(&path).map_err(|e| io("open", &path, e))?;
                    load(&tx, $def, &mut BufReader::new(file))?;
                }
            }};
        }
        for_tables!(one);
        Ok(())
    }));
    loaded.unwrap_or_else(|_| Err(bad("a table row is malformed")))?;
    let mut prepared = Prepared::default();
    {
        let meta = tx.open_table(META).context("read restored meta")?;
        let stored = meta.get(KEY_VERSION).context("read restored meta")?;
        let stored = stored.map(|v| v.value().to_vec());
        if stored.as_deref() != Some(version.to_be_bytes().as_slice())
            || meta
                .get(KEY_INSTALLATION)
                .context("read restored meta")?
                .is_none()
        {
            return Err(bad(
                "its meta table is missing or does not match its header",
            ));
        }
        let accounts = tx.open_table(ACCOUNTS).context("read restored accounts")?;
        for row in accounts.iter().context("read restored accounts")? {
            let (id, _) = row.context("read restored accounts")?;
            prepared.accounts.push(id.value().to_string());
        }
        prepared
            .accounts
            .sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
        let messages = tx.open_table(MESSAGES).context("read restored messages")?;
        prepared.messages = messages.len().context("count restored messages")?;
        let rows = tx.open_table(BLOBS).context("read restored blobs")?;
        if rows.len().context("count restored blobs")? != blob_files.len() as u64 {
            return Err(bad("its big mails do not match its index"));
        }
        for (id, path) in blob_files {
            let want = rows
                .get(*id)
                .context("read restored blobs")?
                .map(|g| g.value());
            let len = std::fs::metadata(path)
                .map_err(|e| io("read", path, e))?
                .len();
            if want != Some(len) {
                return Err(bad(format!("big mail {id} does not match its index")));
            }
        }
    }
    if let Some((key, path)) = secrets {
        let file = File::open(&path).map_err(|e| io("open", &path, e))?;
        prepared.secrets = store.import_secrets(&tx, &key, &mut BufReader::new(file))?;
        if !prepared.secrets {
            tracing::warn!("the passphrase does not open the backup's secrets: none restored");
        }
    }
    // An older backup's tables load as they are (see OLDEST_RESTORABLE);
    // the store's own migration brings the new database up to date.
    if version < schema::SCHEMA_VERSION {
        crate::store::migrate::migrate(&tx, version)?;
    }
    prepared.reset = crate::store::reset_restored(&tx, state_dir)?;
    tx.commit().context("commit the restored store")?;
    drop(db);
    let blob_dir = new.join(BLOB_DIR);
    for d in [blob_dir.clone(), blob_dir.join("tmp")] {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&d)
            .map_err(|e| io("create", &d, e))?;
    }
    for (id, path) in blob_files {
        let to = blob_dir.join(id.to_string());
        std::fs::rename(path, &to).map_err(|e| io("move", path, e))?;
    }
    for d in [blob_dir.join("tmp"), blob_dir, new.to_path_buf()] {
        sync_dir(&d)?;
    }
    Ok(prepared)
}
