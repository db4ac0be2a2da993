//! tracing: journald under systemd, else stderr.
//!
//! Under systemd the daemon's stderr is already a journal stream, but writing
//! through the native journald protocol keeps each event's level as the
//! journal PRIORITY and its fields as searchable journal fields, named as
//! in the code but upper-cased and without a prefix: `journalctl -u
//! postfachd ACCOUNT_ID=a7`. The fields an admin filters by are
//! `ACCOUNT_ID`, `TENANT`, `MESSAGE_COUNT` and `ERROR_KIND` (the D-Bus error
//! name's last part); a field must never be named like one of journald's own
//! (`MESSAGE`, `PRIORITY`, `CODE_*`, `SYSLOG_*`), which tracing-journald
//! writes itself. systemd sets `JOURNAL_STREAM` to the
//! `device:inode` of that stream (systemd.exec(5)); we use journald only when
//! stderr still is that stream, so `postfachd 2>file` run from a unit's shell
//! logs to the file as asked.
//!
//! The level filter sits behind a reload layer so that SIGHUP can change it
//! without a restart. `RUST_LOG` wins over the config file's `[log] level`:
//! whoever sets it in the environment asked for that level explicitly.

use std::io::IsTerminal;
use std::os::fd::AsRawFd;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::error::{Error, Result};

/// The level used when neither `RUST_LOG` nor the config sets one.
pub const DEFAULT_LEVEL: &str = "info";

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Journald,
    Stderr,
}

/// Changes the active filter after [`init`].
#[derive(Clone)]
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    /// The `RUST_LOG` value at start, if any; it wins over config reloads.
    env_level: Option<String>,
    sink: Sink,
}

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHandle")
            .field("env_level", &self.env_level)
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

/// Install the global subscriber. `config_level` is `[log] level`.
/// Fails if a level directive is invalid or a subscriber is already set.
pub fn init(config_level: Option<&str>) -> Result<LogHandle> {
    let env_level = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let (key, level) = effective_level(env_level.as_deref(), config_level);
    let filter = parse_filter(key, level)?;
    let (filter_layer, handle) = reload::Layer::new(filter);

    let (journald, fallback) = if journal_stream_is_stderr() {
        match tracing_journald::layer() {
            Ok(layer) => (Some(layer.with_field_prefix(None)), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, None)
    };
    let sink = if journald.is_some() {
        Sink::Journald
    } else {
        Sink::Stderr
    };
    let stderr = journald.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            // Colour codes only for a person at a terminal, not in log files.
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(true)
    });

    tracing_subscriber::registry()
        .with(filter_layer)
        .with(journald)
        .with(stderr)
        .try_init()
        .map_err(|e| Error::invalid("log", format!("cannot install the logger: {e}")))?;

    if let Some(reason) = fallback {
        tracing::warn!("cannot open the journald socket ({reason}); logging to stderr instead");
    }
    Ok(LogHandle {
        filter: handle,
        env_level,
        sink,
    })
}

impl LogHandle {
    /// Replace the filter with `level` (an `EnvFilter` directive such as
    /// `info` or `postfach::imap=debug,warn`). On error the old filter stays.
    pub fn set_level(&self, level: &str) -> Result<()> {
        let filter = parse_filter("log.level", level)?;
        self.filter
            .reload(filter)
            .map_err(|e| Error::invalid("log.level", format!("cannot change the level: {e}")))
    }

    /// Apply `[log] level` after a config reload (SIGHUP): `RUST_LOG`, if it
    /// was set at start, still wins; no level at all means [`DEFAULT_LEVEL`].
    pub fn apply_config(&self, config_level: Option<&str>) -> Result<()> {
        let (_, level) = effective_level(self.env_level.as_deref(), config_level);
        self.set_level(level)
    }

    /// The active filter, as text.
    pub fn current(&self) -> String {
        self.filter
            .with_current(|f| f.to_string())
            .unwrap_or_default()
    }

    /// Where the log lines go.
    pub fn sink(&self) -> Sink {
        self.sink
    }
}

/// The level to use and the name of its source, for error messages.
fn effective_level<'a>(
    env_level: Option<&'a str>,
    config_level: Option<&'a str>,
) -> (&'static str, &'a str) {
    match (env_level, config_level) {
        (Some(env), _) => ("RUST_LOG", env),
        (None, Some(cfg)) => ("log.level", cfg),
        (None, None) => ("log.level", DEFAULT_LEVEL),
    }
}

fn parse_filter(key: &str, level: &str) -> Result<EnvFilter> {
    EnvFilter::try_new(level).map_err(|e| Error::invalid(key, format!("{level:?}: {e}")))
}

/// True when `JOURNAL_STREAM` names the file our stderr is open on.
fn journal_stream_is_stderr() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    match nix::sys::stat::fstat(std::io::stderr().as_raw_fd()) {
        Ok(st) => journal_stream_matches(&value, st.st_dev, st.st_ino),
        Err(_) => false,
    }
}

/// `JOURNAL_STREAM` is `<device>:<inode>`, both decimal (systemd.exec(5)).
fn journal_stream_matches(value: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;

    #[test]
    fn env_wins_over_config_and_default_is_info() {
        assert_eq!(
            effective_level(Some("debug"), Some("warn")),
            ("RUST_LOG", "debug")
        );
        assert_eq!(effective_level(None, Some("warn")), ("log.level", "warn"));
        assert_eq!(effective_level(None, None), ("log.level", "info"));
    }

    #[test]
    fn journal_stream_must_match_stderr() {
        assert!(journal_stream_matches("8:1234", 8, 1234));
        assert!(!journal_stream_matches("8:1234", 8, 1235));
        assert!(!journal_stream_matches("9:1234", 8, 1234));
        assert!(!journal_stream_matches("garbage", 8, 1234));
        assert!(!journal_stream_matches("", 0, 0));
    }

    #[test]
    fn bad_directive_names_its_source() {
        match parse_filter("RUST_LOG", "=[") {
            Err(Error::InvalidArgument { key, .. }) => assert_eq!(key, "RUST_LOG"),
            other => panic!("{other:?}"),
        }
    }

    /// The only test that installs the global subscriber (one per process).
    #[test]
    fn set_level_changes_the_live_filter() {
        let handle = init(Some("warn")).unwrap();
        if std::env::var("RUST_LOG").is_err() {
            assert_eq!(LevelFilter::current(), LevelFilter::WARN);
        }
        handle.set_level("debug").unwrap();
        assert_eq!(LevelFilter::current(), LevelFilter::DEBUG);
        assert_eq!(handle.current(), "debug");
        // A bad level is refused and leaves the old one in place.
        assert!(handle.set_level("=[").is_err());
        assert_eq!(LevelFilter::current(), LevelFilter::DEBUG);
        handle.set_level("error").unwrap();
        assert_eq!(LevelFilter::current(), LevelFilter::ERROR);
        if std::env::var("RUST_LOG").is_err() {
            handle.apply_config(Some("warn")).unwrap();
            assert_eq!(LevelFilter::current(), LevelFilter::WARN);
            handle.apply_config(None).unwrap();
            assert_eq!(LevelFilter::current(), LevelFilter::INFO);
        }
        // A second init fails cleanly instead of panicking.
        assert!(init(None).is_err());
    }
}
