//! Secrets in a backup with a passphrase (ARCHITECTURE.md "The D-Bus
//! API", `Backup`): every password and token is opened with this
//! installation's key and sealed again under a key derived from the
//! passphrase with Argon2id (RFC 9106), by the same AEAD and sealed form as
//! at rest (`super::secret`: ChaCha20-Poly1305, account and kind as
//! associated data). The installation's key never leaves it.
//!
//! A restore with the right passphrase opens each one and seals it under
//! the restoring installation's key. With a wrong or missing passphrase
//! (the key id of the sealed form does not match), no secret at all comes
//! back: the accounts then have no password and say so when they fetch.
//!
//! Rows of the `secrets` section: `len u32 ‖ account ‖ kind u8 ‖ len u32 ‖
//! sealed`.

use std::io::{Read, Write};

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::schema::SECRETS;
use super::secret::{Secret, SecretKey, SecretKind, KEY_FILE};
use super::Store;
use crate::error::{Context, Error, Result};

/// Argon2id cost: RFC 9106's second recommended option (64 MiB, 3 passes,
/// 4 lanes), a fraction of a second once per backup or restore.
pub const KDF_M_KIB: u32 = 64 * 1024;
pub const KDF_T: u32 = 3;
pub const KDF_P: u32 = 4;
/// The largest `secrets` section a restore reads.
pub const SECTION_MAX: u64 = 16 * 1024 * 1024;

/// The key derived from a backup's passphrase.
pub struct BackupKey(SecretKey);

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupKey(<redacted>)")
    }
}

impl BackupKey {
    /// Argon2id over `passphrase` and `salt` with the given cost; a cost
    /// a backup header names is capped so that a hostile one cannot make
    /// a restore allocate without bound.
    pub fn derive(passphrase: &str, salt: &[u8], m_kib: u32, t: u32, p: u32) -> Result<BackupKey> {
        let bad = |e: argon2::Error| Error::invalid("passphrase", format!("key derivation: {e}"));
        if m_kib > 1024 * 1024 || t > 16 || p > 16 {
            return Err(Error::invalid(
                "fd",
                "the backup's key derivation cost is too high",
            ));
        }
        let params = argon2::Params::new(m_kib, t, p, Some(32)).map_err(bad)?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = [0u8; 32];
        argon
            .hash_password_into(passphrase.as_bytes(), salt, &mut key)
            .map_err(bad)?;
        Ok(BackupKey(SecretKey::from_bytes(key)))
    }
}

fn kind_of(code: u8) -> Option<SecretKind> {
    SecretKind::ALL.into_iter().find(|k| k.code() == code)
}

fn put(out: &mut dyn Write, bytes: &[u8]) -> Result<()> {
    let len =
        u32::try_from(bytes.len()).map_err(|_| Error::storage_msg("secret too long".into()))?;
    out.write_all(&len.to_be_bytes())
        .and_then(|()| out.write_all(bytes))
        .context("write the backup")
}

fn take(input: &mut dyn Read) -> Result<Option<Vec<u8>>> {
    let mut l = [0u8; 4];
    match input.read_exact(&mut l) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Error::storage("read staged secrets", e)),
    }
    let len = u32::from_be_bytes(l) as u64;
    if len > SECTION_MAX {
        return Err(Error::invalid("fd", "a secret in the backup is too long"));
    }
    let mut buf = vec![0u8; len as usize];
    input
        .read_exact(&mut buf)
        .map_err(|_| Error::invalid("fd", "the backup's secrets are cut off"))?;
    Ok(Some(buf))
}

impl Store {
    /// Every secret of the snapshot `tx`, sealed under `key`, into `out`;
    /// returns how many. Secrets this installation cannot open itself (its
    /// key is missing or was replaced) are left out and logged.
    pub fn export_secrets(
        &self,
        tx: &ReadTransaction,
        key: &BackupKey,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let own = self
            .key
            .lock()
            .map_err(|_| Error::storage_msg("secret key lock poisoned".into()))?;
        let table = tx.open_table(SECRETS).context("open secrets")?;
        let mut n = 0;
        for row in table.iter().context("read secrets")? {
            let (k, sealed) = row.context("read secrets")?;
            let (account, code) = k.value();
            let Some(kind) = kind_of(code) else { continue };
            let clear = match own.as_ref().map(|o| o.open(account, kind, sealed.value())) {
                Some(Ok(c)) => c,
                _ => {
                    tracing::warn!(
                        account_id = account,
                        "a secret this installation cannot read is left out of the backup"
                    );
                    continue;
                }
            };
            let resealed = key.0.seal(account, kind, clear.expose())?;
            put(out, account.as_bytes())?;
            out.write_all(&[code]).context("write the backup")?;
            put(out, &resealed)?;
            n += 1;
        }
        Ok(n)
    }

    /// The secrets of a backup's `secrets` section, opened with `key` and
    /// sealed under this installation's key, into the `secrets` table of
    /// `tx` (a restored database). All or nothing: false, and nothing
    /// written, if any does not open (wrong passphrase).
    pub fn import_secrets(
        &self,
        tx: &WriteTransaction,
        key: &BackupKey,
        input: &mut dyn Read,
    ) -> Result<bool> {
        let mut clear: Vec<(String, SecretKind, Secret)> = Vec::new();
        while let Some(account) = take(input)? {
            let account = String::from_utf8(account)
                .map_err(|_| Error::invalid("fd", "an account id in the backup is not UTF-8"))?;
            let mut code = [0u8; 1];
            input
                .read_exact(&mut code)
                .map_err(|_| Error::invalid("fd", "the backup's secrets are cut off"))?;
            let sealed = take(input)?
                .ok_or_else(|| Error::invalid("fd", "the backup's secrets are cut off"))?;
            let Some(kind) = kind_of(code[0]) else {
                continue;
            };
            match key.0.open(&account, kind, &sealed) {
                Ok(c) => clear.push((account, kind, c)),
                Err(_) => return Ok(false),
            }
        }
        let mut own = self
            .key
            .lock()
            .map_err(|_| Error::storage_msg("secret key lock poisoned".into()))?;
        if own.is_none() && !clear.is_empty() {
            *own = Some(SecretKey::create(&self.dir.join(KEY_FILE))?);
        }
        let Some(own) = own.as_ref() else {
            return Ok(true);
        };
        let mut table = tx.open_table(SECRETS).context("open restored secrets")?;
        for (account, kind, c) in &clear {
            let sealed = own.seal(account, *kind, c.expose())?;
            table
                .insert((account.as_str(), kind.code()), sealed.as_slice())
                .context("write a restored secret")?;
        }
        Ok(true)
    }
}
