//! Account settings: kinds, encryption modes, Office 365 presets and the
//! validation of every settings key (no I/O here).
//!
//! The D-Bus layer turns an `a{sv}` into a list of [`SettingValue`]s and hands
//! it to [`Account::apply`]; the store only ever sees an [`Account`] that
//! passed validation. Validation runs on a copy, so a bad key leaves the
//! stored account untouched (DESIGN.md §3: "nothing is half-written").

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest accepted string value; longer input is refused, not truncated.
pub const MAX_STRING: usize = 1024;
/// Longest host name (RFC 1035 §2.3.4).
const MAX_HOST: usize = 253;

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

impl Account {
    /// Build a new account from CreateAccount settings. `kind`, `host` (unless
    /// an Office 365 kind) and `address` are required; the rest default.
    pub fn create(
        id: String,
        settings: &[(String, SettingValue)],
    ) -> Result<(Account, SecretChanges)> {
        let kind = match settings.iter().find(|(k, _)| k == "kind") {
            Some((_, v)) => parse_kind(v)?,
            None => {
                return Err(Error::invalid(
                    "kind",
                    "missing; one of pop3, imap, pop3-office365, imap-office365",
                ))
            }
        };
        let mut account = Account {
            id,
            // Accounts belong to a tenant [Mandant]; single-tenant CRMs need
            // not name one.
            tenant: "default".into(),
            name: String::new(),
            address: String::new(),
            kind,
            host: String::new(),
            port: 0,
            encryption: Encryption::Tls,
            username: String::new(),
            private_owner: String::new(),
            delete_on_server: false,
            poll_interval: 300,
            smtp_host: String::new(),
            smtp_port: 0,
            smtp_encryption: Encryption::Tls,
            smtp_login: true,
            smtp_username: String::new(),
            drafts_folder: String::new(),
            trash_folder: String::new(),
            sent_folder: String::new(),
            save_sent_copy: false,
            tls_pin: String::new(),
            allow_plaintext_auth: false,
            restore_reset: false,
            folders: Vec::new(),
            folders_synced_at: 0,
        };
        let secrets = account.apply_keys(settings)?;
        account.fill_defaults(settings);
        account.check_complete()?;
        Ok((account, secrets))
    }

    /// Apply Update changes to a copy and return it; `self` is untouched, so
    /// a bad key leaves the stored account as it was.
    pub fn updated(&self, changes: &[(String, SettingValue)]) -> Result<(Account, SecretChanges)> {
        let mut next = self.clone();
        let secrets = next.apply_keys(changes)?;
        next.fill_defaults(changes);
        next.check_complete()?;
        Ok((next, secrets))
    }

    fn apply_keys(&mut self, settings: &[(String, SettingValue)]) -> Result<SecretChanges> {
        let mut secrets = SecretChanges::default();
        let mut seen = std::collections::HashSet::new();
        for (key, value) in settings {
            if !seen.insert(key.as_str()) {
                return Err(Error::invalid(key, "given twice"));
            }
            match key.as_str() {
                "tenant" => self.tenant = name_field(key, value, true)?,
                "name" => self.name = name_field(key, value, true)?,
                "address" => {
                    let a = string(key, value)?;
                    check_address(key, &a)?;
                    self.address = a;
                }
                "kind" => self.kind = parse_kind(value)?,
                "host" => self.host = host(key, value)?,
                "port" => self.port = port(key, value)?,
                "encryption" => self.encryption = encryption(key, value)?,
                "username" => self.username = name_field(key, value, true)?,
                "password" => secrets.password = Some(secret(key, value)?),
                "private_owner" => self.private_owner = user_shorthand(key, value)?,
                "delete_on_server" => self.delete_on_server = boolean(key, value)?,
                "poll_interval" => {
                    let v = match value {
                        SettingValue::U32(v) => *v,
                        other => return Err(wrong_type(key, "u (uint32)", other)),
                    };
                    if v > MAX_POLL_INTERVAL {
                        return Err(Error::invalid(
                            key,
                            format!("{v} s is more than a week ({MAX_POLL_INTERVAL} s)"),
                        ));
                    }
                    self.poll_interval = v;
                }
                "smtp_host" => self.smtp_host = host(key, value)?,
                "smtp_port" => self.smtp_port = port(key, value)?,
                "smtp_encryption" => self.smtp_encryption = encryption(key, value)?,
                "smtp_login" => self.smtp_login = boolean(key, value)?,
                "smtp_username" => self.smtp_username = name_field(key, value, true)?,
                "smtp_password" => secrets.smtp_password = Some(secret(key, value)?),
                "drafts_folder" => self.drafts_folder = folder(key, value)?,
                "trash_folder" => self.trash_folder = folder(key, value)?,
                "sent_folder" => self.sent_folder = folder(key, value)?,
                "save_sent_copy" => self.save_sent_copy = boolean(key, value)?,
                "tls_pin" => self.tls_pin = pin(key, value)?,
                "allow_plaintext_auth" => self.allow_plaintext_auth = boolean(key, value)?,
                _ => {
                    return Err(Error::invalid(
                        key,
                        format!("unknown settings key; known keys: {}", KEYS.join(", ")),
                    ))
                }
            }
        }
        Ok(secrets)
    }

