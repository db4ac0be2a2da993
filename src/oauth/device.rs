//! Connect("device"): the device authorization grant (RFC 8628).
//!
//! The user opens `verification_uri` on any device, types `user_code` and
//! signs in; meanwhile we poll the token endpoint. The `oauth2` crate's
//! poll loop does RFC 8628 §3.5: it waits `interval` between polls, adds
//! 5 s on `slow_down`, goes on on `authorization_pending`, doubles the
//! wait (up to [`MAX_BACKOFF`]) while the endpoint is unreachable (our
//! HTTP client turns 5xx and 429 into that too), and stops on anything
//! else or when the code expires. The device code is kept (sealed) in the
//! store until then, so polling resumes after a restart.

use std::time::Duration;

use oauth2::{StandardDeviceAuthorizationResponse, TokenResponse};

use super::stored::{self, now, Pending};
use super::{errors, provider, Office365};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::store::SecretKind;

/// Longest wait between polls while the token endpoint is unreachable.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the user needs to sign in (the reply of Connect("device")).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStart {
    /// Where to sign in, e.g. https://microsoft.com/devicelogin.
    pub verification_uri: String,
    /// The code to type there.
    pub user_code: String,
    /// Seconds until the code expires.
    pub expires_in: u64,
}

impl Office365 {
    /// Asks Microsoft for a device code and keeps it as the account's
    /// pending sign-in (replacing an earlier one).
    pub async fn start_device(&self, account: &Account) -> Result<DeviceStart> {
        let provider = self.provider()?;
        let scopes = provider.scopes(account.kind)?;
        let device: StandardDeviceAuthorizationResponse = provider
            .client
            .exchange_device_code()
            .add_scopes(provider::scope_list(&scopes))
            .request_async(&self.http)
            .await
            .map_err(|e| errors::from_request("asking for a device code", e))?;
        let expires_in = device.expires_in().as_secs();
        let start = DeviceStart {
            verification_uri: device.verification_uri().to_string(),
            user_code: device.user_code().secret().clone(),
            expires_in,
        };
        let pending = Pending::Device {
            device,
            expires_at: now().saturating_add(expires_in),
            scopes,
        };
        stored::save_pending(&self.store, &account.id, &pending).await?;
        Ok(start)
    }

    /// Polls until the user has signed in (tokens stored, `Ok`), declined
    /// or let the code expire (`NeedsAuthorization`; the pending sign-in
    /// is gone). Any other failure keeps the pending sign-in, so calling
    /// this again resumes — also after a restart. Cancel by dropping the
    /// future.
    pub async fn finish_device(&self, account: &Account) -> Result<()> {
        let provider = self.provider()?;
        let pending = stored::load_pending(&self.store, &account.id).await?;
        let (device, expires_at, scopes) = match &pending {
            Some(Pending::Device {
                device,
                expires_at,
                scopes,
            }) => (device, *expires_at, scopes.clone()),
            _ => {
                return Err(Error::NeedsAuthorization(
                    "no device sign-in is pending for this account; Connect first".into(),
                ))
            }
        };
        let left = expires_at.saturating_sub(now());
        if left == 0 {
            stored::remove(&self.store, &account.id, SecretKind::OAuthPending).await?;
            return Err(errors::from_answer("device sign-in", "expired_token", None));
        }
        let answer = provider
            .client
            .exchange_device_access_token(device)
            .set_max_backoff_interval(MAX_BACKOFF)
            .request_async(
                &self.http,
                tokio::time::sleep,
                Some(Duration::from_secs(left)),
            )
            .await;
        let tokens = match answer {
            Ok(t) => t,
            Err(e) => {
                let err = errors::from_request("device sign-in", e);
                if matches!(err, Error::NeedsAuthorization(_)) {
                    stored::remove(&self.store, &account.id, SecretKind::OAuthPending).await?;
                }
                return Err(err);
            }
        };
        let Some(refresh) = tokens.refresh_token() else {
            return Err(no_refresh_token());
        };
        let issued_at = now();
        let record = stored::Tokens {
            refresh_token: refresh.secret().clone(),
            access_token: tokens.access_token().secret().clone(),
            issued_at,
            expires_at: issued_at + lifetime(tokens.expires_in()),
            scopes,
        };
        self.commit_sign_in(&account.id, &record).await
    }

    /// Stores the tokens of a completed sign-in, then drops the pending
    /// one (a crash in between leaves a stale pending sign-in, which
    /// expires; never a lost grant).
    pub(super) async fn commit_sign_in(
        &self,
        account: &str,
        tokens: &stored::Tokens,
    ) -> Result<()> {
        let lock = self.lock(account);
        let _held = lock.lock().await;
        stored::save_tokens(&self.store, account, tokens).await?;
        stored::remove(&self.store, account, SecretKind::OAuthPending).await
    }
}

/// An access token's life from `expires_in`; Microsoft always sends it,
/// RFC 6749 §5.1 only recommends it: without, assume the shortest life
/// Microsoft issues (one hour).
pub(super) fn lifetime(expires_in: Option<Duration>) -> u64 {
    expires_in.map_or(3600, |d| d.as_secs())
}

/// A grant without a refresh token is useless to a daemon.
pub(super) fn no_refresh_token() -> Error {
    Error::Authentication(format!(
        "Office 365 sign-in: the server gave no refresh token; the scope {} must be allowed \
         for the app",
        super::OFFLINE_ACCESS
    ))
}
