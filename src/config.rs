//! Daemon config file: raw TOML -> validated [`Config`].
//!
//! The file is small and admin-written, so every mistake must name the exact
//! TOML key (`fetch.read_timeout`) and, where the TOML parser knows it, the
//! file and line. Unknown keys are errors (`deny_unknown_fields`): a typo such
//! as `admin_group` would otherwise silently grant nothing. Accounts are not
//! configured here; they live in the store and are managed over D-Bus.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::fetch::deadline::Budget;
use crate::fetch::DEFAULT_MAX_MESSAGE_SIZE;

mod oauth;
pub use oauth::{OAuthConfig, Office365Config};

/// Where `postfachd --system` looks when no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/postfach/postfach.toml";

/// The validated daemon configuration; `Default` is what an empty file gives.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// `[log] level`: an `EnvFilter` directive; `RUST_LOG` overrides it.
    pub log_level: Option<String>,
    pub access: AccessConfig,
    pub tls: TlsConfig,
    pub fetch: FetchConfig,
    /// `[oauth.office365]`: Office 365 sign-in (config::oauth).
    pub oauth: OAuthConfig,
}

/// `[access]`: who may call (ARCHITECTURE.md "The D-Bus API" "Who may call").
#[derive(Debug, Clone, PartialEq)]
pub struct AccessConfig {
    pub admin_groups: Vec<String>,
    pub frontend_groups: Vec<String>,
    /// Unix user name -> the one CRM user it may act as.
    pub users: BTreeMap<String, String>,
}

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsConfig {
    /// PEM file with CAs trusted in addition to the system roots (e.g. an
    /// in-house CA of the mail server).
    pub extra_ca_file: Option<PathBuf>,
}

/// `[fetch]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchConfig {
    /// Connection attempts in flight at once, across all accounts, so that a
    /// restart with hundreds of accounts does not hammer the mail servers.
    pub max_concurrent_connects: usize,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// Largest mail fetched; larger ones are refused and stay on the server.
    pub max_message_size: u64,
    /// `deadline_floor` and `deadline_min_rate`: how long one fetch may
    /// take (crate::fetch::deadline).
    pub deadline: Budget,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            admin_groups: vec!["postfach-admin".into()],
            frontend_groups: Vec::new(),
            users: BTreeMap::new(),
        }
    }
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            max_concurrent_connects: 8,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            deadline: Budget::default(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    access: RawAccess,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    fetch: RawFetch,
    #[serde(default)]
    oauth: oauth::RawOAuth,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    admin_groups: Option<Vec<String>>,
    frontend_groups: Option<Vec<String>>,
    users: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    extra_ca_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFetch {
    max_concurrent_connects: Option<u64>,
    connect_timeout: Option<u64>,
    read_timeout: Option<u64>,
    max_message_size: Option<u64>,
    deadline_floor: Option<u64>,
    deadline_min_rate: Option<u64>,
}

/// Upper bounds that catch unit mistakes (milliseconds typed as seconds).
const MAX_CONNECTS: u64 = 1024;
const MAX_TIMEOUT_SECS: u64 = 3600;
/// `max_message_size` bounds: below 1 MiB ordinary mail with an
/// attachment would be refused; 4 GiB - 1 is the largest IMAP literal
/// async-imap's parser reads (a u32).
const MESSAGE_SIZE: (u64, u64) = (1024 * 1024, u32::MAX as u64);
/// `deadline_floor`: up to a day.
const MAX_FLOOR_SECS: u64 = 86_400;
/// `deadline_min_rate` bounds in bytes per second: 1 KiB/s is slower than
/// any mail link; above 1 GiB/s no link delivers.
const MIN_RATE: (u64, u64) = (1024, 1024 * 1024 * 1024);

impl Config {
    /// Read and validate the file at `path`. A missing file is an error: the
    /// caller named it, so running on defaults would hide a typo in the path.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::NotFound(format!("config file {} does not exist", path.display()))
            }
            _ => Error::invalid("config", format!("cannot read {}: {e}", path.display())),
        })?;
        let config = parse_named(&text, &path.display().to_string())?;
        if let Some(ca) = &config.tls.extra_ca_file {
            if !ca.is_file() {
                return Err(Error::invalid(
                    "tls.extra_ca_file",
                    format!(
                        "{}: {} is not a readable file",
                        path.display(),
                        ca.display()
                    ),
                ));
            }
        }
        Ok(config)
    }

    /// Like [`Config::load`], but a missing file means defaults: used for
    /// [`DEFAULT_PATH`], which a fresh installation may not have.
    pub fn load_or_default(path: &Path) -> Result<Config> {
        match Config::load(path) {
            Err(Error::NotFound(_)) => Ok(Config::default()),
            other => other,
        }
    }

    /// Parse and validate config text (no file access).
    pub fn parse(text: &str) -> Result<Config> {
        parse_named(text, "config")
    }
}

fn parse_named(text: &str, name: &str) -> Result<Config> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(text, name, &e))?;
    validate(raw)
}