    /// Fill ports and Office 365 hosts that the settings left out. A port
    /// is re-derived when the encryption changed but the port was not given.
    fn fill_defaults(&mut self, given: &[(String, SettingValue)]) {
        let has = |k: &str| given.iter().any(|(key, _)| key == k);
        if self.kind.is_office365() {
            let (h, p) = if self.kind.is_imap() {
                O365_IMAP
            } else {
                O365_POP3
            };
            if self.host.is_empty() {
                self.host = h.into();
                if !has("port") {
                    self.port = p;
                }
            }
            if self.smtp_host.is_empty() {
                self.smtp_host = O365_SMTP.0.into();
                if !has("smtp_port") {
                    self.smtp_port = O365_SMTP.1;
                }
                if !has("smtp_encryption") {
                    self.smtp_encryption = Encryption::Starttls;
                }
            }
        }
        if self.port == 0 || ((has("encryption") || has("kind")) && !has("port")) {
            self.port = default_port(self.kind, self.encryption);
        }
        if self.smtp_port == 0 || (has("smtp_encryption") && !has("smtp_port")) {
            self.smtp_port = default_smtp_port(self.smtp_encryption);
        }
        if self.username.is_empty() {
            self.username = self.address.clone();
        }
        if self.smtp_username.is_empty() {
            self.smtp_username = self.username.clone();
        }
        if self.name.is_empty() {
            self.name = self.address.clone();
        }
    }

    fn check_complete(&self) -> Result<()> {
        if self.address.is_empty() {
            return Err(Error::invalid(
                "address",
                "missing; the account's e-mail address is required",
            ));
        }
        if self.host.is_empty() {
            return Err(Error::invalid(
                "host",
                "missing; the incoming server's host name is required",
            ));
        }
        if !self.kind.is_imap()
            && (!self.drafts_folder.is_empty()
                || !self.trash_folder.is_empty()
                || !self.sent_folder.is_empty()
                || self.save_sent_copy)
        {
            let key = if !self.drafts_folder.is_empty() {
                "drafts_folder"
            } else if !self.trash_folder.is_empty() {
                "trash_folder"
            } else if !self.sent_folder.is_empty() {
                "sent_folder"
            } else {
                "save_sent_copy"
            };
            return Err(Error::invalid(key, "folders exist only on IMAP accounts"));
        }
        if self.save_sent_copy && self.sent_folder.is_empty() {
            return Err(Error::invalid("save_sent_copy", "needs sent_folder"));
        }
        Ok(())
    }
}

fn wrong_type(key: &str, expected: &str, got: &SettingValue) -> Error {
    Error::invalid(
        key,
        format!("wrong type: expected {expected}, got {}", got.type_name()),
    )
}

fn string(key: &str, v: &SettingValue) -> Result<String> {
    match v {
        SettingValue::Str(s) if s.len() > MAX_STRING => Err(Error::invalid(
            key,
            format!("too long: {} bytes, at most {MAX_STRING}", s.len()),
        )),
        SettingValue::Str(s) if s.chars().any(char::is_control) => {
            Err(Error::invalid(key, "contains control characters"))
        }
        SettingValue::Str(s) => Ok(s.clone()),
        other => Err(wrong_type(key, "s (string)", other)),
    }
}

/// A free-text field (name, tenant, user name): bounded, no control chars,
/// not only white space when `nonblank`.
fn name_field(key: &str, v: &SettingValue, nonblank: bool) -> Result<String> {
    let s = string(key, v)?;
    if nonblank && s.trim().is_empty() {
        return Err(Error::invalid(key, "empty"));
    }
    Ok(s)
}

fn secret(key: &str, v: &SettingValue) -> Result<String> {
    match v {
        SettingValue::Str(s) if s.len() > MAX_STRING => Err(Error::invalid(
            key,
            format!("too long: {} bytes, at most {MAX_STRING}", s.len()),
        )),
        SettingValue::Str(s) if s.contains(['\r', '\n', '\0']) => Err(Error::invalid(
            key,
            "contains a line break or NUL, which no mail protocol can carry",
        )),
        SettingValue::Str(s) => Ok(s.clone()),
        other => Err(wrong_type(key, "s (string)", other)),
    }
}

