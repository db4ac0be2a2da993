//! Account settings arrive as an `a{sv}` from any admin's CRM frontend
//! (CreateAccount, TestSettings, Update). The fuzz bytes build such a dict
//! — known and unknown keys, every value type D-Bus allows in a variant
//! that a binding might send, nested variants — and run it through the
//! functions the D-Bus handlers call: `dbus::wire::settings`, then
//! `Account::create`, or `Account::updated` and `dbus::folders::check_known`
//! on a stored IMAP account. Properties beyond "no panic":
//! - validation is deterministic, including which error it reports;
//! - an accepted account, given back as settings, is accepted again as the
//!   very same account (validation and normalisation are idempotent: what
//!   the store holds would pass the checks it passed);
//! - an empty Update changes nothing.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use postfach::account::{Account, SettingValue, KEYS};
use postfach::dbus::{folders, wire};
use zbus::{OwnedVariant as OwnedValue, Variant as Value};

/// Values a real frontend sends, so that the fuzzer reaches the checks
/// behind the type and format tests.
const WORDS: &[&str] = &[
    "pop3",
    "imap",
    "pop3-office365",
    "imap-office365",
    "tls",
    "starttls",
    "none",
    "mail.example.com",
    "MAIL.Example.COM",
    "x@example.com",
    "crm@contoso.example",
    "INBOX.Trash",
    "Sent",
    "anna",
    "default",
    "",
    " ",
    "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
];

/// A cursor over the fuzz bytes; reads past the end give zeros.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn string(&mut self) -> String {
        let pick = self.byte();
        if pick < 128 {
            return WORDS[usize::from(pick) % WORDS.len()].to_string();
        }
        let len = usize::from(self.byte()).min(self.0.len());
        let (raw, rest) = self.0.split_at(len);
        self.0 = rest;
        let mut s = String::from_utf8_lossy(raw).into_owned();
        if pick & 1 == 1 {
            // Long values reach the length limits.
            s = s.repeat(usize::from(self.byte()) * 8 + 1);
        }
        s
    }

    fn key(&mut self) -> String {
        let pick = self.byte();
        if pick < 224 {
            KEYS[usize::from(pick) % KEYS.len()].to_string()
        } else {
            self.string()
        }
    }

    fn value(&mut self, depth: u8) -> Value<'static> {
        match self.byte() % 12 {
            0..=3 => Value::from(self.string()),
            4 => Value::from(self.byte() & 1 == 1),
            5 => Value::from(self.u32() as u16),
            6 => Value::from(self.u32() % 700_000),
            7 => Value::from(self.u32() as i32),
            8 => Value::from(u64::from(self.u32()) << 16),
            9 => Value::from(self.byte()),
            10 if depth < 4 => Value::Variant(Box::new(self.value(depth + 1))),
            _ => Value::from(vec![self.string(), self.string()]),
        }
    }

    fn dict(&mut self) -> HashMap<String, OwnedValue> {
        let n = self.byte() % 30;
        (0..n)
            .filter_map(|_| {
                let k = self.key();
                let v = OwnedValue::try_from(self.value(0)).ok()?;
                Some((k, v))
            })
            .collect()
    }
}

/// The account as settings, the way an admin would type it in again.
fn as_settings(a: &Account) -> Vec<(String, SettingValue)> {
    let s = |k: &str, v: &str| (k.to_string(), SettingValue::Str(v.to_string()));
    let b = |k: &str, v: bool| (k.to_string(), SettingValue::Bool(v));
    let q = |k: &str, v: u16| (k.to_string(), SettingValue::U16(v));
    vec![
        s("tenant", &a.tenant),
        s("name", &a.name),
        s("address", &a.address),
        s("kind", a.kind.as_str()),
        s("host", &a.host),
        q("port", a.port),
        s("encryption", a.encryption.as_str()),
        s("username", &a.username),
        s("private_owner", &a.private_owner),
        b("delete_on_server", a.delete_on_server),
        (
            "poll_interval".to_string(),
            SettingValue::U32(a.poll_interval),
        ),
        s("smtp_host", &a.smtp_host),
        q("smtp_port", a.smtp_port),
        s("smtp_encryption", a.smtp_encryption.as_str()),
        b("smtp_login", a.smtp_login),
        s("smtp_username", &a.smtp_username),
        s("drafts_folder", &a.drafts_folder),
        s("trash_folder", &a.trash_folder),
        s("sent_folder", &a.sent_folder),
        b("save_sent_copy", a.save_sent_copy),
        s("tls_pin", &a.tls_pin),
        b("allow_plaintext_auth", a.allow_plaintext_auth),
    ]
}

fn revalidates(a: &Account) {
    let again = Account::create(a.id.clone(), &as_settings(a));
    match again {
        Ok((mut b, _)) => {
            // What no settings key sets: the daemon's own record.
            b.folders = a.folders.clone();
            b.folders_synced_at = a.folders_synced_at;
            b.restore_reset = a.restore_reset;
            assert_eq!(&b, a, "an accepted account re-validates unchanged")
        }
        Err(e) => panic!("an accepted account {a:?} is refused when given again: {e}"),
    }
    let (same, _) = a.updated(&[]).expect("an empty update of a valid account");
    assert_eq!(&same, a, "an empty update changes nothing");
}

fn stored() -> Account {
    let s = |k: &str, v: &str| (k.to_string(), SettingValue::Str(v.to_string()));
    let (mut a, _) = Account::create(
        "a1".into(),
        &[
            s("kind", "imap"),
            s("host", "imap.example.com"),
            s("address", "crm@example.com"),
            s("drafts_folder", "Drafts"),
        ],
    )
    .expect("the stored account is valid");
    a.folders = vec!["INBOX".into(), "Drafts".into(), "Sent".into()];
    a
}

fn outcome<T: std::fmt::Debug>(r: &postfach::error::Result<T>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("err {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes(data);
    let dict = bytes.dict();
    let copy: HashMap<String, OwnedValue> = dict
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.try_clone().ok()?)))
        .collect();
    let first = wire::settings(dict);
    assert_eq!(
        outcome(&first),
        outcome(&wire::settings(copy)),
        "turning a dict into settings is deterministic"
    );
    let Ok(settings) = first else {
        return;
    };
    let created = Account::create("a9".into(), &settings);
    assert_eq!(
        outcome(&created),
        outcome(&Account::create("a9".into(), &settings))
    );
    if let Ok((a, _)) = &created {
        revalidates(a);
    }
    let cur = stored();
    let updated = cur.updated(&settings);
    assert_eq!(outcome(&updated), outcome(&cur.updated(&settings)));
    if let Ok((next, _)) = &updated {
        if folders::check_known(&cur, &settings).is_ok() {
            revalidates(next);
        }
    }
});
