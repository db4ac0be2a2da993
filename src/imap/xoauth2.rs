//! IMAP `AUTHENTICATE XOAUTH2` (RFC 3501 §6.2.2), for Office 365 logins.
//!
//! With SASL-IR (RFC 4959) announced, the message goes on the command
//! line and the login takes one round trip; otherwise it follows the
//! server's empty `+` continuation. A rejected token gets one more
//! continuation carrying a base64 JSON error; it is answered with an
//! empty line, and the tagged NO that follows is the failure (with the
//! JSON's status in the message). async-imap drives the exchange: our
//! authenticator gives the message on the first empty challenge and an
//! empty answer to any later one, so the server is never left waiting.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Error, Result};
use crate::net::Timeouts;
use crate::oauth::errors::clean;
use crate::oauth::xoauth2::{error_text, initial_response, message};
use crate::store::Secret;

/// Logs in with XOAUTH2 on a connected, not yet authenticated client and
/// returns the session. `sasl_ir`: whether the server's CAPABILITY has
/// `SASL-IR`. The whole exchange has `t.read`. Errors never contain the
/// token: they are built from the user, the host and the server's reply.
pub async fn authenticate<T>(
    client: async_imap::Client<T>,
    user: &str,
    token: &str,
    sasl_ir: bool,
    t: &Timeouts,
    host: &str,
) -> Result<async_imap::Session<T>>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let heard = Arc::new(Mutex::new(Vec::new()));
    let (command, pending) = if sasl_ir {
        let ir = initial_response(user, token)?;
        (Secret::from(format!("XOAUTH2 {}", ir.expose())), None)
    } else {
        (
            Secret::from("XOAUTH2".to_string()),
            Some(message(user, token)?),
        )
    };
    let auth = Xoauth2 {
        message: pending,
        heard: heard.clone(),
    };
    let attempt = tokio::time::timeout(t.read, client.authenticate(command.expose(), auth)).await;
    match attempt {
        Err(_) => Err(Error::connection(format!(
            "{host}: no answer to AUTHENTICATE XOAUTH2 within {} s",
            t.read.as_secs()
        ))),
        Ok(Ok(session)) => Ok(session),
        Ok(Err((async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text), _))) => {
            let detail = heard.lock().map(|h| error_text(&h)).unwrap_or_default();
            let reason = [clean(&text), detail]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            Err(Error::Authentication(format!(
                "login rejected by server: {reason} (user {user:?} at {host})"
            )))
        }
        Ok(Err((other, _))) => Err(Error::connection_by(
            format!("{host}: AUTHENTICATE XOAUTH2 failed: {other}"),
            other,
        )),
    }
}

/// async-imap's side of the exchange (it decodes the challenges and
/// base64-encodes what we return).
struct Xoauth2 {
    /// The message still to send at an empty continuation; `None` once
    /// sent, or when it went on the command line (SASL-IR).
    message: Option<Secret>,
    /// The last non-empty challenge (the error JSON), for the message.
    heard: Arc<Mutex<Vec<u8>>>,
}

impl async_imap::Authenticator for Xoauth2 {
    type Response = Vec<u8>;

    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        if challenge.is_empty() {
            if let Some(message) = self.message.take() {
                return message.expose().as_bytes().to_vec();
            }
        } else if let Ok(mut heard) = self.heard.lock() {
            *heard = challenge.to_vec();
        }
        Vec::new()
    }
}
