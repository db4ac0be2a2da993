//! `[oauth.office365]`: the app registration that Office 365 accounts sign
//! in with (ARCHITECTURE.md "What it does", Connect).
//!
//! Microsoft's identity platform needs a public client (an app registration
//! with "Allow public client flows" on, no client secret): the device-code
//! flow (RFC 8628) and the authorization-code flow with PKCE (RFC 7636)
//! both run without a secret, which a daemon on a customer's machine could
//! not keep anyway. Endpoints are `{authority}/{tenant}/oauth2/v2.0/…`;
//! the scopes are Exchange Online's, one per protocol, plus
//! `offline_access`, which Microsoft needs before it hands out a refresh
//! token (crate::oauth adds it to every request).

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::net::is_loopback_host;

/// Microsoft's public cloud; national clouds have their own host.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Any work or school account; a tenant id or domain pins one directory.
pub const DEFAULT_TENANT: &str = "organizations";
/// The redirect Microsoft registers for native clients: the sign-in ends
/// on a blank page of Microsoft's whose address the CRM hands to
/// CompleteConnect.
pub const DEFAULT_REDIRECT_URI: &str =
    "https://login.microsoftonline.com/common/oauth2/nativeclient";
pub const DEFAULT_IMAP_SCOPE: &str = "https://outlook.office.com/IMAP.AccessAsUser.All";
pub const DEFAULT_POP3_SCOPE: &str = "https://outlook.office.com/POP.AccessAsUser.All";
pub const DEFAULT_SMTP_SCOPE: &str = "https://outlook.office.com/SMTP.Send";

/// `[oauth]`: one table per provider.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OAuthConfig {
    pub office365: Office365Config,
}

/// `[oauth.office365]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Office365Config {
    /// Application (client) id of the app registration; `None` until the
    /// admin sets it, and Connect says so.
    pub client_id: Option<String>,
    /// `organizations`, `common`, a tenant id or a verified domain.
    pub tenant: String,
    /// Scheme, host and optional path prefix, without a trailing slash.
    pub authority: String,
    pub redirect_uri: String,
    pub imap_scope: String,
    pub pop3_scope: String,
    pub smtp_scope: String,
}

