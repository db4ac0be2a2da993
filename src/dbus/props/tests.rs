use super::*;
use crate::account::{Encryption, Kind, SettingValue};
use crate::scheduler::State;

fn account() -> Account {
    let s = |k: &str, v: &str| (k.to_string(), SettingValue::Str(v.into()));
    let (a, _) = Account::create(
        "a1".into(),
        &[
            s("kind", "imap"),
            s("host", "imap.example.test"),
            s("address", "info@example.test"),
        ],
    )
    .unwrap();
    a
}

/// An account that differs from [`account`] in every field.
fn other() -> Account {
    Account {
        id: "b2".into(),
        tenant: "t2".into(),
        name: "Other".into(),
        address: "other@example.test".into(),
        kind: Kind::Pop3,
        host: "pop.example.test".into(),
        port: 1995,
        encryption: Encryption::Starttls,
        username: "other-login".into(),
        private_owner: "bob".into(),
        delete_on_server: true,
        poll_interval: 60,
        smtp_host: "smtp.example.test".into(),
        smtp_port: 2587,
        smtp_encryption: Encryption::None,
        smtp_login: false,
        smtp_username: "smtp-login".into(),
        drafts_folder: "Drafts".into(),
        trash_folder: "Trash".into(),
        sent_folder: "Sent".into(),
        save_sent_copy: true,
        tls_pin: String::new(),
        allow_plaintext_auth: true,
        restore_reset: true,
        folders: vec!["INBOX".into()],
        folders_synced_at: 7,
    }
}

#[test]
fn names_are_sorted_and_unique() {
    let names: Vec<&str> = PROPS.iter().map(|p| p.name).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(names, sorted);
    assert_eq!(find("Authorized").map(|p| p.name), Some("Authorized"));
    assert!(find("Password").is_none());
}

#[test]
fn every_value_has_its_declared_type() {
    let a = account();
    let status = Status::default();
    let v = View {
        account: &a,
        has_password: true,
        status: &status,
    };
    for p in PROPS {
        assert_eq!(
            p.value(&v).value_signature().to_string(),
            p.signature,
            "{}",
            p.name
        );
    }
}

#[test]
fn a_change_of_any_property_is_announced() {
    let (a, b) = (account(), other());
    let idle = Status::default();
    let busy = Status {
        state: State::Error,
        last_error: "refused".into(),
        last_fetch_at: 9,
        progress: (1, 2),
        authorized: true,
    };
    let old = View {
        account: &a,
        has_password: false,
        status: &idle,
    };
    let new = View {
        account: &b,
        has_password: true,
        status: &busy,
    };
    let c = changes(&old, &new);
    let mut named: Vec<&str> = c.invalidated.clone();
    named.extend(c.values.keys());
    named.sort_unstable();
    let all: Vec<&str> = PROPS.iter().map(|p| p.name).collect();
    assert_eq!(named, all, "every property changed, every one is named");
    // Public values travel; everything private is named only.
    let mut public: Vec<&str> = c.values.keys().copied().collect();
    public.sort_unstable();
    assert_eq!(public, ["Id", "LastFetchAt", "Progress", "State"]);
    assert!(changes(&old, &old).is_empty());
}

#[test]
fn authorized_follows_the_password() {
    let a = account();
    let status = Status::default();
    let without = View {
        account: &a,
        has_password: false,
        status: &status,
    };
    let with = View {
        account: &a,
        has_password: true,
        status: &status,
    };
    let c = changes(&without, &with);
    assert_eq!(c.invalidated, ["Authorized", "HasPassword"]);
}

#[test]
fn office365_authorized_follows_the_tokens_not_a_password() {
    let mut a = account();
    a.kind = Kind::Pop3Office365;
    let signed_out = Status::default();
    let signed_in = Status {
        authorized: true,
        ..Status::default()
    };
    let view = |status| View {
        account: &a,
        has_password: true,
        status,
    };
    let authorized = find("Authorized").unwrap();
    assert_eq!(authorized.value(&view(&signed_out)), Variant::from(false));
    assert_eq!(authorized.value(&view(&signed_in)), Variant::from(true));
    let c = status_changes(&view(&signed_out), &view(&signed_in));
    assert_eq!(c.invalidated, ["Authorized"], "named, never valued");
    assert!(c.values.is_empty());
}

#[test]
fn signals_show_public_values_only() {
    let a = other();
    let status = Status {
        last_error: "NO \"other-login\" rejected".into(),
        ..Status::default()
    };
    let v = View {
        account: &a,
        has_password: true,
        status: &status,
    };
    let public = all(&v, true);
    let mut keys: Vec<&str> = public.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["Id", "LastFetchAt", "Progress", "State"]);
    assert_eq!(all(&v, false).len(), PROPS.len());
}

#[test]
fn introspection_lists_every_property() {
    let mut xml = String::new();
    introspect(&mut xml, 4).unwrap();
    for p in PROPS {
        let line = format!("    <property name=\"{}\" type=\"{}\"", p.name, p.signature);
        assert!(xml.contains(&line), "{}", p.name);
    }
    assert_eq!(
        xml.matches("value=\"invalidates\"").count(),
        PROPS
            .iter()
            .filter(|p| p.signal == Signal::Invalidate)
            .count()
    );
}

#[test]
fn status_properties_are_those_read_from_the_status() {
    let mut a = account();
    a.kind = Kind::ImapOffice365;
    let idle = Status::default();
    let busy = Status {
        state: State::Fetching,
        last_error: "x".into(),
        last_fetch_at: 1,
        progress: (1, 1),
        authorized: true,
    };
    let view = |status| View {
        account: &a,
        has_password: true,
        status,
    };
    let all = changes(&view(&idle), &view(&busy));
    let mut named: Vec<&str> = all.invalidated.clone();
    named.extend(all.values.keys());
    named.sort_unstable();
    assert_eq!(named, STATUS);
    let fast = status_changes(&view(&idle), &view(&busy));
    assert_eq!(fast.values, all.values);
    assert_eq!(fast.invalidated, all.invalidated);
}
