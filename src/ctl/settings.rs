//! Account settings flags -> the `a{sv}` of CreateAccount/Update.
//!
//! One flag per settings key of ARCHITECTURE.md "The D-Bus API", typed as the daemon expects
//! (`port q`, `poll_interval u`, booleans `b`), so a wrong type is a usage
//! error here instead of an InvalidArgument round trip. Passwords have no
//! flag on purpose: argv is visible to every local user (`ps`, /proc).
//! Only the flags given end up in the dict, which is what `Update` needs.

use std::collections::HashMap;

use clap::builder::{BoolishValueParser, PossibleValuesParser};
use clap::Args;
use zbus::Variant;

/// The account kinds (ARCHITECTURE.md "What it does").
pub const KINDS: [&str; 4] = ["pop3", "imap", "pop3-office365", "imap-office365"];
/// Encryption modes for incoming mail and SMTP.
pub const ENCRYPTIONS: [&str; 3] = ["tls", "starttls", "none"];

/// Every non-secret settings key as a flag.
#[derive(Args, Debug, Default, Clone, PartialEq)]
pub struct SettingsArgs {
    /// Tenant [Mandant] the account belongs to.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Display name of the account.
    #[arg(long)]
    pub name: Option<String>,
    /// E-mail address of the account.
    #[arg(long)]
    pub address: Option<String>,
    /// Protocol.
    #[arg(long, value_parser = PossibleValuesParser::new(KINDS))]
    pub kind: Option<String>,
    /// Incoming server host.
    #[arg(long)]
    pub host: Option<String>,
    /// Incoming server port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Incoming encryption (tls = implicit TLS, RFC 8314).
    #[arg(long, value_parser = PossibleValuesParser::new(ENCRYPTIONS))]
    pub encryption: Option<String>,
    /// Incoming login user.
    #[arg(long)]
    pub username: Option<String>,
    /// CRM user who alone sees this account's mail ("" = not private).
    #[arg(long)]
    pub private_owner: Option<String>,
    /// Remove mails from the server once they are stored.
    #[arg(long, value_name = "yes|no", value_parser = BoolishValueParser::new())]
    pub delete_on_server: Option<bool>,
    /// Seconds between fetches (0 = only on demand).
    #[arg(long, value_name = "SECONDS")]
    pub poll_interval: Option<u32>,
    /// Outgoing (SMTP) server host.
    #[arg(long)]
    pub smtp_host: Option<String>,
    /// Outgoing server port.
    #[arg(long)]
    pub smtp_port: Option<u16>,
    /// Outgoing encryption.
    #[arg(long, value_parser = PossibleValuesParser::new(ENCRYPTIONS))]
    pub smtp_encryption: Option<String>,
    /// Log in to the SMTP server [Login-Authentifizierung].
    #[arg(long, value_name = "yes|no", value_parser = BoolishValueParser::new())]
    pub smtp_login: Option<bool>,
    /// SMTP login user.
    #[arg(long)]
    pub smtp_username: Option<String>,
    /// IMAP Drafts folder.
    #[arg(long)]
    pub drafts_folder: Option<String>,
    /// IMAP Trash folder.
    #[arg(long)]
    pub trash_folder: Option<String>,
    /// IMAP Sent folder.
    #[arg(long)]
    pub sent_folder: Option<String>,
    /// Copy every sent mail into the Sent folder.
    #[arg(long, value_name = "yes|no", value_parser = BoolishValueParser::new())]
    pub save_sent_copy: Option<bool>,
    /// SPKI pin of the server certificate (sha256/base64).
    #[arg(long)]
    pub tls_pin: Option<String>,
    /// Allow sending a password without TLS to a non-loopback host.
    #[arg(long, value_name = "yes|no", value_parser = BoolishValueParser::new())]
    pub allow_plaintext_auth: Option<bool>,
}

impl SettingsArgs {
    /// The settings dict with only the keys given on the command line.
    pub fn to_dict(&self) -> HashMap<&'static str, Variant<'static>> {
        let mut d: HashMap<&'static str, Variant<'static>> = HashMap::new();
        let strings = [
            ("tenant", &self.tenant),
            ("name", &self.name),
            ("address", &self.address),
            ("kind", &self.kind),
            ("host", &self.host),
            ("encryption", &self.encryption),
            ("username", &self.username),
            ("private_owner", &self.private_owner),
            ("smtp_host", &self.smtp_host),
            ("smtp_encryption", &self.smtp_encryption),
            ("smtp_username", &self.smtp_username),
            ("drafts_folder", &self.drafts_folder),
            ("trash_folder", &self.trash_folder),
            ("sent_folder", &self.sent_folder),
            ("tls_pin", &self.tls_pin),
        ];
        for (key, value) in strings {
            if let Some(v) = value {
                d.insert(key, Variant::from(v.clone()));
            }
        }
        for (key, value) in [("port", self.port), ("smtp_port", self.smtp_port)] {
            if let Some(v) = value {
                d.insert(key, Variant::from(v));
            }
        }
        if let Some(v) = self.poll_interval {
            d.insert("poll_interval", Variant::from(v));
        }
        let bools = [
            ("delete_on_server", self.delete_on_server),
            ("smtp_login", self.smtp_login),
            ("save_sent_copy", self.save_sent_copy),
            ("allow_plaintext_auth", self.allow_plaintext_auth),
        ];
        for (key, value) in bools {
            if let Some(v) = value {
                d.insert(key, Variant::from(v));
            }
        }
        d
    }

    /// Office 365 kinds sign in with OAuth2 (Connect), not a password.
    pub fn is_office365(&self) -> bool {
        self.kind
            .as_deref()
            .is_some_and(|k| k.ends_with("-office365"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        s: SettingsArgs,
    }

    fn parse(args: &[&str]) -> Result<SettingsArgs, clap::Error> {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|t| t.s)
    }

    #[test]
    fn only_given_keys_with_daemon_types() {
        let s = parse(&[
            "--kind",
            "imap",
            "--host",
            "mail.example.org",
            "--port",
            "993",
            "--delete-on-server",
            "no",
            "--poll-interval",
            "300",
            "--smtp-login",
            "yes",
        ])
        .unwrap();
        let d = s.to_dict();
        assert_eq!(d.len(), 6);
        assert_eq!(d["kind"], Variant::from("imap"));
        assert_eq!(d["port"], Variant::U16(993));
        assert_eq!(d["poll_interval"], Variant::U32(300));
        assert_eq!(d["delete_on_server"], Variant::Bool(false));
        assert_eq!(d["smtp_login"], Variant::Bool(true));
        assert!(parse(&[]).unwrap().to_dict().is_empty());
        // "" is a real value (e.g. private_owner "" = not private).
        assert_eq!(
            parse(&["--private-owner", ""]).unwrap().to_dict()["private_owner"],
            Variant::from("")
        );
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(parse(&["--kind", "exchange"]).is_err());
        assert!(parse(&["--port", "70000"]).is_err());
        assert!(parse(&["--encryption", "ssl"]).is_err());
        assert!(parse(&["--delete-on-server", "maybe"]).is_err());
        assert!(parse(&["--password", "x"]).is_err());
    }

    #[test]
    fn office365_detection() {
        assert!(parse(&["--kind", "imap-office365"]).unwrap().is_office365());
        assert!(!parse(&["--kind", "imap"]).unwrap().is_office365());
    }
}
