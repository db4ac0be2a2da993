//! SMTP AUTH XOAUTH2 (RFC 4954 exchange) on a lettre connection.
//!
//! lettre has an XOAUTH2 mechanism, but it sends the token as an initial
//! response on the AUTH line and, when the server rejects the token with
//! the usual `334 <base64 JSON>` challenge, returns "This mechanism does
//! not expect a challenge" and leaves the server waiting in the middle of
//! the exchange. So the exchange is done here with lettre's `command`:
//! `AUTH XOAUTH2`, the message after the `334`, and an empty line to a
//! failure challenge, after which the server's 535 gives the real reason.
//! The two-step form also keeps the AUTH line short: Postfix and Exchange
//! take long SASL responses on a line of their own, while the AUTH line
//! itself is bounded by command-line limits (RFC 5321 §4.5.3.1.4).

use std::fmt;
use std::time::Duration;

use lettre::transport::smtp::authentication::Mechanism;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::response::Response;

use super::xoauth2::{challenge_text, initial_response};
use crate::error::{Error, Result};
use crate::redact::Scrubber;

/// One command line; Display adds the CRLF lettre's `command` expects.
struct Line<'a>(&'a str);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

/// Logs in with XOAUTH2 after EHLO (and STARTTLS). Each server reply is
/// awaited at most `read`. A token the server rejects (a 5xx reply, such
/// as 535 5.7.3 or Office 365's 5.7.139) is `NeedsAuthorization` with the
/// server's reason: the caller may refresh the token once and try again.
/// A server without XOAUTH2 is `Authentication`, a temporary refusal
/// (454 4.7.0: its SASL backend is down) is `Connection`: no new token
/// helps with either.
pub async fn authenticate(
    conn: &mut AsyncSmtpConnection,
    user: &str,
    token: &str,
    read: Duration,
) -> Result<()> {
    if !conn
        .server_info()
        .supports_auth_mechanism(Mechanism::Xoauth2)
    {
        return Err(Error::Authentication(
            "the SMTP server does not offer AUTH XOAUTH2 (Office 365 needs it; is TLS on?)".into(),
        ));
    }
    let blob = initial_response(user, token)?;
    // A refusal of the bare AUTH command is about the mechanism, not the
    // token (no token was sent yet).
    // A hostile server may echo what it got: its texts lose the token
    // and the message carrying it.
    let hide = Scrubber::new(&[token, blob.expose()], user);
    let go = step(conn, "AUTH XOAUTH2", read, &hide)
        .await
        .map_err(|e| match e {
            Error::NeedsAuthorization(why) => Error::Authentication(why),
            other => other,
        })?;
    if !go.has_code(334) {
        return Err(unexpected(&go));
    }
    let answer = step(conn, blob.expose(), read, &hide).await?;
    if answer.has_code(235) {
        return Ok(());
    }
    if !answer.has_code(334) {
        return Err(unexpected(&answer));
    }
    let detail = challenge_text(answer.first_line().unwrap_or("").as_bytes());
    match step(conn, "", read, &hide).await {
        Err(Error::NeedsAuthorization(reason)) => Err(Error::NeedsAuthorization(
            format!("{reason} {detail}").trim_end().to_string(),
        )),
        Err(other) => Err(other),
        Ok(r) => Err(unexpected(&r)),
    }
}

/// Sends one line and reads the reply: a 5xx reply is a refusal
/// (`NeedsAuthorization`), a 4xx one a server that cannot check the login
/// now (`Connection`).
async fn step(
    conn: &mut AsyncSmtpConnection,
    line: &str,
    read: Duration,
    hide: &Scrubber,
) -> Result<Response> {
    let text =
        |e: &lettre::transport::smtp::Error| super::errors::clean(&hide.clean(&e.to_string()));
    match tokio::time::timeout(read, conn.command(Line(line))).await {
        Err(_) => Err(Error::connection(format!(
            "no answer from the SMTP server within {} s during AUTH",
            read.as_secs()
        ))),
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) if e.is_permanent() => Err(Error::NeedsAuthorization(format!(
            "login rejected by SMTP server: {}",
            text(&e)
        ))),
        Ok(Err(e)) if e.status().is_some() => Err(Error::connection(format!(
            "the SMTP server cannot check the login now: {}",
            text(&e)
        ))),
        Ok(Err(e)) => Err(Error::connection_by("SMTP AUTH failed", e)),
    }
}

fn unexpected(r: &Response) -> Error {
    Error::connection(format!(
        "the SMTP server answered AUTH XOAUTH2 with {}: {}",
        r.code(),
        super::errors::clean(r.first_line().unwrap_or(""))
    ))
}
