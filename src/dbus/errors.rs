//! Typed D-Bus errors: `org.postfach.Postfach1.Error.<Name>`, one for each
//! [`crate::error::Error`] kind, so frontends can branch on the name.

use zbus::DBusError;

use crate::error::Error;

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
        let msg = e.to_string();
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

/// Result of an interface method.
pub type ApiResult<T> = std::result::Result<T, ApiError>;
