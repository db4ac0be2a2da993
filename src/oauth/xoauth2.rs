//! The XOAUTH2 SASL message (Google's and Microsoft's documented format,
//! used by IMAP, POP3 and SMTP alike): `user=<user>^Aauth=Bearer
//! <token>^A^A`, base64-encoded on the wire.
//!
//! After a rejected token the server sends one more challenge (a base64
//! JSON error, e.g. `{"status":"401","schemes":"bearer"}`) and waits: the
//! client must answer it with an empty line before the server sends the
//! final failure. Every client here does, so nothing hangs.

use base64::Engine;

use crate::error::{Error, Result};
use crate::store::Secret;

/// The XOAUTH2 message in clear (before base64). `user` must not contain
/// control characters: ^A separates the fields, so one in the user name
/// could smuggle a field of its own.
pub fn message(user: &str, token: &str) -> Result<Secret> {
    if user.is_empty() || user.chars().any(char::is_control) {
        return Err(Error::invalid(
            "username",
            "empty or contains a control character, which XOAUTH2 cannot carry",
        ));
    }
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Authentication(
            "the access token is empty or not printable ASCII".into(),
        ));
    }
    Ok(Secret::from(format!(
        "user={user}\x01auth=Bearer {token}\x01\x01"
    )))
}

/// The message base64-encoded, as POP3 and SMTP send it.
pub fn initial_response(user: &str, token: &str) -> Result<Secret> {
    let clear = message(user, token)?;
    Ok(Secret::from(
        base64::engine::general_purpose::STANDARD.encode(clear.expose()),
    ))
}

/// The server's error challenge (base64 JSON) as a short text for the
/// error message, or "" when it is not base64.
pub fn challenge_text(challenge: &[u8]) -> String {
    match base64::engine::general_purpose::STANDARD.decode(challenge.trim_ascii()) {
        Ok(raw) => error_text(&raw),
        Err(_) => String::new(),
    }
}

/// A decoded error challenge as a short, single-line text.
pub fn error_text(raw: &[u8]) -> String {
    super::errors::clean(&String::from_utf8_lossy(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_the_documented_format() {
        let blob = initial_response("anna@example.com", "tok.en-1").unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(blob.expose())
            .unwrap();
        assert_eq!(
            raw,
            b"user=anna@example.com\x01auth=Bearer tok.en-1\x01\x01"
        );
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(initial_response("anna\x01auth=Bearer x", "t").is_err());
        assert!(initial_response("anna", "t\r\nA1 LOGOUT").is_err());
        assert!(initial_response("", "t").is_err());
    }

    #[test]
    fn error_challenge_reads_as_text() {
        let c = base64::engine::general_purpose::STANDARD
            .encode(r#"{"status":"401","schemes":"bearer"}"#);
        assert_eq!(
            challenge_text(c.as_bytes()),
            r#"{"status":"401","schemes":"bearer"}"#
        );
        assert_eq!(challenge_text(b"%%%"), "");
    }
}
