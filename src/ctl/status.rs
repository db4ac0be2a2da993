//! `postfachctl status`: the installation at a glance (`Manager.Status`,
//! see `crate::dbus::status` for the keys).
//!
//! Text output is one `label: value` line per figure so that `grep` and
//! `awk` can read it; every account state and outbox state is printed,
//! zeros included, in a fixed order. `--json` gives the same figures as
//! one object.

use std::collections::HashMap;

use super::commands::Ctl;
use super::CtlError;
use crate::dbus::proxy::{Dict, ManagerProxy};

/// Account states in the order they are printed (DESIGN "State s").
const STATES: [&str; 5] = [
    "idle",
    "fetching",
    "error",
    "needs-authorization",
    "disabled",
];
/// Outbox states in the order they are printed.
const OUTBOX: [&str; 3] = ["queued", "sending", "failed"];

/// The reply, read leniently: a key a newer or older daemon lacks shows 0.
#[derive(Debug, Default, PartialEq, Eq)]
struct Figures {
    version: String,
    installation_id: String,
    accounts: HashMap<String, u64>,
    outbox: HashMap<String, u64>,
    store_bytes: u64,
}

impl Figures {
    fn from_reply(d: &Dict) -> Figures {
        fn get<T: TryFrom<zbus::OwnedVariant>>(d: &Dict, k: &str) -> Option<T> {
            d.get(k)
                .and_then(|v| v.try_clone().ok())
                .and_then(|v| T::try_from(v).ok())
        }
        Figures {
            version: get(d, "version").unwrap_or_default(),
            installation_id: get(d, "installation_id").unwrap_or_default(),
            accounts: get(d, "accounts").unwrap_or_default(),
            outbox: get(d, "outbox").unwrap_or_default(),
            store_bytes: get(d, "store_bytes").unwrap_or_default(),
        }
    }

    fn count(map: &HashMap<String, u64>, k: &str) -> u64 {
        map.get(k).copied().unwrap_or(0)
    }

    fn text(&self) -> String {
        let total: u64 = self.accounts.values().sum();
        let states: Vec<String> = STATES
            .iter()
            .map(|s| format!("{s} {}", Self::count(&self.accounts, s)))
            .collect();
        let outbox: Vec<String> = OUTBOX
            .iter()
            .map(|s| format!("{s} {}", Self::count(&self.outbox, s)))
            .collect();
        format!(
            "version: {}\ninstallation id: {}\naccounts: {total} ({})\noutbox: {}\nstore: {} bytes ({})\n",
            self.version,
            self.installation_id,
            states.join(", "),
            outbox.join(", "),
            self.store_bytes,
            human(self.store_bytes),
        )
    }

    fn json(&self) -> serde_json::Value {
        let pick = |map: &HashMap<String, u64>, keys: &[&str]| {
            keys.iter()
                .map(|k| (k.to_string(), Self::count(map, k).into()))
                .collect::<serde_json::Map<String, serde_json::Value>>()
        };
        serde_json::json!({
            "version": self.version,
            "installation_id": self.installation_id,
            "accounts": pick(&self.accounts, &STATES),
            "outbox": pick(&self.outbox, &OUTBOX),
            "store_bytes": self.store_bytes,
        })
    }
}

/// `1.5 MiB`-style size for people; the exact bytes are printed beside it.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

impl Ctl {
    pub async fn status(&self) -> Result<(), CtlError> {
        let manager = ManagerProxy::new(&self.conn).await?;
        let f = Figures::from_reply(&manager.status().await?);
        if self.json {
            println!("{}", f.json());
        } else {
            print!("{}", f.text());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lists_every_state_with_zeros() {
        let f = Figures {
            version: "1.2.3".into(),
            installation_id: "abc".into(),
            accounts: [("idle".to_string(), 2), ("error".to_string(), 1)].into(),
            outbox: [("queued".to_string(), 1)].into(),
            store_bytes: 1536,
        };
        assert_eq!(
            f.text(),
            "version: 1.2.3\ninstallation id: abc\n\
             accounts: 3 (idle 2, fetching 0, error 1, needs-authorization 0, disabled 0)\n\
             outbox: queued 1, sending 0, failed 0\nstore: 1536 bytes (1.5 KiB)\n"
        );
        assert_eq!(f.json()["outbox"]["failed"], 0);
        assert_eq!(f.json()["accounts"]["idle"], 2);
        assert_eq!(human(10), "10 B");
    }
}
