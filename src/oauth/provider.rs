//! Microsoft's endpoints and scopes for the configured app registration,
//! as an `oauth2` client.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, ClientId, DeviceAuthorizationUrl, EndpointNotSet, EndpointSet, RedirectUrl,
    Scope, TokenUrl,
};

use crate::account::Kind;
use crate::config::Office365Config;
use crate::error::{Error, Result};

/// A client with the authorize, device-code and token endpoints set.
pub type MsClient =
    BasicClient<EndpointSet, EndpointSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Microsoft needs this scope to issue a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// The configured provider.
#[derive(Debug, Clone)]
pub struct Provider {
    pub client: MsClient,
    config: Office365Config,
}

impl Provider {
    /// `Ok(None)` when `client_id` is not configured: Office 365 accounts
    /// cannot sign in, and every flow says so ([`not_configured`]).
    pub fn new(config: &Office365Config) -> Result<Option<Provider>> {
        let Some(client_id) = &config.client_id else {
            return Ok(None);
        };
        let base = format!("{}/{}/oauth2/v2.0", config.authority, config.tenant);
        let url_error = |key: &str, e: oauth2::url::ParseError| {
            Error::invalid(format!("oauth.office365.{key}"), e)
        };
        let client = BasicClient::new(ClientId::new(client_id.clone()))
            // A public client: the client id goes in the form, there is no
            // secret for HTTP Basic.
            .set_auth_type(AuthType::RequestBody)
            .set_auth_uri(
                AuthUrl::new(format!("{base}/authorize")).map_err(|e| url_error("authority", e))?,
            )
            .set_device_authorization_url(
                DeviceAuthorizationUrl::new(format!("{base}/devicecode"))
                    .map_err(|e| url_error("authority", e))?,
            )
            .set_token_uri(
                TokenUrl::new(format!("{base}/token")).map_err(|e| url_error("authority", e))?,
            )
            .set_redirect_uri(
                RedirectUrl::new(config.redirect_uri.clone())
                    .map_err(|e| url_error("redirect_uri", e))?,
            );
        Ok(Some(Provider {
            client,
            config: config.clone(),
        }))
    }

    /// One token serves the incoming protocol and SMTP (both are
    /// outlook.office.com scopes), and `offline_access` brings the refresh
    /// token.
    pub fn scopes(&self, kind: Kind) -> Result<String> {
        let incoming = match kind {
            Kind::ImapOffice365 => &self.config.imap_scope,
            Kind::Pop3Office365 => &self.config.pop3_scope,
            Kind::Imap | Kind::Pop3 => {
                return Err(Error::invalid(
                    "kind",
                    format!(
                        "{} accounts sign in with a password; only imap-office365 and \
                         pop3-office365 accounts Connect",
                        kind.as_str()
                    ),
                ))
            }
        };
        Ok(format!(
            "{incoming} {} {OFFLINE_ACCESS}",
            self.config.smtp_scope
        ))
    }

    pub fn redirect_uri(&self) -> &str {
        &self.config.redirect_uri
    }
}

/// `scopes` (space-separated) as the oauth2 crate wants them.
pub fn scope_list(scopes: &str) -> Vec<Scope> {
    scopes
        .split_ascii_whitespace()
        .map(|s| Scope::new(s.to_string()))
        .collect()
}

/// What every flow says when the daemon has no app registration.
pub fn not_configured() -> Error {
    Error::Authentication(
        "Office 365 sign-in is not configured: set [oauth.office365] client_id in the daemon \
         config (an app registration with \"Allow public client flows\")"
            .into(),
    )
}
