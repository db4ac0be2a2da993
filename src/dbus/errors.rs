//! Typed D-Bus errors: `org.postfach.Postfach1.Error.<Name>`, one for each
//! [`crate::error::Error`] kind, so frontends can branch on the name.
//!
//! This is where every error becomes a reply, so every message is capped
//! here ([`crate::redact`]): an error built from a caller's 7 MB argument
//! or a server's 64 MB reply must not become a reply that the bus daemon
//! answers by dropping the daemon from the bus. Errors about one account
//! go through [`for_account`] first, which also removes its secrets.

use zbus::DBusError;

use crate::error::Error;
use crate::redact::{self, Scrubber};

/// The errors every method of the API may return.
#[derive(Debug, DBusError)]
#[zbus(prefix = "org.postfach.Postfach1.Error")]
pub enum ApiError {
    /// zbus' own failures (e.g. a reply that could not be sent).
    #[zbus(error)]
    ZBus(zbus::Error),
    InvalidArgument(String),
    NotFound(String),
    AccessDenied(String),
    Connection(String),
    Tls(String),
    Authentication(String),
    NeedsAuthorization(String),
    FolderUnknown(String),
    Busy(String),
    Storage(String),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let msg = redact::cap(&e.to_string());
        match e {
            Error::InvalidArgument { .. } => ApiError::InvalidArgument(msg),
            Error::NotFound(_) => ApiError::NotFound(msg),
            Error::AccessDenied(_) => ApiError::AccessDenied(msg),
            Error::Connection { .. } => ApiError::Connection(msg),
            Error::Tls(_) => ApiError::Tls(msg),
            Error::Authentication(_) => ApiError::Authentication(msg),
            Error::NeedsAuthorization(_) => ApiError::NeedsAuthorization(msg),
            Error::FolderUnknown(_) => ApiError::FolderUnknown(msg),
            Error::Busy(_) => ApiError::Busy(msg),
            Error::Storage { .. } => ApiError::Storage(msg),
        }
    }
}

/// An error of work on one account (a server's reply may repeat its
/// password), with that account's secrets removed before it is capped.
pub fn for_account(scrubber: &Scrubber, e: Error) -> ApiError {
    ApiError::from(scrubber.error(&e))
}

/// An error reply already made by work on one account, with that
/// account's secrets removed (see [`Scrubber::clean_capped`]).
pub fn scrub_reply(scrubber: &Scrubber, e: ApiError) -> ApiError {
    let c = |m: String| scrubber.clean_capped(&m);
    match e {
        ApiError::ZBus(e) => ApiError::ZBus(e),
        ApiError::InvalidArgument(m) => ApiError::InvalidArgument(c(m)),
        ApiError::NotFound(m) => ApiError::NotFound(c(m)),
        ApiError::AccessDenied(m) => ApiError::AccessDenied(c(m)),
        ApiError::Connection(m) => ApiError::Connection(c(m)),
        ApiError::Tls(m) => ApiError::Tls(c(m)),
        ApiError::Authentication(m) => ApiError::Authentication(c(m)),
        ApiError::NeedsAuthorization(m) => ApiError::NeedsAuthorization(c(m)),
        ApiError::FolderUnknown(m) => ApiError::FolderUnknown(c(m)),
        ApiError::Busy(m) => ApiError::Busy(c(m)),
        ApiError::Storage(m) => ApiError::Storage(c(m)),
    }
}

/// Result of an interface method.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: ApiError) -> String {
        e.description().unwrap_or_default().to_string()
    }

    #[test]
    fn every_reply_is_capped() {
        let huge = "\u{1}".repeat(7 << 20);
        let e = ApiError::from(Error::invalid("user", format!("{huge:?}")));
        assert_eq!(
            e.name().as_str(),
            "org.postfach.Postfach1.Error.InvalidArgument"
        );
        let t = text(e);
        assert!(t.starts_with("user: "), "{t}");
        assert!(t.len() < 2 * redact::MAX_TEXT, "{} bytes", t.len());
    }

    #[test]
    fn account_errors_lose_the_secret() {
        let s = Scrubber::new(&["s3cret!"], "u");
        let e = for_account(&s, Error::Authentication("NO \"u\" \"s3cret!\"".into()));
        assert_eq!(
            e.name().as_str(),
            "org.postfach.Postfach1.Error.Authentication"
        );
        assert_eq!(text(e), "NO \"u\" \"***\"");
    }
}
