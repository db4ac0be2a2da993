//! Wire types: `a{sv}` settings in, property values and step/message dicts
//! out. The only place that knows both the D-Bus types and the crate's.

use std::collections::HashMap;

use zbus::{OwnedVariant, Variant};

use crate::account::{Account, SettingValue};
use crate::error::{Error, Result};

/// A dict returned to callers (`a{sv}`).
pub type Dict = HashMap<String, Variant<'static>>;

/// Turn an `a{sv}` into typed settings. Keys are sorted, so that the first
/// bad key reported is the same on every call. A variant nested in a
/// variant (`v` in `v`) is unwrapped once: some bindings box values twice.
pub fn settings(dict: HashMap<String, OwnedVariant>) -> Vec<(String, SettingValue)> {
    let mut out: Vec<(String, SettingValue)> = dict
        .into_iter()
        .map(|(k, v)| {
            let value = setting_value(&v);
            (k, value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn setting_value(v: &Variant<'_>) -> SettingValue {
    match v {
        Variant::Str(s) => SettingValue::Str(s.to_string()),
        Variant::Bool(b) => SettingValue::Bool(*b),
        Variant::U16(p) => SettingValue::U16(*p),
        Variant::U32(u) => SettingValue::U32(*u),
        Variant::Variant(inner) => setting_value(inner),
        other => SettingValue::Other(other.value_signature().to_string()),
    }
}

/// A setting key may be given only once per call and must be a known key;
/// an empty dict is refused where it would do nothing.
pub fn require_nonempty(settings: &[(String, SettingValue)], what: &str) -> Result<()> {
    if settings.is_empty() {
        return Err(Error::invalid(
            "settings",
            format!("{what} needs at least one settings key"),
        ));
    }
    Ok(())
}

/// Runtime status of an account, as the scheduler reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusView {
    pub state: String,
    pub last_error: String,
    pub last_fetch_at: u64,
    pub progress: (u32, u32),
}

/// Every property of the Account interface from its settings, secrets and
/// status. Used for PropertiesChanged after Update and by tests; the
/// property getters read the same fields.
pub fn account_props(a: &Account, has_password: bool) -> Vec<(&'static str, Variant<'static>)> {
    vec![
        ("Id", a.id.clone().into()),
        ("Tenant", a.tenant.clone().into()),
        ("Name", a.name.clone().into()),
        ("Address", a.address.clone().into()),
        ("Kind", a.kind.as_str().to_string().into()),
        ("Host", a.host.clone().into()),
        ("Port", a.port.into()),
        ("Encryption", a.encryption.as_str().to_string().into()),
        ("Username", a.username.clone().into()),
        ("PrivateOwner", a.private_owner.clone().into()),
        ("DeleteOnServer", a.delete_on_server.into()),
        ("PollInterval", a.poll_interval.into()),
        ("SmtpHost", a.smtp_host.clone().into()),
        ("SmtpPort", a.smtp_port.into()),
        (
            "SmtpEncryption",
            a.smtp_encryption.as_str().to_string().into(),
        ),
        ("SmtpLogin", a.smtp_login.into()),
        ("SmtpUsername", a.smtp_username.clone().into()),
        ("DraftsFolder", a.drafts_folder.clone().into()),
        ("TrashFolder", a.trash_folder.clone().into()),
        ("SentFolder", a.sent_folder.clone().into()),
        ("SaveSentCopy", a.save_sent_copy.into()),
        ("Folders", a.folders.clone().into()),
        ("FoldersSyncedAt", a.folders_synced_at.into()),
        ("HasPassword", has_password.into()),
        ("RestoreReset", a.restore_reset.into()),
    ]
}

/// The properties whose values differ between two snapshots.
pub fn changed_props(
    old: &[(&'static str, Variant<'static>)],
    new: Vec<(&'static str, Variant<'static>)>,
) -> HashMap<&'static str, Variant<'static>> {
    new.into_iter()
        .filter(|(name, value)| !old.iter().any(|(n, v)| n == name && v == value))
        .collect()
}

/// One step of a connection test as a dict: `name s`, `ok b`, `message s`,
/// `millis u`.
pub fn step_dict(step: &crate::probe::Step) -> Dict {
    let mut d = Dict::new();
    d.insert("name".into(), step.name.clone().into());
    d.insert("ok".into(), step.ok.into());
    d.insert("message".into(), step.message.clone().into());
    d.insert("millis".into(), step.millis.into());
    d
}
