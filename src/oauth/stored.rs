//! The two sealed records of an Office 365 account, as JSON in the store's
//! secrets table (crate::store::secret):
//! - [`Tokens`] (`SecretKind::OAuthTokens`): refresh token, access token
//!   and its expiry in one value, so that a rotation is one commit and a
//!   crash never leaves a new access token beside an old refresh token;
//! - [`Pending`] (`SecretKind::OAuthPending`): a sign-in started by Connect
//!   and not yet completed — the device code, or the PKCE verifier and
//!   state — with its expiry. Kept in the store so that a daemon restart
//!   between Connect and completion loses nothing: the device flow goes on
//!   polling, CompleteConnect still finds its verifier.
//!
//! Store calls block on disk I/O, so they run in `spawn_blocking`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use oauth2::StandardDeviceAuthorizationResponse;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{Secret, SecretKind, Store};

/// The account's tokens.
#[derive(Serialize, Deserialize)]
pub struct Tokens {
    pub refresh_token: String,
    pub access_token: String,
    /// Unix seconds when the access token was received and when it expires.
    pub issued_at: u64,
    pub expires_at: u64,
    /// The scopes asked for, space-separated (they follow the account kind).
    pub scopes: String,
}

/// A sign-in in progress.
#[derive(Serialize, Deserialize)]
#[serde(tag = "flow", rename_all = "lowercase")]
pub enum Pending {
    /// RFC 8628: what the device authorization endpoint answered.
    Device {
        device: StandardDeviceAuthorizationResponse,
        expires_at: u64,
        scopes: String,
    },
    /// RFC 6749 §4.1 with RFC 7636: what the redirect must match and the
    /// verifier that redeems its code.
    Browser {
        state: String,
        verifier: String,
        redirect_uri: String,
        expires_at: u64,
        scopes: String,
    },
}

impl Pending {
    pub fn expires_at(&self) -> u64 {
        match self {
            Pending::Device { expires_at, .. } | Pending::Browser { expires_at, .. } => *expires_at,
        }
    }
}

/// Debug shows no secret: only which flow and when it expires.
impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let flow = match self {
            Pending::Device { .. } => "device",
            Pending::Browser { .. } => "browser",
        };
        f.debug_struct("Pending")
            .field("flow", &flow)
            .field("expires_at", &self.expires_at())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The clear tokens are zeroed when the record goes (Secret's drop).
impl Drop for Tokens {
    fn drop(&mut self) {
        drop(Secret::from(std::mem::take(&mut self.refresh_token)));
        drop(Secret::from(std::mem::take(&mut self.access_token)));
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Pending::Browser { verifier, .. } = self {
            drop(Secret::from(std::mem::take(verifier)));
        }
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub async fn load_tokens(store: &Arc<Store>, account: &str) -> Result<Option<Tokens>> {
    load(store, account, SecretKind::OAuthTokens).await
}

pub async fn save_tokens(store: &Arc<Store>, account: &str, tokens: &Tokens) -> Result<()> {
    save(store, account, SecretKind::OAuthTokens, Some(tokens)).await
}

pub async fn load_pending(store: &Arc<Store>, account: &str) -> Result<Option<Pending>> {
    load(store, account, SecretKind::OAuthPending).await
}

pub async fn save_pending(store: &Arc<Store>, account: &str, pending: &Pending) -> Result<()> {
    save(store, account, SecretKind::OAuthPending, Some(pending)).await
}

/// Removes one record (`None` as the value removes it).
pub async fn remove(store: &Arc<Store>, account: &str, kind: SecretKind) -> Result<()> {
    save::<Tokens>(store, account, kind, None).await
}

async fn load<T: DeserializeOwned + Send + 'static>(
    store: &Arc<Store>,
    account: &str,
    kind: SecretKind,
) -> Result<Option<T>> {
    let (store, id) = (store.clone(), account.to_string());
    blocking(move || {
        let Some(secret) = store.secret(&id, kind)? else {
            return Ok(None);
        };
        serde_json::from_str(secret.expose())
            .map(Some)
            .map_err(|_| Error::storage_msg(format!("stored {kind:?} of account {id} is damaged")))
    })
    .await
}

async fn save<T: Serialize>(
    store: &Arc<Store>,
    account: &str,
    kind: SecretKind,
    value: Option<&T>,
) -> Result<()> {
    let json = match value {
        Some(v) => Some(Secret::from(serde_json::to_string(v).map_err(|e| {
            Error::storage(
                &format!("cannot encode the {kind:?} of account {account}"),
                e,
            )
        })?)),
        None => None,
    };
    let (store, id) = (store.clone(), account.to_string());
    blocking(move || store.set_secret(&id, kind, json.as_ref().map(Secret::expose))).await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::storage("a store task failed", e))?
}
