//! Secrets at rest: passwords and OAuth tokens, encrypted per value.
//!
//! A backup copies the store file, so no secret may be in it in clear. Each
//! value is sealed with ChaCha20-Poly1305 (RFC 8439) under a 32-byte key in
//! `<state_dir>/secret.key` (0600), with a fresh random nonce per value and
//! the (account, kind) pair as associated data, so a ciphertext copied onto
//! another account does not decrypt. The sealed form is
//! `version(1) ‖ key id(8) ‖ nonce(12) ‖ ciphertext+tag`; the key id lets us
//! tell "key file missing or replaced" apart from "value damaged".

use std::fmt;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const FORMAT: u8 = 1;
const KEY_LEN: usize = 32;
const ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
/// File name of the secret key inside the state directory.
pub const KEY_FILE: &str = "secret.key";

/// Which secret of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// Incoming server (IMAP/POP3) password.
    Password,
    /// SMTP password, when it differs from the incoming one.
    SmtpPassword,
    /// Office 365 OAuth2 tokens (JSON, written by the oauth module): the
    /// refresh token with the access token and its expiry, sealed as one
    /// value so that a rotation is a single commit.
    OAuthTokens,
    /// A sign-in that was started but not completed (JSON, written by the
    /// oauth module): the device code, or the PKCE verifier and state, with
    /// their expiry. Secret because either one can be traded for tokens.
    OAuthPending,
}

impl SecretKind {
    /// The stable code in the `secrets` table key.
    pub(crate) fn code(self) -> u8 {
        match self {
            SecretKind::Password => 1,
            SecretKind::SmtpPassword => 2,
            SecretKind::OAuthTokens => 3,
            SecretKind::OAuthPending => 4,
        }
    }

    pub(crate) const ALL: [SecretKind; 4] = [
        SecretKind::Password,
        SecretKind::SmtpPassword,
        SecretKind::OAuthTokens,
        SecretKind::OAuthPending,
    ];
}

/// Overwrite a buffer with zeros in a way the optimiser keeps.
fn wipe(bytes: &mut [u8]) {
    bytes.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(bytes);
}

