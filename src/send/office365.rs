//! The SMTP login of an Office 365 account: AUTH XOAUTH2 with an access
//! token of the account's sign-in, and one refresh when the server refuses
//! a token we thought valid.
//!
//! - **User**: the account's `smtp_username`, else its `username`, as for
//!   a password login: the XOAUTH2 `user=` names the mailbox the token is
//!   for, and an admin sets `smtp_username` only when that differs from
//!   the user of IMAP or POP3.
//! - **Token**: [`Office365::access_token`], which refreshes ahead of
//!   expiry and commits a rotated refresh token before handing the access
//!   token out (`crate::oauth`). A dead grant (`invalid_grant`: revoked,
//!   password changed) or an account never connected is
//!   `NeedsAuthorization` at once, without a connection to the server.
//! - **A refused token** (Office 365 revokes sessions before the token's
//!   own expiry, e.g. after a password reset): the token is refreshed now
//!   ([`Office365::refresh`]) and the login tried once more on a new
//!   connection. Refused again, the sign-in cannot send: the error is
//!   `NeedsAuthorization` with the server's reason and a hint (the app
//!   registration may lack `SMTP.Send`, or SMTP AUTH may be disabled for
//!   the mailbox, Microsoft's 5.7.139). The tokens are kept: the same
//!   sign-in may still fetch, and Connect replaces them once the admin has
//!   fixed the cause.
//!
//! Every failure here is transient for the mail: it stays queued with the
//! error (`super::policy`), and the account's task shows the account as
//! needs-authorization (`crate::scheduler`).

use super::smtp::{Failure, Login, Server, Session};
use crate::error::Error;
use crate::oauth::Office365;
use crate::store::Secret;

/// What an admin can do about a sign-in that cannot send.
const CANNOT_SEND: &str = "also with a token issued just now; the app registration may lack the \
     SMTP.Send permission, or SMTP AUTH may be disabled for the mailbox: fix that, then Connect \
     again";

/// Connects and logs in with a token of the account's sign-in (module
/// docs); `None`: this daemon has no Office 365 sign-in configured.
pub async fn open(server: &Server<'_>, o365: Option<&Office365>) -> Result<Session, Failure> {
    let account = server.account;
    let Some(o365) = o365 else {
        return Err(Failure::Transient(Error::NeedsAuthorization(format!(
            "sending from Office 365 account {} needs its OAuth2 sign-in",
            account.id
        ))));
    };
    let token = o365.access_token(account).await.map_err(sign_in)?;
    let first = login(server, &token).await;
    let Err(Failure::Transient(Error::NeedsAuthorization(why))) = first else {
        return first;
    };
    tracing::info!(
        account_id = %account.id,
        "the SMTP server refused the access token; refreshing it once: {why}"
    );
    let token = o365.refresh(account).await.map_err(sign_in)?;
    match login(server, &token).await {
        Err(Failure::Transient(Error::NeedsAuthorization(why))) => Err(Failure::Transient(
            Error::NeedsAuthorization(format!("{why}; {CANNOT_SEND}")),
        )),
        other => other,
    }
}

async fn login(server: &Server<'_>, token: &crate::oauth::AccessToken) -> Result<Session, Failure> {
    let token = Secret::from(token.secret().to_string());
    let login = Login::XOAuth2 {
        user: super::smtp::login_user(server.account),
        token: &token,
    };
    Session::open(server, &login).await
}

/// A failed token request: `NeedsAuthorization` (no tokens, dead grant)
/// says which account cannot send; a token endpoint that is down
/// (`Connection`) is retried like a mail server that is down.
fn sign_in(e: Error) -> Failure {
    Failure::Transient(match e {
        Error::NeedsAuthorization(why) => Error::NeedsAuthorization(format!("cannot send: {why}")),
        other => other,
    })
}
