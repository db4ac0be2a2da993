//! Mail submission (RFC 6409) with lettre's SMTP client over our own
//! streams.
//!
//! - `smtp_encryption` `tls`: implicit TLS from the first byte (RFC 8314,
//!   lettre's "wrapper" mode); `starttls`: STARTTLS is required — a server
//!   that does not offer it is an error, never a fallback to clear text
//!   (what lettre calls `Required`; `Opportunistic` is never used); `none`:
//!   clear text, and a password only to a loopback host unless the account
//!   sets `allow_plaintext_auth` (the rule of `crate::net` for incoming
//!   mail).
//! - TLS is `crate::net`'s: system roots plus `[tls] extra_ca_file`, or the
//!   account's SPKI pin alone. lettre's own TLS settings cannot carry that
//!   verifier, so the TCP and TLS streams are ours and lettre's
//!   `AsyncSmtpConnection` runs on them (see `wire` for STARTTLS).
//!   Opening (`open`) probes a silent clear-text port for implicit TLS and
//!   repeats a handshake a server failed for offering a resumed session,
//!   as IMAP and POP3 do.
//! - `smtp_login` on: AUTH PLAIN, else LOGIN (whichever the server offers
//!   first in that order); [`Login::XOAuth2`] (Office 365) is AUTH XOAUTH2 by
//!   `crate::oauth::smtp`, with an access token the caller fetched; a
//!   token the server refuses is `NeedsAuthorization` (see
//!   `super::office365` for the one refresh that follows).
//!   Off: no AUTH (a server that relays for the client's address).
//! - EHLO names the client by the address literal of its own socket
//!   (RFC 5321 §4.1.4), as Thunderbird does: always well-formed, and it
//!   tells the server nothing it does not already see.
//! - Timeouts: `[fetch] connect_timeout` for TCP and TLS, `read_timeout`
//!   for each whole reply (a server dripping bytes cannot stretch it) and
//!   for every write that makes no progress; the reply to the body's
//!   final dot is waited for 10 minutes (RFC 5321 §4.5.3.2.6), since
//!   giving up early is what makes a delivery uncertain. lettre itself
//!   caps a reply at 100 kB and a reply line at 1000 bytes.
//!
//! A submission is three calls, so that the caller can record what
//! happened in between: [`Session::open`] (connect, TLS, EHLO, AUTH),
//! [`Session::envelope`] (MAIL FROM, RCPT TO, DATA), [`Session::body`]
//! (the mail, its final dot, the server's 250). The caller records the
//! 250 durably before [`Session::quit`]: a mail the server accepted must
//! be known as sent even if QUIT then fails.

mod failure;
mod open;
mod wire;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::Address;

pub use failure::{cap, scrub, Failure, Stage, MAX_TEXT};
use wire::Patience;

use crate::account::{Account, Encryption};
use crate::error::Error;
use crate::net::{self, Timeouts, TlsContext};
use crate::store::Secret;

/// How long the server may take to answer the body's final dot.
pub const DATA_REPLY: Duration = Duration::from_secs(600);

/// How the client logs in.
#[derive(Debug, Clone, Copy)]
pub enum Login<'a> {
    /// `smtp_login` off.
    None,
    /// AUTH PLAIN or LOGIN.
    Password { user: &'a str, password: &'a Secret },
    /// AUTH XOAUTH2 with an OAuth2 access token (Office 365).
    XOAuth2 { user: &'a str, token: &'a Secret },
}

/// The server side of a submission.
#[derive(Debug, Clone, Copy)]
pub struct Server<'a> {
    pub account: &'a Account,
    pub tls: &'a TlsContext,
    pub timeouts: Timeouts,
}

/// The server's reply to the body: it has the mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The reply text, capped (Postfix: `2.0.0 Ok: queued as …`).
    pub reply: String,
}

/// An open SMTP session (module docs).
pub struct Session {
    conn: AsyncSmtpConnection,
    host: String,
    patience: Patience,
    read: Duration,
    /// Set once the body's final dot may have been written (see `wire`).
    dot: Arc<AtomicBool>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("host", &self.host).finish()
    }
}

fn transient(e: Error) -> Failure {
    Failure::Transient(e)
}

/// The mail as lettre's `message` wants it: lettre always writes
/// `CRLF . CRLF` after it, and that first CRLF ends the mail's last line
/// (RFC 5321 §4.1.1.4); a mail's own final CRLF would become an extra
/// empty line at the end of the delivered mail.
fn without_last_crlf(raw: &[u8]) -> &[u8] {
    raw.strip_suffix(b"\r\n").unwrap_or(raw)
}

/// The user of the SMTP login, password or XOAUTH2: `smtp_username`, else
/// `username` (an admin sets the first only when SMTP wants another name).
pub fn login_user(a: &Account) -> &str {
    if a.smtp_username.is_empty() {
        &a.username
    } else {
        &a.smtp_username
    }
}