fn boolean(key: &str, v: &SettingValue) -> Result<bool> {
    match v {
        SettingValue::Bool(b) => Ok(*b),
        other => Err(wrong_type(key, "b (boolean)", other)),
    }
}

fn port(key: &str, v: &SettingValue) -> Result<u16> {
    match v {
        SettingValue::U16(0) => Err(Error::invalid(key, "port 0 is not a port; use 1-65535")),
        SettingValue::U16(p) => Ok(*p),
        other => Err(wrong_type(key, "q (uint16, 1-65535)", other)),
    }
}

fn parse_kind(v: &SettingValue) -> Result<Kind> {
    let s = string("kind", v)?;
    Kind::parse(&s).ok_or_else(|| {
        Error::invalid(
            "kind",
            format!("unknown kind {s:?}; one of pop3, imap, pop3-office365, imap-office365"),
        )
    })
}

fn encryption(key: &str, v: &SettingValue) -> Result<Encryption> {
    let s = string(key, v)?;
    Encryption::parse(&s).ok_or_else(|| {
        Error::invalid(
            key,
            format!("unknown encryption {s:?}; one of none, tls, starttls"),
        )
    })
}

/// A host name (RFC 1123 labels) or an IPv4/IPv6 literal.
pub fn check_host(key: &str, h: &str) -> Result<()> {
    if h.is_empty() {
        return Err(Error::invalid(key, "empty host name"));
    }
    if h.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if h.len() > MAX_HOST {
        return Err(Error::invalid(
            key,
            format!("host name longer than {MAX_HOST} characters"),
        ));
    }
    let ok = h.trim_end_matches('.').split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if !ok {
        return Err(Error::invalid(
            key,
            format!("{h:?} is not a valid host name or IP address"),
        ));
    }
    Ok(())
}

fn host(key: &str, v: &SettingValue) -> Result<String> {
    let h = string(key, v)?;
    if h.is_empty() && key == "smtp_host" {
        return Ok(h);
    }
    check_host(key, &h)?;
    Ok(h.to_ascii_lowercase())
}

/// A pragmatic addr-spec check (RFC 5322 §3.4.1 without comments or quoted
/// local parts, which no CRM user types): `local@domain`.
pub fn check_address(key: &str, a: &str) -> Result<()> {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return Err(Error::invalid(
            key,
            format!("{a:?} is not an e-mail address (no @)"),
        ));
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.bytes().all(|b| {
            b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b) || b >= 0x80
        });
    if !local_ok {
        return Err(Error::invalid(
            key,
            format!("{a:?} is not an e-mail address (bad local part)"),
        ));
    }
    if !domain.contains('.') && domain != "localhost" {
        return Err(Error::invalid(
            key,
            format!("{a:?} is not an e-mail address (domain needs a dot)"),
        ));
    }
    check_host(key, domain)
        .map_err(|_| Error::invalid(key, format!("{a:?} is not an e-mail address (bad domain)")))
}

/// A CRM user shorthand [Nutzerkürzel]: letters, digits, `._-`, at most 64.
pub fn check_user(key: &str, u: &str) -> Result<()> {
    if u.len() > 64 || !u.chars().all(|c| c.is_alphanumeric() || "._-@".contains(c)) {
        return Err(Error::invalid(
            key,
            format!("{u:?} is not a CRM user shorthand (letters, digits, . _ - @; at most 64)"),
        ));
    }
    Ok(())
}

fn user_shorthand(key: &str, v: &SettingValue) -> Result<String> {
    let u = string(key, v)?;
    check_user(key, &u)?;
    Ok(u)
}

/// An IMAP mailbox name (RFC 3501 §5.1): "" = not set; no control chars,
/// no `*` or `%` wildcards, at most 255 bytes.
fn folder(key: &str, v: &SettingValue) -> Result<String> {
    let f = string(key, v)?;
    if f.len() > 255 || f.contains(['*', '%']) || f.trim() != f {
        return Err(Error::invalid(
            key,
            format!("{f:?} is not a valid IMAP folder name"),
        ));
    }
    Ok(f)
}

/// A pin is base64 of a SHA-256 digest: 32 bytes.
fn pin(key: &str, v: &SettingValue) -> Result<String> {
    use base64::Engine;
    let p = string(key, v)?;
    if p.is_empty() {
        return Ok(p);
    }
    let raw = p.strip_prefix("sha256/").unwrap_or(&p);
    match base64::engine::general_purpose::STANDARD.decode(raw) {
        Ok(bytes) if bytes.len() == 32 => Ok(raw.to_string()),
        _ => Err(Error::invalid(
            key,
            "expected base64 of the SHA-256 of the server's public key (44 characters)",
        )),
    }
}
