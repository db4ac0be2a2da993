//! Office 365 sign-in: OAuth 2.0 flows, token keeping, XOAUTH2.
//!
//! An Office 365 account has no password. The admin presses Connect and
//! signs in at Microsoft; from then on the daemon holds a refresh token
//! and logs in to IMAP, POP3 and SMTP with short-lived access tokens
//! (XOAUTH2). [`Office365`] is the whole API the account task and the
//! D-Bus layer need:
//!
//! - **Connect("device")**: [`Office365::start_device`] asks for a device
//!   code (RFC 8628 §3.1) and returns `verification_uri`, `user_code`,
//!   `expires_in`; [`Office365::finish_device`] polls the token endpoint
//!   (§3.4–3.5: `interval`, `slow_down` adds 5 s, `authorization_pending`,
//!   `expired_token`, `access_denied`, and back-off while the endpoint is
//!   unreachable) until the user is done.
//! - **Connect("browser")**: [`Office365::start_browser`] returns an
//!   `authorize_url` with PKCE S256 (RFC 7636) and a random state;
//!   **CompleteConnect(redirect_url)**: [`Office365::complete_browser`]
//!   checks the state and redeems the code with the verifier.
//! - **Logins**: [`Office365::access_token`] gives a valid access token,
//!   refreshing it when less than [`REFRESH_MARGIN`] (at most half its
//!   life) is left; [`Office365::refresh`] forces that when a server
//!   rejected a token we thought valid.
//!
//! Decisions (docs/OAUTH.md says the same for admins):
//! - Tokens and a started sign-in are secrets in the store ([`stored`]);
//!   a restart between Connect and completion goes on where it was: call
//!   `finish_device` again (it polls for the rest of the code's life), or
//!   CompleteConnect within [`BROWSER_TIMEOUT`] of Connect.
//! - Microsoft rotates the refresh token on every use, so the new one is
//!   committed to the store before the new access token is handed out;
//!   refreshes of one account are serialised, so two logins at once never
//!   spend the same refresh token twice.
//! - A dead grant (`invalid_grant` …, see [`errors`]) deletes the tokens
//!   and is [`Error::NeedsAuthorization`]: later calls answer at once
//!   without asking Microsoft again, until the next Connect. A token
//!   endpoint that is down is [`Error::Connection`], and the caller backs
//!   off as for a mail server that is down.
//! - One pending sign-in per account: a new Connect replaces the old one.
//!   Flows of one account are started and finished by its task, one at a
//!   time.

mod browser;
mod device;
pub mod errors;
pub mod http;
mod provider;
mod refresh;
pub mod smtp;
mod stored;
pub mod xoauth2;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use browser::BrowserStart;
pub use device::DeviceStart;
pub use provider::OFFLINE_ACCESS;
/// Unix seconds now, the clock token expiries are in.
pub use stored::now as unix_now;

use crate::config::Office365Config;
use crate::error::Result;
use crate::net::{Timeouts, TlsContext};
use crate::store::{Secret, SecretKind, Store};
use provider::Provider;

/// Refresh an access token this long before it expires (Microsoft's live
/// 60–90 minutes), or at half its life when that is shorter.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// How long CompleteConnect may come after Connect("browser"): time for a
/// sign-in with MFA, short enough that a leaked redirect soon expires.
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// An access token for one login. Debug shows no secret; zeroed on drop.
#[derive(Debug)]
pub struct AccessToken {
    secret: Secret,
    expires_at: u64,
}

impl AccessToken {
    /// The bearer token, for [`xoauth2`].
    pub fn secret(&self) -> &str {
        self.secret.expose()
    }

    /// Unix seconds when the server stops taking it (a long IDLE should
    /// log in afresh before then).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

/// Office 365 sign-in for every account of the daemon: cheap to share
/// (clone the `Arc`), one per daemon.
#[derive(Debug)]
pub struct Office365 {
    provider: Option<Provider>,
    http: http::Http,
    store: Arc<Store>,
    /// One lock per account: refreshes of an account run one at a time.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Office365 {
    /// Set up from `[oauth.office365]`; without a `client_id` every flow
    /// and login fails with a message saying so (the daemon still starts).
    pub fn new(
        config: &Office365Config,
        tls: &TlsContext,
        t: &Timeouts,
        store: Arc<Store>,
    ) -> Result<Office365> {
        Ok(Office365 {
            provider: Provider::new(config)?,
            http: http::Http::new(tls, t)?,
            store,
            locks: Mutex::new(HashMap::new()),
        })
    }

    fn provider(&self) -> Result<&Provider> {
        self.provider.as_ref().ok_or_else(provider::not_configured)
    }

    /// The account's lock for token work.
    fn lock(&self, account: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(account.to_string()).or_default().clone()
    }

    /// Whether the account has tokens (the `Authorized` property).
    pub async fn is_authorized(&self, account: &str) -> Result<bool> {
        Ok(stored::load_tokens(&self.store, account).await?.is_some())
    }

    /// Which sign-in is pending and unexpired: `Some("device")` tells the
    /// task after a restart to call [`Office365::finish_device`] again.
    pub async fn pending_flow(&self, account: &str) -> Result<Option<&'static str>> {
        Ok(match stored::load_pending(&self.store, account).await? {
            Some(p) if p.expires_at() > stored::now() => Some(match p {
                stored::Pending::Device { .. } => "device",
                stored::Pending::Browser { .. } => "browser",
            }),
            _ => None,
        })
    }

    /// Forgets tokens and any pending sign-in (the user changed, or the
    /// admin disconnects the account).
    pub async fn disconnect(&self, account: &str) -> Result<()> {
        let lock = self.lock(account);
        let _held = lock.lock().await;
        stored::remove(&self.store, account, SecretKind::OAuthPending).await?;
        stored::remove(&self.store, account, SecretKind::OAuthTokens).await
    }
}