/// A secret in clear, for the moment a login needs it. Debug never shows
/// it; the buffer is zeroed when dropped.
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A secret that did not come from the store (an access token fresh from
/// the token endpoint) gets the same care: no Debug, zeroed on drop.
impl From<String> for Secret {
    fn from(clear: String) -> Secret {
        Secret(clear)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        wipe(&mut bytes);
    }
}

/// The key that seals secrets; zeroed on drop.
pub(crate) struct SecretKey {
    key: [u8; KEY_LEN],
    id: [u8; ID_LEN],
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        wipe(&mut self.key);
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    pub(crate) fn from_bytes(key: [u8; KEY_LEN]) -> SecretKey {
        let mut h = Sha256::new();
        h.update(b"postfach secret key id\0");
        h.update(key);
        let digest = h.finalize();
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&digest[..ID_LEN]);
        SecretKey { key, id }
    }

    /// Load the key file; `Ok(None)` if it does not exist.
    pub(crate) fn load(path: &Path) -> Result<Option<SecretKey>> {
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::storage(
                    &format!("cannot read {}", path.display()),
                    e,
                ))
            }
        };
        let mut key = [0u8; KEY_LEN];
        let mut extra = [0u8; 1];
        file.read_exact(&mut key)
            .and_then(|()| file.read(&mut extra))
            .map_err(|e| Error::storage(&format!("cannot read {}", path.display()), e))
            .and_then(|n| match n {
                0 => Ok(()),
                _ => Err(Error::storage_msg(format!(
                    "{} is not a {KEY_LEN}-byte secret key",
                    path.display()
                ))),
            })
            .inspect_err(|_| wipe(&mut key))?;
        Ok(Some(SecretKey::from_bytes(key)))
    }

    /// Create a new random key file (0600); fails if one already exists, so
    /// a key is never replaced under secrets it sealed.
    pub(crate) fn create(path: &Path) -> Result<SecretKey> {
        let mut key = [0u8; KEY_LEN];
        rand::rngs::OsRng
            .try_fill_bytes(&mut key)
            .map_err(|e| Error::storage("no randomness for the secret key", e))?;
        let ctx = format!("cannot create {}", path.display());
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::storage(&ctx, e))?;
        file.write_all(&key)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::storage(&ctx, e))?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::storage(&ctx, e))?;
        }
        Ok(SecretKey::from_bytes(key))
    }

    fn aad(account: &str, kind: SecretKind) -> Vec<u8> {
        let mut aad = account.as_bytes().to_vec();
        aad.push(0);
        aad.push(kind.code());
        aad
    }

    pub(crate) fn seal(&self, account: &str, kind: SecretKind, clear: &str) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| Error::storage("no randomness for a nonce", e))?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.key));
        let aad = Self::aad(account, kind);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: clear.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| Error::storage_msg("cannot encrypt a secret".into()))?;
        let mut out = Vec::with_capacity(1 + ID_LEN + NONCE_LEN + ct.len());
        out.push(FORMAT);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Whether `sealed` was sealed under this key.
    pub(crate) fn sealed_by_me(&self, sealed: &[u8]) -> bool {
        sealed.get(1..1 + ID_LEN) == Some(&self.id[..])
    }

    pub(crate) fn open(&self, account: &str, kind: SecretKind, sealed: &[u8]) -> Result<Secret> {
        let damaged =
            || Error::storage_msg(format!("stored {kind:?} of account {account} is damaged"));
        if sealed.first() != Some(&FORMAT) || sealed.len() < 1 + ID_LEN + NONCE_LEN {
            return Err(damaged());
        }
        if !self.sealed_by_me(sealed) {
            return Err(Error::storage_msg(format!(
                "stored {kind:?} of account {account} was encrypted with a secret key that is \
                 missing or was replaced ({KEY_FILE}); set the password again"
            )));
        }
        let nonce = &sealed[1 + ID_LEN..1 + ID_LEN + NONCE_LEN];
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.key));
        let aad = Self::aad(account, kind);
        let mut clear = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: &sealed[1 + ID_LEN + NONCE_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| damaged())?;
        match String::from_utf8(clear) {
            Ok(s) => Ok(Secret(s)),
            Err(e) => {
                clear = e.into_bytes();
                wipe(&mut clear);
                Err(damaged())
            }
        }
    }
}

/// The systemd credential that holds the store key (`LoadCredentialEncrypted=
/// master-key:…` in the unit; docs/BACKUP.md "The store key").
pub(super) const CREDENTIAL: &str = "master-key";

/// The store key from `$CREDENTIALS_DIRECTORY/master-key` when systemd
/// passed one: it then wins over `secret.key`, which is neither read nor
/// created. A credential of the wrong size refuses the start.
pub(super) fn credential_key() -> Result<Option<SecretKey>> {
    let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") else {
        return Ok(None);
    };
    let path = Path::new(&dir).join(CREDENTIAL);
    if !path.exists() {
        return Ok(None);
    }
    SecretKey::load(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::create(&dir.path().join(KEY_FILE)).unwrap();
        let sealed = key.seal("a1", SecretKind::Password, "hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        let s = key.open("a1", SecretKind::Password, &sealed).unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        // Bound to account and kind.
        assert!(key.open("a2", SecretKind::Password, &sealed).is_err());
        assert!(key.open("a1", SecretKind::SmtpPassword, &sealed).is_err());
        // Same clear text, different nonce.
        let again = key.seal("a1", SecretKind::Password, "hunter2").unwrap();
        assert_ne!(sealed, again);
    }

    #[test]
    fn key_file_is_private_reloads_and_is_never_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        assert!(SecretKey::load(&path).unwrap().is_none());
        let key = SecretKey::create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = key.seal("a1", SecretKind::OAuthTokens, "{}").unwrap();
        let loaded = SecretKey::load(&path).unwrap().unwrap();
        assert_eq!(
            loaded
                .open("a1", SecretKind::OAuthTokens, &sealed)
                .unwrap()
                .expose(),
            "{}"
        );
        assert!(SecretKey::create(&path).is_err());
        // A different key reports the missing key, not damage.
        std::fs::remove_file(&path).unwrap();
        let other = SecretKey::create(&path).unwrap();
        let err = other
            .open("a1", SecretKind::OAuthTokens, &sealed)
            .unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
