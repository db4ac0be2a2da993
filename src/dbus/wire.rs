//! Wire types: `a{sv}` settings in, property values and step/message dicts
//! out. The only place that knows both the D-Bus types and the crate's.

use std::collections::HashMap;

use zbus::{OwnedVariant, Variant};

use crate::account::SettingValue;
use crate::error::{Error, Result};

/// A dict returned to callers (`a{sv}`).
pub type Dict = HashMap<String, Variant<'static>>;

/// Most keys a settings dict may have: every key once.
const MAX_KEYS: usize = crate::account::KEYS.len();
/// Longest settings or filter key; every known one is shorter.
pub const MAX_KEY: usize = 32;

/// Turn an `a{sv}` into typed settings. Keys are sorted, so that the first
/// bad key reported is the same on every call. A variant nested in a
/// variant (`v` in `v`) is unwrapped once: some bindings box values twice.
///
/// A dict with more entries than there are keys, or a key longer than any
/// known one, is refused before it is sorted or echoed in an error.
pub fn settings(dict: HashMap<String, OwnedVariant>) -> Result<Vec<(String, SettingValue)>> {
    values("settings", dict, MAX_KEYS)
}

/// [`settings`] for any `a{sv}` argument named `what` with at most `max`
/// known keys.
pub fn values(
    what: &str,
    dict: HashMap<String, OwnedVariant>,
    max: usize,
) -> Result<Vec<(String, SettingValue)>> {
    check_keys(what, dict.keys(), dict.len(), max)?;
    let mut out: Vec<(String, SettingValue)> = dict
        .into_iter()
        .map(|(k, v)| {
            let value = setting_value(&v);
            (k, value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The keys of a dict argument: at most `max` of them, each a short
/// printable name. `what` names the argument in the error.
pub fn check_keys<'a>(
    what: &str,
    keys: impl Iterator<Item = &'a String>,
    count: usize,
    max: usize,
) -> Result<()> {
    if count > max {
        return Err(Error::invalid(
            what,
            format!("{count} keys; there are only {max} known keys"),
        ));
    }
    // The smallest bad key, not the first: a dict's order is its hash
    // map's, which differs from call to call, and the same call must get
    // the same error.
    let bad = keys
        .filter(|k| k.len() > MAX_KEY || k.chars().any(crate::account::hidden_char))
        .min();
    if let Some(k) = bad {
        return Err(Error::invalid(
            what,
            format!(
                "unknown key ({}); keys are short names like `host`",
                crate::redact::quote(k)
            ),
        ));
    }
    Ok(())
}

/// A string argument: at most `max` bytes, refused by its size before it
/// is used.
pub fn check_len(key: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::invalid(
            key,
            format!("too long: {} bytes, at most {max}", value.len()),
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `settings` fuzz target: with two bad keys, the one
    /// named depended on the hash map's order, so the same call got
    /// different errors.
    #[test]
    fn the_same_bad_dict_always_gets_the_same_error() {
        let bad = ["\u{202e}x", &"k".repeat(MAX_KEY + 1), "a\u{7}"];
        let first = settings(dict(&bad)).unwrap_err().to_string();
        for _ in 0..50 {
            assert_eq!(settings(dict(&bad)).unwrap_err().to_string(), first);
        }
    }

    fn dict(keys: &[&str]) -> HashMap<String, OwnedVariant> {
        keys.iter()
            .map(|k| (k.to_string(), OwnedVariant::from(1u32)))
            .collect()
    }

    fn refused(d: HashMap<String, OwnedVariant>) -> String {
        match settings(d) {
            Err(Error::InvalidArgument { key, message }) => {
                assert_eq!(key, "settings");
                message
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn oversized_keys_are_refused_without_echo() {
        let long = "k".repeat(7 << 20);
        let msg = refused(dict(&[&long]));
        assert!(msg.len() < 200, "{msg}");
        assert!(msg.contains("7340032 bytes"), "{msg}");
        let msg = refused(dict(&["a\u{202E}b"]));
        assert!(msg.contains("unknown key"), "{msg}");
        let many: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(refused(dict(&many)).starts_with("100 keys"));
        // Known-looking keys pass here; the account checks them one by one.
        assert_eq!(settings(dict(&["port", "colour"])).unwrap().len(), 2);
    }

    #[test]
    fn string_arguments_are_bounded() {
        assert!(check_len("user", "alice", 64).is_ok());
        let e = check_len("user", &"x".repeat(65), 64).unwrap_err();
        assert_eq!(e.to_string(), "user: too long: 65 bytes, at most 64");
    }
}
