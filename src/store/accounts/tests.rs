//! Accounts and their secrets in the store: ids, creation order, writes
//! that fail leave nothing, secrets never in clear, deletion.

use super::*;
use crate::account::SettingValue;
use crate::store::tests::pop3;
use crate::store::DB_FILE;

#[test]
fn ids_are_short_unique_and_listed_in_creation_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ids: Vec<String> = (0..11)
        .map(|_| store.create_account(|id| pop3(id, None)).unwrap().id)
        .collect();
    assert_eq!(ids[0], "a1");
    assert_eq!(ids[10], "a11");
    assert!(ids
        .iter()
        .all(|i| i.bytes().all(|b| b.is_ascii_alphanumeric())));
    let listed: Vec<String> = store
        .accounts()
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(listed, ids);
    // Ids are never reused after a delete.
    store.delete_account("a11").unwrap();
    assert_eq!(store.create_account(|id| pop3(id, None)).unwrap().id, "a12");
}

#[test]
fn failing_build_or_change_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = store
        .create_account(|_| Err(Error::invalid("host", "bad")))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }));
    assert!(store.accounts().unwrap().is_empty());

    let a = store.create_account(|id| pop3(id, Some("old"))).unwrap();
    let err = store
        .update_account(&a.id, |cur| {
            let bad = [("port".to_string(), SettingValue::U16(0))];
            cur.updated(&bad)
        })
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { ref key, .. } if key == "port"));
    assert_eq!(store.account(&a.id).unwrap(), Some(a.clone()));
    assert_eq!(
        store
            .secret(&a.id, SecretKind::Password)
            .unwrap()
            .unwrap()
            .expose(),
        "old"
    );

    let changes = [
        ("name".to_string(), SettingValue::Str("Vertrieb".into())),
        ("password".to_string(), SettingValue::Str("new".into())),
    ];
    let b = store
        .update_account(&a.id, |cur| cur.updated(&changes))
        .unwrap();
    assert_eq!(b.name, "Vertrieb");
    assert_eq!(store.account(&a.id).unwrap(), Some(b));
    assert_eq!(
        store
            .secret(&a.id, SecretKind::Password)
            .unwrap()
            .unwrap()
            .expose(),
        "new"
    );
    assert!(matches!(
        store.update_account("a99", |cur| Ok((cur.clone(), SecretChanges::default()))),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn secrets_are_not_in_the_store_file_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let password = "Sommer2024!geheimes-Passwort";
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_account(|id| pop3(id, Some(password))).unwrap();
    store
        .set_secret(
            &a.id,
            SecretKind::OAuthTokens,
            Some("refresh-token-XYZ-123456"),
        )
        .unwrap();
    assert!(store.has_secret(&a.id, SecretKind::Password).unwrap());
    assert!(!store.has_secret(&a.id, SecretKind::SmtpPassword).unwrap());
    let s = store.secret(&a.id, SecretKind::Password).unwrap().unwrap();
    assert_eq!(s.expose(), password);
    assert!(!format!("{s:?}").contains(password));
    drop(store);
    let file = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    for needle in [password.as_bytes(), b"refresh-token-XYZ-123456"] {
        assert!(!file.windows(needle.len()).any(|w| w == needle));
    }
    // Still readable after a restart.
    let store = Store::open(dir.path()).unwrap();
    let s = store.secret(&a.id, SecretKind::Password).unwrap().unwrap();
    assert_eq!(s.expose(), password);
    store.set_secret(&a.id, SecretKind::Password, None).unwrap();
    assert!(store.secret(&a.id, SecretKind::Password).unwrap().is_none());
    assert!(matches!(
        store.set_secret("a99", SecretKind::Password, Some("x")),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn missing_key_file_makes_secrets_unreadable_but_the_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = Store::open(dir.path()).unwrap();
        store.create_account(|id| pop3(id, Some("pw1"))).unwrap().id
    };
    std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Unreadable counts as none: the password must be entered again.
    assert!(!store.has_secret(&id, SecretKind::Password).unwrap());
    let err = store.secret(&id, SecretKind::Password).unwrap_err();
    assert!(
        matches!(&err, Error::Storage { message: m, .. } if m.contains("missing")),
        "{err:?}"
    );
    // Setting it again works under a new key.
    store
        .set_secret(&id, SecretKind::Password, Some("pw2"))
        .unwrap();
    let s = store.secret(&id, SecretKind::Password).unwrap().unwrap();
    assert_eq!(s.expose(), "pw2");
    assert!(store.has_secret(&id, SecretKind::Password).unwrap());
    assert!(dir.path().join(KEY_FILE).exists());
}

#[test]
fn delete_account_removes_account_secrets_and_sync_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_account(|id| pop3(id, Some("pw"))).unwrap();
    let b = store.create_account(|id| pop3(id, Some("pw-b"))).unwrap();
    store
        .set_secret(&a.id, SecretKind::SmtpPassword, Some("smtp"))
        .unwrap();
    store.delete_account(&a.id).unwrap();
    assert!(store.account(&a.id).unwrap().is_none());
    for kind in SecretKind::ALL {
        assert!(!store.has_secret(&a.id, kind).unwrap());
    }
    assert!(store.has_secret(&b.id, SecretKind::Password).unwrap());
    assert!(matches!(
        store.delete_account(&a.id),
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.accounts().unwrap(), vec![b]);
}
