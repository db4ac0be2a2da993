//! Access tokens for logins, refreshed ahead of expiry (RFC 6749 §6).
//!
//! Microsoft rotates the refresh token on every use ("refresh tokens
//! replace themselves with a fresh token upon every use"), and a strict
//! server revokes the old one at once. So under the account's lock: read
//! the stored tokens, refresh if needed, commit the new refresh token and
//! access token in one store transaction, and only then hand the access
//! token out. If the commit fails the new access token is not used (a
//! login with it would succeed once and leave us with a spent refresh
//! token on disk). A crash between Microsoft's answer and our commit
//! loses the new refresh token; Microsoft keeps the old one valid for a
//! while, a strict server does not, and then the account asks for Connect.

use oauth2::{RefreshToken, TokenResponse};

use super::device::lifetime;
use super::stored::{self, now, Tokens};
use super::{errors, provider, AccessToken, Office365, REFRESH_MARGIN};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::store::{Secret, SecretKind};

impl Office365 {
    /// A valid access token for XOAUTH2: the stored one while more than
    /// the margin is left, else a fresh one. `NeedsAuthorization` when
    /// the account has no tokens or its grant is dead (then the tokens
    /// are deleted: no later call asks Microsoft again).
    pub async fn access_token(&self, account: &Account) -> Result<AccessToken> {
        self.token(account, false).await
    }

    /// Refreshes now, whatever the expiry says: for a token that a mail
    /// server rejected although it had time left (revoked sessions).
    pub async fn refresh(&self, account: &Account) -> Result<AccessToken> {
        self.token(account, true).await
    }

    async fn token(&self, account: &Account, force: bool) -> Result<AccessToken> {
        let provider = self.provider()?;
        let lock = self.lock(&account.id);
        let _held = lock.lock().await;
        let Some(tokens) = stored::load_tokens(&self.store, &account.id).await? else {
            return Err(Error::NeedsAuthorization(
                "the Office 365 account is not connected; Connect to sign in".into(),
            ));
        };
        if !force && fresh(&tokens, now()) {
            return Ok(AccessToken {
                secret: Secret::from(tokens.access_token.clone()),
                expires_at: tokens.expires_at,
            });
        }
        let scopes = provider.scopes(account.kind)?;
        let refresh = RefreshToken::new(tokens.refresh_token.clone());
        let answer = provider
            .client
            .exchange_refresh_token(&refresh)
            .add_scopes(provider::scope_list(&scopes))
            .request_async(&self.http)
            .await;
        drop(Secret::from(refresh.into_secret()));
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                let err = errors::from_request("refreshing the access token", e);
                if let Error::NeedsAuthorization(why) = &err {
                    tracing::warn!(
                        account_id = %account.id,
                        "Office 365 no longer accepts the account's sign-in, it needs Connect: {why}"
                    );
                    stored::remove(&self.store, &account.id, SecretKind::OAuthTokens).await?;
                }
                return Err(err);
            }
        };
        let issued_at = now();
        let next = Tokens {
            // RFC 6749 §6: the server MAY issue a new refresh token; if it
            // does not, the old one stays valid.
            refresh_token: answer
                .refresh_token()
                .map_or_else(|| tokens.refresh_token.clone(), |r| r.secret().clone()),
            access_token: answer.access_token().secret().clone(),
            issued_at,
            expires_at: issued_at + lifetime(answer.expires_in()),
            scopes,
        };
        stored::save_tokens(&self.store, &account.id, &next).await?;
        Ok(AccessToken {
            secret: Secret::from(next.access_token.clone()),
            expires_at: next.expires_at,
        })
    }
}

/// Whether the stored access token has more than the margin left: five
/// minutes, or half its life when that is shorter.
fn fresh(tokens: &Tokens, now: u64) -> bool {
    let life = tokens.expires_at.saturating_sub(tokens.issued_at);
    let margin = REFRESH_MARGIN.as_secs().min(life / 2);
    tokens.expires_at.saturating_sub(now) > margin
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(issued_at: u64, expires_at: u64) -> Tokens {
        Tokens {
            refresh_token: "r".into(),
            access_token: "a".into(),
            issued_at,
            expires_at,
            scopes: String::new(),
        }
    }

    #[test]
    fn refreshed_five_minutes_ahead_or_at_half_life() {
        // Microsoft's hour: fresh until 5 minutes before expiry.
        let t = tokens(1000, 4600);
        assert!(fresh(&t, 4000));
        assert!(fresh(&t, 4299));
        assert!(!fresh(&t, 4300));
        assert!(!fresh(&t, 9999));
        // A 10-second token: fresh for its first half only.
        let t = tokens(1000, 1010);
        assert!(fresh(&t, 1004));
        assert!(!fresh(&t, 1005));
    }
}
