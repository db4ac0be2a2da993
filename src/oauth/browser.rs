//! Connect("browser") and CompleteConnect: the authorization-code grant
//! (RFC 6749 §4.1) with PKCE (RFC 7636, S256), as a public client.
//!
//! The CRM opens `authorize_url` in a browser (its own web view, usually);
//! Microsoft ends the sign-in by redirecting to the configured
//! `redirect_uri` with `code` and `state` (or `error`) in the query, and
//! the CRM hands that whole address to CompleteConnect. We check that it
//! is our redirect, that `state` is the one we made (RFC 6749 §10.12: a
//! redirect that someone else started is refused), and redeem the code
//! with the verifier that only we hold. A wrong state leaves the pending
//! sign-in alone, so the right redirect still completes it.

use oauth2::url::Url;
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, TokenResponse};

use super::device::{lifetime, no_refresh_token};
use super::stored::{self, now, Pending};
use super::{errors, provider, Office365, BROWSER_TIMEOUT};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::store::SecretKind;

/// The reply of Connect("browser").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserStart {
    pub authorize_url: String,
    /// Seconds CompleteConnect has.
    pub expires_in: u64,
}

/// Longest redirect URL taken: Microsoft's are well under 2 KiB.
const MAX_REDIRECT: usize = 16 * 1024;

impl Office365 {
    /// Makes a PKCE verifier and a state, keeps them as the account's
    /// pending sign-in (replacing an earlier one), and returns the URL to
    /// open. `login_hint` pre-fills the account's user at Microsoft.
    pub async fn start_browser(&self, account: &Account) -> Result<BrowserStart> {
        let provider = self.provider()?;
        let scopes = provider.scopes(account.kind)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = provider
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(provider::scope_list(&scopes))
            .set_pkce_challenge(challenge);
        if !account.username.is_empty() {
            request = request.add_extra_param("login_hint", account.username.as_str());
        }
        let (url, state) = request.url();
        let expires_in = BROWSER_TIMEOUT.as_secs();
        let pending = Pending::Browser {
            state: state.into_secret(),
            verifier: verifier.into_secret(),
            redirect_uri: provider.redirect_uri().to_string(),
            expires_at: now().saturating_add(expires_in),
            scopes,
        };
        stored::save_pending(&self.store, &account.id, &pending).await?;
        Ok(BrowserStart {
            authorize_url: url.to_string(),
            expires_in,
        })
    }

    /// Completes the browser sign-in from the address Microsoft redirected
    /// to. Errors name `redirect_url` when the address is at fault.
    pub async fn complete_browser(&self, account: &Account, redirect_url: &str) -> Result<()> {
        let provider = self.provider()?;
        let mut pending = stored::load_pending(&self.store, &account.id).await?;
        let Some(Pending::Browser {
            state,
            verifier,
            redirect_uri,
            expires_at,
            scopes,
        }) = pending.as_mut()
        else {
            return Err(bad(
                "no browser sign-in is pending; call Connect(\"browser\") first",
            ));
        };
        let (state, redirect_uri, expires_at, scopes) = (
            state.clone(),
            redirect_uri.clone(),
            *expires_at,
            scopes.clone(),
        );
        let verifier = std::mem::take(verifier);
        let verifier = PkceCodeVerifier::new(verifier);
        if expires_at <= now() {
            stored::remove(&self.store, &account.id, SecretKind::OAuthPending).await?;
            return Err(Error::NeedsAuthorization(format!(
                "the browser sign-in expired ({} minutes after Connect); Connect again",
                BROWSER_TIMEOUT.as_secs() / 60
            )));
        }
        let answer = Redirect::parse(redirect_url, &redirect_uri)?;
        if answer.state.as_deref() != Some(state.as_str()) {
            return Err(bad(
                "its state does not match the pending sign-in (a stale or foreign redirect)",
            ));
        }
        if let Some(code) = answer.error {
            stored::remove(&self.store, &account.id, SecretKind::OAuthPending).await?;
            return Err(errors::from_answer(
                "browser sign-in",
                &code,
                answer.error_description.as_deref(),
            ));
        }
        let Some(code) = answer.code else {
            return Err(bad("it carries neither code nor error"));
        };
        let tokens = provider
            .client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await;
        let tokens = match tokens {
            Ok(t) => t,
            Err(e) => {
                let err = errors::from_request("redeeming the authorization code", e);
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
}

fn bad(what: &str) -> Error {
    Error::invalid("redirect_url", what)
}

/// The query of a redirect to our `redirect_uri`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Redirect {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl Redirect {
    /// Parses `url` and checks that it goes to `expected` (scheme, host,
    /// port and path; the query is ours to read).
    fn parse(url: &str, expected: &str) -> Result<Redirect> {
        if url.len() > MAX_REDIRECT {
            return Err(bad("too long to be a sign-in redirect"));
        }
        let got = Url::parse(url.trim()).map_err(|e| bad(&format!("not a URL: {e}")))?;
        let want = Url::parse(expected).map_err(|e| bad(&format!("redirect_uri: {e}")))?;
        let place = |u: &Url| {
            (
                u.scheme().to_string(),
                u.host_str().map(str::to_string),
                u.port_or_known_default(),
                u.path().to_string(),
            )
        };
        if place(&got) != place(&want) {
            return Err(bad(&format!(
                "it does not go to the configured redirect URI {expected}"
            )));
        }
        let mut r = Redirect::default();
        for (key, value) in got.query_pairs() {
            let slot = match key.as_ref() {
                "state" => &mut r.state,
                "code" => &mut r.code,
                "error" => &mut r.error,
                "error_description" => &mut r.error_description,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(bad(&format!("{key} is given twice")));
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NATIVE: &str = "https://login.microsoftonline.com/common/oauth2/nativeclient";

    #[test]
    fn redirect_query_is_read() {
        let r = Redirect::parse(
            &format!("{NATIVE}?code=c1&state=s1&session_state=x"),
            NATIVE,
        )
        .unwrap();
        assert_eq!(r.code.as_deref(), Some("c1"));
        assert_eq!(r.state.as_deref(), Some("s1"));
        let r = Redirect::parse(
            &format!("{NATIVE}?error=access_denied&error_description=AADSTS65004%3A+no&state=s"),
            NATIVE,
        )
        .unwrap();
        assert_eq!(r.error.as_deref(), Some("access_denied"));
        assert_eq!(r.error_description.as_deref(), Some("AADSTS65004: no"));
    }

    #[test]
    fn foreign_or_malformed_redirects_are_refused() {
        for url in [
            "https://evil.test/common/oauth2/nativeclient?code=c&state=s",
            "https://login.microsoftonline.com/other?code=c&state=s",
            "not a url",
            &format!("{NATIVE}?code=a&code=b&state=s"),
        ] {
            match Redirect::parse(url, NATIVE) {
                Err(Error::InvalidArgument { key, .. }) => assert_eq!(key, "redirect_url"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
