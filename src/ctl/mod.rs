//! Helpers of `postfachctl`, the admin CLI over the D-Bus API.
//!
//! The binary only parses flags; everything it does lives here so that it
//! is unit-testable: turning flags into `a{sv}` settings ([`settings`]),
//! reading passwords without ever taking them from argv ([`password`]),
//! printing tables and JSON ([`output`]), and the commands: accounts
//! ([`commands`]), the connection test ([`conntest`]), fetching with a
//! progress bar ([`fetch`]), listing mail ([`inbox`], its columns in [`table`], times in [`dates`]),
//! one mail's view and changes ([`message`], HTML bodies via [`html`]),
//! signatures ([`signature`]) and the employees that fill them ([`employee`]),
//! sending ([`send`]), drafts ([`draft`]) and the account's server folders ([`folders`]).
//! `status` ([`status`]) shows the installation at a glance.
//! Every failure becomes one [`CtlError`] line on stderr.

pub mod backup;
pub mod commands;
pub mod connect;
pub mod conntest;
pub mod dates;
pub mod draft;
pub mod employee;
pub mod fetch;
pub mod folders;
pub mod html;
pub mod inbox;
pub mod message;
pub mod output;
pub mod password;
pub mod send;
pub mod settings;
pub mod signature;
pub mod status;
pub mod table;

use std::fmt;

use zbus::DBusError;

/// Prefix of the daemon's error names (ARCHITECTURE.md "The D-Bus API").
const ERROR_PREFIX: &str = "org.postfach.Postfach1.Error.";

/// A failure as the admin sees it: `postfachctl: <Name>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtlError {
    /// The daemon's error name without its prefix (`NotFound`), or a local
    /// kind (`Connection`, `InvalidArgument`).
    pub name: String,
    pub message: String,
    /// Exit status: 1 for failures, 2 for usage errors.
    pub exit_code: i32,
}

impl CtlError {
    /// A failure found before talking to the daemon.
    pub fn local(name: &str, message: impl fmt::Display) -> Self {
        CtlError {
            name: name.to_string(),
            message: message.to_string(),
            exit_code: 1,
        }
    }

    /// A usage error (exit status 2, like clap's own).
    pub fn usage(message: impl fmt::Display) -> Self {
        CtlError {
            name: "Usage".to_string(),
            message: message.to_string(),
            exit_code: 2,
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the daemon sent: scripts read it with `read`.
        let message = self.message.replace(['\n', '\r'], " ");
        write!(f, "postfachctl: {}: {}", self.name, message.trim())
    }
}

impl std::error::Error for CtlError {}

/// Short error name: the daemon's names lose their prefix; other D-Bus names
/// (`org.freedesktop.DBus.Error.ServiceUnknown`) keep only their last part.
fn short_name(name: &str) -> String {
    match name.strip_prefix(ERROR_PREFIX) {
        Some(n) => n.to_string(),
        None => name.rsplit('.').next().unwrap_or(name).to_string(),
    }
}

impl From<zbus::Error> for CtlError {
    fn from(e: zbus::Error) -> Self {
        match e {
            zbus::Error::MethodError(name, message, _) => {
                CtlError::local(&short_name(name.as_str()), message.unwrap_or_default())
            }
            zbus::Error::FDO(e) => CtlError::from(*e),
            zbus::Error::InputOutput(e) => CtlError::local("Connection", e),
            zbus::Error::Address(m) | zbus::Error::Handshake(m) => CtlError::local("Connection", m),
            other => CtlError::local("Failed", other),
        }
    }
}

impl From<zbus::fdo::Error> for CtlError {
    fn from(e: zbus::fdo::Error) -> Self {
        match e {
            zbus::fdo::Error::ZBus(inner) => CtlError::from(inner),
            zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_) => {
                CtlError::local(
                    "ServiceUnknown",
                    "postfachd is not running on this bus (org.postfach.Postfach1 has no owner)",
                )
            }
            other => CtlError::local(
                &short_name(other.name().as_str()),
                other.description().unwrap_or_default(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_is_one_line_with_short_name() {
        let e = CtlError::local(
            &short_name("org.postfach.Postfach1.Error.NotFound"),
            "no\naccount x",
        );
        assert_eq!(e.to_string(), "postfachctl: NotFound: no account x");
        assert_eq!(e.exit_code, 1);
        assert_eq!(
            short_name("org.freedesktop.DBus.Error.AccessDenied"),
            "AccessDenied"
        );
        assert_eq!(CtlError::usage("x").exit_code, 2);
    }
}
