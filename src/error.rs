//! Errors a caller can act on.
//!
//! Every variant maps one-to-one onto a D-Bus error name
//! `org.postfach.Postfach1.Error.<Name>` (see `dbus::errors`), so a failure
//! deep in the store or a protocol session reaches the CRM frontend with a
//! name it can branch on and a message a human can read. Messages never
//! contain secrets: callers build them from settings keys, hosts and server
//! replies, never from passwords or tokens.

use std::fmt;
use std::sync::Arc;

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
    /// The server could not be reached or the connection broke; `source`
    /// is the I/O or protocol error behind it, when there is one.
    #[error("{message}")]
    Connection {
        message: String,
        #[source]
        source: Option<Cause>,
    },
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
    /// The store failed (I/O, corruption, full disk); `source` is redb's or
    /// the file system's error, when there is one.
    #[error("{message}")]
    Storage {
        message: String,
        #[source]
        source: Option<Cause>,
    },
}

impl Error {
    /// A bad argument named by its settings key.
    pub fn invalid(key: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::InvalidArgument {
            key: key.into(),
            message: message.to_string(),
        }
    }

    /// A store failure with context, keeping `err` as its [`source`](std::error::Error::source).
    pub fn storage(context: &str, err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Storage {
            message: format!("{context}: {err}"),
            source: Some(Cause::new(err)),
        }
    }

    /// A store failure that has no underlying error (a check we made).
    pub fn storage_msg(message: String) -> Self {
        Error::Storage {
            message,
            source: None,
        }
    }

    /// A connection failure that has no underlying error (a reply we refuse).
    pub fn connection(message: String) -> Self {
        Error::Connection {
            message,
            source: None,
        }
    }

    /// A connection failure caused by `err` (kept as its source).
    pub fn connection_by(
        message: impl Into<String>,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Connection {
            message: message.into(),
            source: Some(Cause::new(err)),
        }
    }

    /// The D-Bus error name suffix, e.g. `InvalidArgument`.
    pub fn name(&self) -> &'static str {
        match self {
            Error::InvalidArgument { .. } => "InvalidArgument",
            Error::NotFound(_) => "NotFound",
            Error::AccessDenied(_) => "AccessDenied",
            Error::Connection { .. } => "Connection",
            Error::Tls(_) => "Tls",
            Error::Authentication(_) => "Authentication",
            Error::NeedsAuthorization(_) => "NeedsAuthorization",
            Error::FolderUnknown(_) => "FolderUnknown",
            Error::Busy(_) => "Busy",
            Error::Storage { .. } => "Storage",
        }
    }
}

/// The original error behind a [`Error::Storage`] or [`Error::Connection`]:
/// shared, so that an error can be cloned to every caller waiting for the
/// same fetch (the redb `error.rs` shape: the cause stays reachable through
/// `source()` instead of being flattened into the message only).
#[derive(Debug, Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    pub fn new(err: impl std::error::Error + Send + Sync + 'static) -> Cause {
        Cause(Arc::new(err))
    }

    /// The original error if it is a `T` (the store tells redb's damage
    /// reports from other failures this way).
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

/// Two causes are equal when they say the same: errors compare by what
/// they tell a caller.
impl PartialEq for Cause {
    fn eq(&self, other: &Cause) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl Eq for Cause {}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Adds what we were doing to a store or file-system error, keeping the
/// error as the cause: `tx.open_table(META).context("open meta")?`.
pub trait Context<T> {
    fn context(self, what: &str) -> Result<T>;
}

impl<T, E> Context<T> for std::result::Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn context(self, what: &str) -> Result<T> {
        self.map_err(|e| Error::storage(what, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn context_keeps_the_cause() {
        let io: std::result::Result<(), _> = Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "disk full",
        ));
        let e = io.context("committing a batch").unwrap_err();
        assert_eq!(e.to_string(), "committing a batch: disk full");
        assert_eq!(e.name(), "Storage");
        let cause = e.source().expect("a source");
        assert_eq!(cause.to_string(), "disk full");
    }
}