/// Turn a TOML error into `InvalidArgument` naming the key and the line.
/// toml gives a byte span but not the key path, so the path is rebuilt from
/// the nearest `[table]` header above the span and the key on its line.
fn toml_error(text: &str, name: &str, e: &toml::de::Error) -> Error {
    // One line per error: toml's messages may span lines, journald and
    // D-Bus error texts read better flat.
    let message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let Some(span) = e.span() else {
        return Error::invalid("config", format!("{name}: {message}"));
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let mut table = String::new();
    for line in text[..start].lines() {
        let t = line.trim();
        if t.starts_with('[') && !t.starts_with("[[") {
            if let Some(end) = t.find(']') {
                table = t[1..end].trim().to_string();
            }
        }
    }
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let key = match unknown_field(&message) {
        Some(k) => Some(k),
        None => line
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
            .filter(|k| !k.is_empty() && !k.starts_with('[')),
    };
    let path = match (table.is_empty(), key) {
        (true, Some(k)) => k,
        (false, Some(k)) => format!("{table}.{k}"),
        (false, None) => table,
        (true, None) => "config".to_string(),
    };
    Error::invalid(path, format!("{name}, line {line_no}: {message}"))
}

/// The field name in serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(k, _)| k.to_string())
}

fn validate(raw: RawConfig) -> Result<Config> {
    let defaults = Config::default();
    let log_level = match raw.log.level {
        Some(level) => {
            tracing_subscriber::EnvFilter::try_new(&level)
                .map_err(|e| Error::invalid("log.level", format!("{level:?}: {e}")))?;
            Some(level)
        }
        None => None,
    };

    let admin_groups = names("access.admin_groups", raw.access.admin_groups)?
        .unwrap_or(defaults.access.admin_groups);
    let frontend_groups =
        names("access.frontend_groups", raw.access.frontend_groups)?.unwrap_or_default();
    let users = raw.access.users.unwrap_or_default();
    for (unix, crm) in &users {
        let key = format!("access.users.{unix}");
        check_name(&key, unix)?;
        if crm.trim().is_empty() {
            return Err(Error::invalid(key, "the CRM user must not be empty"));
        }
    }

    let extra_ca_file = match raw.tls.extra_ca_file {
        Some(p) if !p.is_absolute() => {
            return Err(Error::invalid(
                "tls.extra_ca_file",
                format!("{} must be an absolute path", p.display()),
            ))
        }
        other => other,
    };

    let connects = bounded(
        "fetch.max_concurrent_connects",
        raw.fetch.max_concurrent_connects,
        defaults.fetch.max_concurrent_connects as u64,
        MAX_CONNECTS,
    )?;
    let connect_timeout = bounded(
        "fetch.connect_timeout",
        raw.fetch.connect_timeout,
        defaults.fetch.connect_timeout.as_secs(),
        MAX_TIMEOUT_SECS,
    )?;
    let read_timeout = bounded(
        "fetch.read_timeout",
        raw.fetch.read_timeout,
        defaults.fetch.read_timeout.as_secs(),
        MAX_TIMEOUT_SECS,
    )?;

    let fetch = FetchConfig {
        max_concurrent_connects: connects as usize,
        connect_timeout: Duration::from_secs(connect_timeout),
        read_timeout: Duration::from_secs(read_timeout),
        max_message_size: within(
            "fetch.max_message_size",
            raw.fetch.max_message_size,
            defaults.fetch.max_message_size,
            MESSAGE_SIZE,
        )?,
        deadline: Budget {
            floor: Duration::from_secs(bounded(
                "fetch.deadline_floor",
                raw.fetch.deadline_floor,
                defaults.fetch.deadline.floor.as_secs(),
                MAX_FLOOR_SECS,
            )?),
            min_rate: within(
                "fetch.deadline_min_rate",
                raw.fetch.deadline_min_rate,
                defaults.fetch.deadline.min_rate,
                MIN_RATE,
            )?,
        },
    };
    Ok(Config {
        log_level,
        access: AccessConfig {
            admin_groups,
            frontend_groups,
            users,
        },
        tls: TlsConfig { extra_ca_file },
        fetch,
        oauth: oauth::validate(raw.oauth)?,
    })
}

fn names(key: &str, list: Option<Vec<String>>) -> Result<Option<Vec<String>>> {
    if let Some(list) = &list {
        for n in list {
            check_name(key, n)?;
        }
    }
    Ok(list)
}

/// Unix user and group names: what `useradd` accepts, loosely. Rejecting
/// spaces and empty names catches copy-paste mistakes early instead of
/// producing a rule that never matches.
fn check_name(key: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            key,
            format!("{name:?} is not a valid Unix user or group name"),
        ))
    }
}

fn bounded(key: &str, value: Option<u64>, default: u64, max: u64) -> Result<u64> {
    within(key, value, default, (1, max))
}

fn within(key: &str, value: Option<u64>, default: u64, (min, max): (u64, u64)) -> Result<u64> {
    match value {
        None => Ok(default),
        Some(v) if (min..=max).contains(&v) => Ok(v),
        Some(v) => Err(Error::invalid(
            key,
            format!("{v} is out of range: allowed are {min} to {max}"),
        )),
    }
}

#[cfg(test)]
mod tests;
