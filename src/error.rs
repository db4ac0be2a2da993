//! Errors a caller can act on.
//!
//! Every variant maps one-to-one onto a D-Bus error name
//! `org.postfach.Postfach1.Error.<Name>` (see `dbus::errors`), so a failure
//! deep in the store or a protocol session reaches the CRM frontend with a
//! name it can branch on and a message a human can read. Messages never
//! contain secrets: callers build them from settings keys, hosts and server
//! replies, never from passwords or tokens.

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error with the kind a caller needs to decide what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A bad argument; `key` names the settings key or argument at fault.
    #[error("{key}: {message}")]
    InvalidArgument { key: String, message: String },
    /// The object does not exist, or is not visible to the caller.
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this.
    #[error("{0}")]
    AccessDenied(String),
    /// The server could not be reached or the connection broke.
    #[error("{0}")]
    Connection(String),
    /// TLS failed: untrusted certificate, pin mismatch, no STARTTLS.
    #[error("{0}")]
    Tls(String),
    /// The server rejected the login.
    #[error("{0}")]
    Authentication(String),
    /// An Office 365 account needs Connect before it can log in.
    #[error("{0}")]
    NeedsAuthorization(String),
    /// The named folder is not known on the server.
    #[error("{0}")]
    FolderUnknown(String),
    /// Another operation holds what this one needs.
    #[error("{0}")]
    Busy(String),
    /// The store failed (I/O, corruption, full disk).
    #[error("{0}")]
    Storage(String),
}

impl Error {
    /// A bad argument named by its settings key.
    pub fn invalid(key: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::InvalidArgument {
            key: key.into(),
            message: message.to_string(),
        }
    }

    /// A store failure with context.
    pub fn storage(context: &str, err: impl fmt::Display) -> Self {
        Error::Storage(format!("{context}: {err}"))
    }

    /// The D-Bus error name suffix, e.g. `InvalidArgument`.
    pub fn name(&self) -> &'static str {
        match self {
            Error::InvalidArgument { .. } => "InvalidArgument",
            Error::NotFound(_) => "NotFound",
            Error::AccessDenied(_) => "AccessDenied",
            Error::Connection(_) => "Connection",
            Error::Tls(_) => "Tls",
            Error::Authentication(_) => "Authentication",
            Error::NeedsAuthorization(_) => "NeedsAuthorization",
            Error::FolderUnknown(_) => "FolderUnknown",
            Error::Busy(_) => "Busy",
            Error::Storage(_) => "Storage",
        }
    }
}
