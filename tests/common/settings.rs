//! The one settings builder of the tests: account settings made once and
//! handed to `CreateAccount` over D-Bus ([`Settings::dbus`]) or to the
//! library's `Account::create` ([`Settings::create_in`]), so that every test
//! that needs "an IMAP account of this user on the run's Dovecot" says it
//! the same way and changes only what it is about.

use std::collections::HashMap;

use postfach::account::{Account, SettingValue};
use postfach::store::Store;
use zbus::Variant;

use super::{Env, MailUser};

/// Settings keys and values, in the order they were given.
#[derive(Debug, Clone, Default)]
pub struct Settings(Vec<(&'static str, SettingValue)>);

/// A value for [`Settings::with`].
pub trait IntoSetting {
    fn into_setting(self) -> SettingValue;
}

impl IntoSetting for &str {
    fn into_setting(self) -> SettingValue {
        SettingValue::Str(self.to_string())
    }
}

impl IntoSetting for String {
    fn into_setting(self) -> SettingValue {
        SettingValue::Str(self)
    }
}

impl IntoSetting for &String {
    fn into_setting(self) -> SettingValue {
        SettingValue::Str(self.clone())
    }
}

impl IntoSetting for u16 {
    fn into_setting(self) -> SettingValue {
        SettingValue::U16(self)
    }
}

impl IntoSetting for u32 {
    fn into_setting(self) -> SettingValue {
        SettingValue::U32(self)
    }
}

impl IntoSetting for bool {
    fn into_setting(self) -> SettingValue {
        SettingValue::Bool(self)
    }
}

impl IntoSetting for SettingValue {
    fn into_setting(self) -> SettingValue {
        self
    }
}

impl Settings {
    /// No keys yet.
    pub fn new() -> Settings {
        Settings::default()
    }

    /// An account of `kind` (`imap`, `pop3`) for `user` on the run's
    /// Dovecot over implicit TLS: kind, host, port, encryption, address. No
    /// password: the tests differ in which one they give.
    pub fn on_dovecot(kind: &str, user: &MailUser) -> Settings {
        let env = Env::get();
        let port = if kind.starts_with("pop3") {
            env.pop3s_port
        } else {
            env.imaps_port
        };
        Settings::new()
            .with("kind", kind)
            .with("host", "127.0.0.1")
            .with("port", port)
            .with("encryption", "tls")
            .with("address", &user.address)
    }

    /// An account of `kind` at `address` on a scripted server on loopback
    /// (tests/common/scripted): clear text (allowed on loopback), fetched
    /// only on demand (poll interval 0). No password.
    pub fn on_loopback(kind: &str, port: u16, address: &str) -> Settings {
        Settings::new()
            .with("kind", kind)
            .with("host", "127.0.0.1")
            .with("port", port)
            .with("encryption", "none")
            .with("address", address)
            .with("poll_interval", 0u32)
    }

    /// Sets `key` (replacing an earlier value of it).
    pub fn with(mut self, key: &'static str, value: impl IntoSetting) -> Settings {
        let value = value.into_setting();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
        self
    }

    /// Every pair of `extra` set in turn.
    pub fn with_all(self, extra: &[(&'static str, SettingValue)]) -> Settings {
        extra.iter().fold(self, |s, (k, v)| s.with(k, v.clone()))
    }

    /// The `a{sv}` of `CreateAccount` / `Update`.
    pub fn dbus(&self) -> HashMap<&'static str, Variant<'static>> {
        self.0
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    SettingValue::Str(s) => Variant::from(s.clone()),
                    SettingValue::Bool(b) => Variant::from(*b),
                    SettingValue::U16(n) => Variant::from(*n),
                    SettingValue::U32(n) => Variant::from(*n),
                    SettingValue::Other(sig) => panic!("{k}: no test value of type {sig}"),
                };
                (*k, v)
            })
            .collect()
    }

    /// The pairs `Account::create` takes.
    pub fn pairs(&self) -> Vec<(String, SettingValue)> {
        self.0
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// Creates the account in `store` (the library way, no daemon).
    pub fn create_in(&self, store: &Store) -> Account {
        let pairs = self.pairs();
        store
            .create_account(|id| Account::create(id, &pairs))
            .expect("create the account")
    }
}
