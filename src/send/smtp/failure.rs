//! What a failed submission means for the mail (RFC 5321 §4.2.1, §4.5.4).
//!
//! - **Transient**: try again later. Every 4xx reply; a connection that
//!   could not be made or broke before the body was handed over; TLS and
//!   login problems (they are the account's, and mails should go out once
//!   an admin fixes the settings, not fail one by one meanwhile).
//! - **Permanent**: the server refused this mail with a 5xx to MAIL FROM,
//!   RCPT TO, DATA or after the body. Sending it again would get the same
//!   answer.
//! - **Uncertain**: the connection broke or timed out while the body or
//!   its final dot was on its way, or while we waited for the reply to it.
//!   The server may have accepted the mail (RFC 5321 §4.1.1.4 and RFC 1047:
//!   the "duplicate message" window). Whether to send again is decided in
//!   `crate::send::queue`.
//!
//! Server texts are capped at [`MAX_TEXT`] bytes, control characters
//! removed, and the account's secrets replaced by `********` should a
//! server ever echo them (ARCHITECTURE.md "The D-Bus API": every text that crosses the bus is
//! capped and scrubbed).

use std::error::Error as _;

use lettre::transport::smtp::Error as SmtpError;

use crate::error::Error;

/// Longest server text kept in an error.
pub const MAX_TEXT: usize = 300;

/// What a failed submission means for the mail (module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Transient(Error),
    Permanent(Error),
    Uncertain(Error),
}

impl Failure {
    pub fn error(&self) -> &Error {
        match self {
            Failure::Transient(e) | Failure::Permanent(e) | Failure::Uncertain(e) => e,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error().fmt(f)
    }
}

/// Where in the SMTP dialogue an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Greeting, EHLO.
    Session,
    /// AUTH.
    Login,
    /// MAIL FROM, RCPT TO, DATA.
    Envelope,
    /// The body, its final dot and the reply to it.
    Body,
}

/// Control characters out, whitespace runs as one space, at most
/// [`MAX_TEXT`] bytes (cut at a character boundary, marked with …).
pub fn cap(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_TEXT + 4));
    for word in s.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > MAX_TEXT {
            break;
        }
    }
    if out.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

/// `text` with every secret replaced (module docs).
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(*s, "********");
    }
    out
}

/// The server's reply or the I/O error behind a lettre error, capped and
/// scrubbed.
fn detail(e: &SmtpError, secrets: &[&str]) -> String {
    let inner = e.source().map(|s| s.to_string()).unwrap_or_default();
    let text = match e.status() {
        Some(code) => format!("{code} {inner}"),
        None if inner.is_empty() => e.to_string(),
        None => inner,
    };
    cap(&scrub(&text, secrets))
}

/// Classify a lettre error (module docs); `host` names the server.
pub fn classify(e: &SmtpError, stage: Stage, host: &str, secrets: &[&str]) -> Failure {
    let text = detail(e, secrets);
    let refused = e.is_permanent() || e.is_transient();
    match (stage, refused) {
        (Stage::Login, true) => Failure::Transient(Error::Authentication(format!(
            "{host} refused the SMTP login: {text}"
        ))),
        (Stage::Session, true) => Failure::Transient(Error::connection(format!(
            "{host} refused the SMTP session: {text}"
        ))),
        (Stage::Envelope | Stage::Body, true) if e.is_transient() => Failure::Transient(
            Error::connection(format!("{host} deferred the mail: {text}")),
        ),
        (Stage::Envelope | Stage::Body, true) => Failure::Permanent(Error::connection(format!(
            "{host} refused the mail: {text}"
        ))),
        (Stage::Body, false) => Failure::Uncertain(Error::connection(format!(
            "the connection to {host} was lost while the mail was being handed over, \
             so the server may have accepted it: {text}"
        ))),
        (_, false) => Failure::Transient(Error::connection(format!(
            "SMTP with {host} failed: {text}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_capped_cleaned_and_scrubbed() {
        assert_eq!(
            cap("550  5.1.1\r\n  <a@b>:\tno\0such"),
            "550 5.1.1 <a@b>: no such"
        );
        let long = "ä".repeat(400);
        let c = cap(&long);
        assert!(c.len() <= MAX_TEXT + '…'.len_utf8(), "{}", c.len());
        assert!(c.ends_with('…'));
        assert_eq!(
            scrub("535 bad password hunter2 for hunter2", &["hunter2", ""]),
            "535 bad password ******** for ********"
        );
    }
}
