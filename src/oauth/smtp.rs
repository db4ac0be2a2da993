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

/// One command line; Display adds the CRLF lettre's `command` expects.
struct Line<'a>(&'a str);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

/// Logs in with XOAUTH2 after EHLO (and STARTTLS). Each server reply is
/// awaited at most `read`. A rejected token is `Authentication` with the
/// server's reason; the connection is then back in the command state.
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
    let go = step(conn, "AUTH XOAUTH2", read).await?;
    if !go.has_code(334) {
        return Err(unexpected(&go));
    }
    let answer = step(conn, blob.expose(), read).await?;
    if answer.has_code(235) {
        return Ok(());
    }
    if !answer.has_code(334) {
        return Err(unexpected(&answer));
    }
    let detail = challenge_text(answer.first_line().unwrap_or("").as_bytes());
    match step(conn, "", read).await {
        Err(Error::Authentication(reason)) => Err(Error::Authentication(
            format!("{reason} {detail}").trim_end().to_string(),
        )),
        Err(other) => Err(other),
        Ok(r) => Err(unexpected(&r)),
    }
}

/// Sends one line and reads the reply; a 4xx/5xx reply is a rejected login.
async fn step(conn: &mut AsyncSmtpConnection, line: &str, read: Duration) -> Result<Response> {
    match tokio::time::timeout(read, conn.command(Line(line))).await {
        Err(_) => Err(Error::connection(format!(
            "no answer from the SMTP server within {} s during AUTH",
            read.as_secs()
        ))),
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) if e.status().is_some() => Err(Error::Authentication(format!(
            "login rejected by SMTP server: {}",
            super::errors::clean(&e.to_string())
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
