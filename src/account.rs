//! Account settings: kinds, encryption modes, Office 365 presets and the
//! validation of every settings key (no I/O here).
//!
//! The D-Bus layer turns an `a{sv}` into a list of [`SettingValue`]s and hands
//! it to [`Account::apply`]; the store only ever sees an [`Account`] that
//! passed validation. Validation runs on a copy, so a bad key leaves the
//! stored account untouched (ARCHITECTURE.md "The D-Bus API": "nothing is half-written").

use serde::{Deserialize, Serialize};

mod settings;
mod validate;

pub use validate::{check_address, check_host, check_text, check_user, hidden_char, MAX_USER};

/// Longest accepted string value; longer input is refused, not truncated.
pub const MAX_STRING: usize = 1024;
/// Longest host name (RFC 1035 §2.3.4).
pub(crate) const MAX_HOST: usize = 253;

/// A settings value as it arrived, typed by its D-Bus signature.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    Str(String),
    Bool(bool),
    U16(u16),
    U32(u32),
    /// Any other type; holds its D-Bus signature for the error message.
    Other(String),
}

impl SettingValue {
    fn type_name(&self) -> String {
        match self {
            SettingValue::Str(_) => "s".into(),
            SettingValue::Bool(_) => "b".into(),
            SettingValue::U16(_) => "q".into(),
            SettingValue::U32(_) => "u".into(),
            SettingValue::Other(sig) => sig.clone(),
        }
    }
}

/// The protocol an account fetches with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "pop3")]
    Pop3,
    #[serde(rename = "imap")]
    Imap,
    #[serde(rename = "pop3-office365")]
    Pop3Office365,
    #[serde(rename = "imap-office365")]
    ImapOffice365,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pop3 => "pop3",
            Kind::Imap => "imap",
            Kind::Pop3Office365 => "pop3-office365",
            Kind::ImapOffice365 => "imap-office365",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [
            Kind::Pop3,
            Kind::Imap,
            Kind::Pop3Office365,
            Kind::ImapOffice365,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    pub fn is_imap(self) -> bool {
        matches!(self, Kind::Imap | Kind::ImapOffice365)
    }

    pub fn is_office365(self) -> bool {
        matches!(self, Kind::Pop3Office365 | Kind::ImapOffice365)
    }
}

/// Transport security for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    /// Clear text. A password is only sent over it to a loopback host, or
    /// when the account sets `allow_plaintext_auth`.
    None,
    /// Implicit TLS from the first byte (RFC 8314, the default).
    Tls,
    /// Upgrade with STARTTLS/STLS; refused if the server does not offer it.
    Starttls,
}

impl Encryption {
    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::None => "none",
            Encryption::Tls => "tls",
            Encryption::Starttls => "starttls",
        }
    }

    pub fn parse(s: &str) -> Option<Encryption> {
        match s {
            "none" => Some(Encryption::None),
            "tls" => Some(Encryption::Tls),
            "starttls" => Some(Encryption::Starttls),
            _ => None,
        }
    }
}

/// Default incoming port for a kind and encryption (IANA registrations).
pub fn default_port(kind: Kind, enc: Encryption) -> u16 {
    match (kind.is_imap(), enc) {
        (true, Encryption::Tls) => 993,
        (true, _) => 143,
        (false, Encryption::Tls) => 995,
        (false, _) => 110,
    }
}

/// Default SMTP submission port (RFC 8314: 465 implicit TLS, 587 otherwise).
pub fn default_smtp_port(enc: Encryption) -> u16 {
    match enc {
        Encryption::Tls => 465,
        _ => 587,
    }
}

/// Microsoft's Office 365 endpoints, filled in when the settings omit them.
pub const O365_IMAP: (&str, u16) = ("outlook.office365.com", 993);
pub const O365_POP3: (&str, u16) = ("outlook.office365.com", 995);
pub const O365_SMTP: (&str, u16) = ("smtp.office365.com", 587);

/// One configured mail account, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Stable id; also the last element of the D-Bus object path.
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub address: String,
    pub kind: Kind,
    pub host: String,
    pub port: u16,
    pub encryption: Encryption,
    pub username: String,
    /// CRM user shorthand that owns a private account; "" = public.
    pub private_owner: String,
    pub delete_on_server: bool,
    /// Seconds between polls; 0 = only on demand.
    pub poll_interval: u32,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_encryption: Encryption,
    pub smtp_login: bool,
    pub smtp_username: String,
    pub drafts_folder: String,
    pub trash_folder: String,
    pub sent_folder: String,
    pub save_sent_copy: bool,
    /// base64 SHA-256 of the server's SubjectPublicKeyInfo; "" = no pin.
    pub tls_pin: String,
    pub allow_plaintext_auth: bool,
    /// Set when a restore switched delete-on-server off.
    #[serde(default)]
    pub restore_reset: bool,
    /// Server folders as of the last folder sync.
    #[serde(default)]
    pub folders: Vec<String>,
    /// Unix seconds of the last folder sync; 0 = never.
    #[serde(default)]
    pub folders_synced_at: u64,
}

/// Secrets that arrive with settings; kept apart from [`Account`] so that no
/// code path that shows an account can show them.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct SecretChanges {
    pub password: Option<String>,
    pub smtp_password: Option<String>,
}

impl std::fmt::Debug for SecretChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretChanges")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "smtp_password",
                &self.smtp_password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Every key CreateAccount, Update and TestSettings accept.
pub const KEYS: &[&str] = &[
    "tenant",
    "name",
    "address",
    "kind",
    "host",
    "port",
    "encryption",
    "username",
    "password",
    "private_owner",
    "delete_on_server",
    "poll_interval",
    "smtp_host",
    "smtp_port",
    "smtp_encryption",
    "smtp_login",
    "smtp_username",
    "smtp_password",
    "drafts_folder",
    "trash_folder",
    "sent_folder",
    "save_sent_copy",
    "tls_pin",
    "allow_plaintext_auth",
];

/// Longest accepted poll interval: one week.
pub const MAX_POLL_INTERVAL: u32 = 7 * 24 * 3600;