impl Default for Office365Config {
    fn default() -> Self {
        Office365Config {
            client_id: None,
            tenant: DEFAULT_TENANT.into(),
            authority: DEFAULT_AUTHORITY.into(),
            redirect_uri: DEFAULT_REDIRECT_URI.into(),
            imap_scope: DEFAULT_IMAP_SCOPE.into(),
            pop3_scope: DEFAULT_POP3_SCOPE.into(),
            smtp_scope: DEFAULT_SMTP_SCOPE.into(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth {
    office365: Option<RawOffice365>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOffice365 {
    client_id: Option<String>,
    tenant: Option<String>,
    authority: Option<String>,
    redirect_uri: Option<String>,
    imap_scope: Option<String>,
    pop3_scope: Option<String>,
    smtp_scope: Option<String>,
}

const KEY: &str = "oauth.office365";
/// Longest value of any key here; ids, hosts and scopes are far shorter.
const MAX_LEN: usize = 512;

pub(super) fn validate(raw: RawOAuth) -> Result<OAuthConfig> {
    let Some(raw) = raw.office365 else {
        return Ok(OAuthConfig::default());
    };
    let d = Office365Config::default();
    let client_id = match raw.client_id {
        Some(id) => Some(word("client_id", id, |c| {
            c.is_ascii_alphanumeric() || "-._~".contains(c)
        })?),
        None => None,
    };
    let tenant = match raw.tenant {
        Some(t) => word("tenant", t, |c| {
            c.is_ascii_alphanumeric() || "-.".contains(c)
        })?,
        None => d.tenant,
    };
    let authority = match raw.authority {
        Some(a) => authority(&a)?,
        None => d.authority,
    };
    let redirect_uri = match raw.redirect_uri {
        Some(r) => redirect_uri(&r)?,
        None => d.redirect_uri,
    };
    let scope = |key: &str, v: Option<String>, default: String| match v {
        Some(s) => word(key, s, |c| c.is_ascii_graphic() && c != '"' && c != '\\'),
        None => Ok(default),
    };
    Ok(OAuthConfig {
        office365: Office365Config {
            client_id,
            tenant,
            authority,
            redirect_uri,
            imap_scope: scope("imap_scope", raw.imap_scope, d.imap_scope)?,
            pop3_scope: scope("pop3_scope", raw.pop3_scope, d.pop3_scope)?,
            smtp_scope: scope("smtp_scope", raw.smtp_scope, d.smtp_scope)?,
        },
    })
}

fn invalid(key: &str, message: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{KEY}.{key}"), message)
}

/// A non-empty value of allowed characters only: these go into URLs and
/// form bodies, where a space or quote would be a different request.
fn word(key: &str, value: String, allowed: impl Fn(char) -> bool) -> Result<String> {
    if value.is_empty() || value.len() > MAX_LEN {
        return Err(invalid(key, format!("must be 1 to {MAX_LEN} characters")));
    }
    if let Some(c) = value.chars().find(|&c| !allowed(c)) {
        return Err(invalid(
            key,
            format!("{value:?}: character {c:?} is not allowed"),
        ));
    }
    Ok(value)
}

/// https, or http to a loopback host (a local test server): the token
/// endpoint receives refresh tokens and must never be reached in clear.
fn authority(value: &str) -> Result<String> {
    let url = parse_url("authority", value)?;
    let host = url.host_str().unwrap_or("");
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(host) => {}
        _ => {
            return Err(invalid(
                "authority",
                format!("{value:?}: must be an https URL (http only to a loopback host)"),
            ))
        }
    }
    if host.is_empty() || url.query().is_some() || !url.username().is_empty() {
        return Err(invalid(
            "authority",
            format!("{value:?}: must be scheme, host and optional path, nothing else"),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Any absolute URL without a fragment: Microsoft's native-client page,
/// `http://localhost…` (RFC 8252 §7.3) or an app's own scheme.
fn redirect_uri(value: &str) -> Result<String> {
    parse_url("redirect_uri", value)?;
    Ok(value.to_string())
}

fn parse_url(key: &str, value: &str) -> Result<oauth2::url::Url> {
    if value.len() > MAX_LEN {
        return Err(invalid(key, format!("longer than {MAX_LEN} characters")));
    }
    let url = oauth2::url::Url::parse(value)
        .map_err(|e| invalid(key, format!("{value:?} is not a URL: {e}")))?;
    if url.fragment().is_some() {
        return Err(invalid(
            key,
            format!("{value:?}: must not have a #fragment"),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::error::Error;

    fn err(text: &str) -> (String, String) {
        match Config::parse(text) {
            Err(Error::InvalidArgument { key, message }) => (key, message),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_microsofts_public_cloud() {
        let c = Config::parse("").unwrap().oauth.office365;
        assert_eq!(c.client_id, None);
        assert_eq!(c.tenant, "organizations");
        assert_eq!(c.authority, "https://login.microsoftonline.com");
        assert_eq!(
            c.imap_scope,
            "https://outlook.office.com/IMAP.AccessAsUser.All"
        );
        assert_eq!(
            c.pop3_scope,
            "https://outlook.office.com/POP.AccessAsUser.All"
        );
        assert_eq!(c.smtp_scope, "https://outlook.office.com/SMTP.Send");
        // An empty table is the same as none.
        let empty = Config::parse("[oauth.office365]\n")
            .unwrap()
            .oauth
            .office365;
        assert_eq!(empty, c);
    }

    #[test]
    fn every_key_is_read() {
        let c = Config::parse(
            r#"
[oauth.office365]
client_id = "0a1b2c3d-1111-2222-3333-444455556666"
tenant = "contoso.onmicrosoft.com"
authority = "https://login.microsoftonline.us/"
redirect_uri = "http://localhost:8400/done"
imap_scope = "https://outlook.office365.us/IMAP.AccessAsUser.All"
pop3_scope = "https://outlook.office365.us/POP.AccessAsUser.All"
smtp_scope = "https://outlook.office365.us/SMTP.Send"
"#,
        )
        .unwrap()
        .oauth
        .office365;
        assert_eq!(
            c.client_id.as_deref(),
            Some("0a1b2c3d-1111-2222-3333-444455556666")
        );
        assert_eq!(c.tenant, "contoso.onmicrosoft.com");
        assert_eq!(c.authority, "https://login.microsoftonline.us");
        assert_eq!(c.redirect_uri, "http://localhost:8400/done");
        assert!(c.imap_scope.contains("office365.us"));
    }

    #[test]
    fn http_authority_only_to_loopback() {
        let ok = Config::parse("[oauth.office365]\nauthority = \"http://127.0.0.1:9000\"\n")
            .unwrap()
            .oauth
            .office365;
        assert_eq!(ok.authority, "http://127.0.0.1:9000");
        let (key, msg) =
            err("[oauth.office365]\nauthority = \"http://login.microsoftonline.com\"\n");
        assert_eq!(key, "oauth.office365.authority");
        assert!(msg.contains("https"), "{msg}");
        let (key, _) = err("[oauth.office365]\nauthority = \"https://x.test/?a=b\"\n");
        assert_eq!(key, "oauth.office365.authority");
        let (key, _) = err("[oauth.office365]\nauthority = \"not a url\"\n");
        assert_eq!(key, "oauth.office365.authority");
    }

    #[test]
    fn bad_values_name_their_key() {
        let (key, _) = err("[oauth.office365]\ntenant = \"a b\"\n");
        assert_eq!(key, "oauth.office365.tenant");
        let (key, _) = err("[oauth.office365]\nclient_id = \"\"\n");
        assert_eq!(key, "oauth.office365.client_id");
        let (key, _) = err("[oauth.office365]\nimap_scope = \"a b\"\n");
        assert_eq!(key, "oauth.office365.imap_scope");
        let (key, _) = err("[oauth.office365]\nredirect_uri = \"https://x.test/#f\"\n");
        assert_eq!(key, "oauth.office365.redirect_uri");
        let (key, msg) = err("[oauth.office365]\nclient = \"x\"\n");
        assert_eq!(key, "oauth.office365.client");
        assert!(msg.contains("unknown field"), "{msg}");
        let (key, msg) = err("[oauth.google]\nclient_id = \"x\"\n");
        assert_eq!(key, "google");
        assert!(msg.contains("office365"), "{msg}");
    }
}
