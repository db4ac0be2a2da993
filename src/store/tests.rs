use super::*;
use crate::account::{Account, SecretChanges, SettingValue};
use crate::store::schema::{KEY_VERSION, SCHEMA_VERSION};

/// A valid POP3 account built the way CreateAccount builds it.
pub(crate) fn pop3(id: String, password: Option<&str>) -> Result<(Account, SecretChanges)> {
    let mut s = vec![
        ("kind".to_string(), SettingValue::Str("pop3".into())),
        ("host".to_string(), SettingValue::Str("127.0.0.1".into())),
        (
            "address".to_string(),
            SettingValue::Str("info@example.org".into()),
        ),
        ("tenant".to_string(), SettingValue::Str("t1".into())),
    ];
    if let Some(p) = password {
        s.push(("password".to_string(), SettingValue::Str(p.into())));
    }
    Account::create(id, &s)
}

#[test]
fn store_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
    fn assert_send<T: Send>() {}
    assert_send::<ListQuery>();
}

#[test]
fn reopen_keeps_installation_id_and_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let (id, acct) = {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.installation_id().len(), 32);
        assert!(store
            .installation_id()
            .bytes()
            .all(|b| b.is_ascii_hexdigit()));
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        (store.installation_id().to_string(), a)
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.installation_id(), id);
    assert_eq!(store.accounts().unwrap(), vec![acct]);
    assert_eq!(store.path(), dir.path().join(DB_FILE));
}

#[test]
fn second_open_is_busy_while_the_first_lives() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    let pid = std::process::id().to_string();
    match &err {
        Error::Busy(m) => assert!(m.contains(&pid), "{m}"),
        other => panic!("expected Busy, got {other:?}"),
    }
    drop(first);
    Store::open(dir.path()).unwrap();
}

#[test]
fn state_dir_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("state");
    Store::open(&dir).unwrap();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn garbage_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, Error::Storage { message: m, .. } if m.contains(DB_FILE)),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
    // Magic bytes followed by garbage: redb itself refuses it.
    let mut fake = REDB_MAGIC.to_vec();
    fake.extend_from_slice(&garbage);
    std::fs::write(&path, &fake).unwrap();
    assert!(matches!(
        Store::open(dir.path()),
        Err(Error::Storage { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), fake);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    {
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        let tx = write_txn(&db).unwrap();
        schema::put_u64(&tx, KEY_VERSION, SCHEMA_VERSION + 1).unwrap();
        tx.commit().unwrap();
    }
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, Error::Storage { message: m, .. } if m.contains("newer") && m.contains(DB_FILE)),
        "{err:?}"
    );
}

#[test]
fn foreign_redb_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let tx = db.begin_write().unwrap();
        let def: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("other");
        tx.open_table(def).unwrap().insert("x", 1).unwrap();
        tx.commit().unwrap();
    }
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, Error::Storage { message: m, .. } if m.contains("not a postfach store")),
        "{err:?}"
    );
}
