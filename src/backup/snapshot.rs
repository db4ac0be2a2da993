//! What goes into a backup: the store's tables read in ONE redb read
//! transaction (a consistent snapshot while fetching goes on: redb's MVCC
//! keeps the snapshot's pages until the transaction ends, and writers are
//! never blocked), and the big-mail files under `blobs/` that its `blobs`
//! rows name.
//!
//! Sections (see `super::format`): `table:<name>` per table, rows as
//! `key_len u32 ‖ key ‖ value_len u32 ‖ value` in redb's own encoding of
//! the table's types; `blob:<message id>` per big mail. The `secrets` table
//! is never written as is: without a passphrase no secret goes in at all,
//! and the installation's key file never does.
//!
//! The store's snapshot (`Store::snapshot`) pins the blob files its rows
//! name, so a mail deleted while the backup runs still has its bytes.

use std::fs::File;
use std::io::{BufWriter, Seek, Write};

use super::format::Writer;
use super::tables::{dump, for_tables};
use crate::error::{Context, Result};
use crate::store::schema;
use crate::store::Store;

/// The section of the secrets of a backup with a passphrase
/// (`crate::store::BackupKey`).
pub const SECRETS_SECTION: &str = "secrets";

/// What a written backup holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    pub messages: u64,
    pub blobs: u64,
}

/// Write a backup of `store` into `out`. Runs blocking: call it from a
/// blocking thread.
pub fn write(store: &Store, out: &mut dyn Write, passphrase: Option<&str>) -> Result<Written> {
    let snap = store.snapshot()?;
    let tx = snap.tables();
    let header = serde_json::json!({
        "installation_id": store.installation_id(),
        "schema_version": schema::SCHEMA_VERSION,
        "created": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "secrets": false,
    });
    let mut header = header;
    let key = match passphrase {
        None => None,
        Some(p) => {
            let mut salt = [0u8; 16];
            rand::RngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut salt)
                .map_err(|e| crate::error::Error::storage("no randomness for a salt", e))?;
            let (m, t, p_) = (
                crate::store::KDF_M_KIB,
                crate::store::KDF_T,
                crate::store::KDF_P,
            );
            header["secrets"] = true.into();
            header["kdf"] = serde_json::json!({
                "alg": "argon2id", "m_kib": m, "t": t, "p": p_,
                "salt": crate::hex::lower(&salt),
            });
            Some(crate::store::BackupKey::derive(p, &salt, m, t, p_)?)
        }
    };
    let header = serde_json::to_vec(&header).context("encode the backup header")?;
    let blob_files = snap.blobs()?;
    let mut w = Writer::new(BufWriter::new(out), &header)?;
    let mut messages = 0;
    let scratch_dir = store.state_dir().to_path_buf();
    macro_rules! one {
        ($def:expr) => {{
            let mut scratch = Scratch::new(&scratch_dir)?;
            let mut buffered = BufWriter::new(&mut scratch.file);
            let rows = dump(tx, $def, &mut buffered)?;
            buffered.flush().context("write a backup part")?;
            drop(buffered);
            if redb::TableHandle::name(&$def) == "messages" {
                messages = rows;
            }
            scratch.file.rewind().context("rewind a backup part")?;
            w.section(&super::tables::section_name(&$def), &mut scratch.file)?;
        }};
    }
    for_tables!(one);
    if let Some(key) = &key {
        let mut scratch = Scratch::new(&scratch_dir)?;
        let mut buffered = BufWriter::new(&mut scratch.file);
        store.export_secrets(tx, key, &mut buffered)?;
        buffered.flush().context("write a backup part")?;
        drop(buffered);
        scratch.file.rewind().context("rewind a backup part")?;
        w.section(SECRETS_SECTION, &mut scratch.file)?;
    }
    let blobs = blob_files.len() as u64;
    for (id, len, path) in blob_files {
        let mut file = File::open(&path).context("open a big mail for the backup")?;
        let mut body = std::io::Read::take(&mut file, len);
        w.section(&format!("blob:{id}"), &mut body)?;
    }
    w.finish()?;
    Ok(Written { messages, blobs })
}

/// A scratch file in the state directory, unlinked at once (it holds mail:
/// it must not outlive the backup nor land in /tmp).
struct Scratch {
    file: File,
}

impl Scratch {
    fn new(dir: &std::path::Path) -> Result<Scratch> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!(".backup-part-{}-{n}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .context("create a backup part")?;
        std::fs::remove_file(&path).context("unlink a backup part")?;
        Ok(Scratch { file })
    }
}