/// The clear-text password rule for SMTP (module docs).
pub fn check_plaintext_login(a: &Account, login: &Login<'_>) -> Result<(), Error> {
    if a.smtp_encryption == Encryption::None
        && !matches!(login, Login::None)
        && !a.allow_plaintext_auth
        && !net::is_loopback_host(&a.smtp_host)
    {
        return Err(Error::Tls(format!(
            "refusing to send the SMTP password in clear text to {}: smtp_encryption is none; \
             choose tls or starttls, or set allow_plaintext_auth",
            a.smtp_host
        )));
    }
    Ok(())
}

impl Session {
    async fn login(&mut self, a: &Account, login: &Login<'_>) -> Result<(), Failure> {
        let (mechanisms, user, secret) = match login {
            Login::None => return Ok(()),
            Login::Password { user, password } => {
                (vec![Mechanism::Plain, Mechanism::Login], *user, *password)
            }
            // Not lettre's `auth` with `Mechanism::Xoauth2`: it leaves the
            // server waiting after a failure challenge (`crate::oauth::smtp`).
            Login::XOAuth2 { user, token } => {
                let host = &self.host;
                return crate::oauth::smtp::authenticate(
                    &mut self.conn,
                    user,
                    token.expose(),
                    self.read,
                )
                .await
                .map_err(|e| {
                    transient(match e {
                        Error::NeedsAuthorization(why) => {
                            Error::NeedsAuthorization(format!("{host} refused the login: {why}"))
                        }
                        Error::Authentication(why) => {
                            Error::Authentication(format!("{host}: {why}"))
                        }
                        other => other,
                    })
                });
            }
        };
        if self
            .conn
            .server_info()
            .get_auth_mechanism(&mechanisms)
            .is_none()
        {
            let names: Vec<String> = mechanisms.iter().map(ToString::to_string).collect();
            let hint = if a.smtp_encryption == Encryption::None {
                " (many servers offer a login only over TLS)"
            } else {
                ""
            };
            return Err(transient(Error::Authentication(format!(
                "{} offers no SMTP login by {}{hint}",
                self.host,
                names.join(" or ")
            ))));
        }
        let credentials = Credentials::new(user.to_string(), secret.expose().to_string());
        let answer = self.conn.auth(&mechanisms, &credentials).await;
        drop(credentials);
        answer
            .map(|_| ())
            .map_err(|e| failure::classify(&e, Stage::Login, &self.host, &[secret.expose()]))
    }

    /// MAIL FROM, RCPT TO for every recipient, DATA. A refused recipient
    /// refuses the whole mail: nothing is sent to anyone, and the server's
    /// reply names the address.
    pub async fn envelope(
        &mut self,
        from: &Address,
        rcpt: &[Address],
        raw: &[u8],
    ) -> Result<(), Failure> {
        let mut params = Vec::new();
        if !raw.is_ascii() {
            if !self
                .conn
                .server_info()
                .supports_feature(Extension::EightBitMime)
            {
                return Err(Failure::Permanent(Error::connection(format!(
                    "the mail has 8-bit content and {} does not take it (no 8BITMIME)",
                    self.host
                ))));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let r = self
            .conn
            .command(Mail::new(Some(from.clone()), params))
            .await;
        self.check(r.map(|_| ()), Stage::Envelope).await?;
        for to in rcpt {
            let r = self.conn.command(Rcpt::new(to.clone(), Vec::new())).await;
            self.check(r.map(|_| ()), Stage::Envelope).await?;
        }
        let r = self.conn.command(Data).await;
        self.check(r.map(|_| ()), Stage::Envelope).await
    }

    /// The mail and its final dot; Ok is the server's acceptance.
    pub async fn body(&mut self, raw: &[u8]) -> Result<Accepted, Failure> {
        self.patience.set(DATA_REPLY.max(self.read));
        self.dot.store(false, Ordering::SeqCst);
        let r = self.conn.message(without_last_crlf(raw)).await;
        self.patience.set(self.read);
        let dot_sent = self.dot.load(Ordering::SeqCst);
        match r {
            Ok(reply) => {
                let text: Vec<&str> = reply.message().collect();
                Ok(Accepted {
                    reply: cap(&format!("{} {}", reply.code(), text.join(" "))),
                })
            }
            // Not a byte of the final dot went out, and no reply came: the
            // server cannot have the mail, so this is an ordinary broken
            // connection.
            Err(e) if !(dot_sent || e.is_permanent() || e.is_transient()) => {
                let f = failure::classify(&e, Stage::Envelope, &self.host, &[]);
                self.conn.abort().await;
                Err(f)
            }
            Err(e) => {
                let f = failure::classify(&e, Stage::Body, &self.host, &[]);
                self.conn.abort().await;
                Err(f)
            }
        }
    }

    async fn check(
        &mut self,
        r: Result<(), lettre::transport::smtp::Error>,
        stage: Stage,
    ) -> Result<(), Failure> {
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                let f = failure::classify(&e, stage, &self.host, &[]);
                self.conn.abort().await;
                Err(f)
            }
        }
    }

    /// QUIT, after the caller recorded the acceptance; its failure changes
    /// nothing.
    pub async fn quit(mut self) {
        if let Err(e) = self.conn.quit().await {
            tracing::debug!(host = %self.host, "SMTP QUIT failed after delivery: {e}");
        }
    }
}
