//! What a start refuses, against real files: a missing or empty store
//! beside an installation, a damaged page, a bad key file — each without
//! a byte or an mtime changed — and the modes of what it creates.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::SystemTime;

use crate::error::Error;
use crate::store::blobs::tests::{big_mail, blob_dir, committed, files};
use crate::store::messages::tests::mail;
use crate::store::tests::pop3;
use crate::store::{Store, BLOB_MIN, DB_FILE};

/// The bytes and the mtime of a file, or None if it does not exist.
fn fingerprint(path: &Path) -> Option<(Vec<u8>, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((std::fs::read(path).unwrap(), meta.modified().unwrap()))
}

/// A store with a password, small mails and two blob mails; returns the
/// ids of the blob mails.
fn installation(dir: &Path) -> Vec<u64> {
    let store = Store::open(dir).unwrap();
    let a = store
        .create_account(|id| pop3(id, Some("hunter2")))
        .unwrap();
    let small = (0..5).map(|i| mail(&format!("pop3:s{i}"), &format!("small {i}")));
    store
        .commit_batch(&a, small.collect(), &crate::mime::summarize)
        .unwrap();
    committed(&store, &a, 2, BLOB_MIN as usize + 1000)
}

fn storage_message(e: Error) -> String {
    match e {
        Error::Storage { message, .. } => message,
        other => panic!("expected a Storage error, got {other:?}"),
    }
}

#[test]
fn a_missing_or_empty_store_beside_an_installation_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let blob_ids = installation(dir.path());
    let db = dir.path().join(DB_FILE);
    let blobs_before = files(&blob_dir(dir.path()));
    assert!(blob_ids
        .iter()
        .all(|id| blobs_before.contains(&id.to_string())));

    std::fs::remove_file(&db).unwrap();
    let msg = storage_message(Store::open(dir.path()).unwrap_err());
    assert!(
        msg.contains("secret.key") && msg.contains("blobs/") && msg.contains("missing"),
        "{msg}"
    );
    assert!(!db.exists(), "a store file was created");
    assert_eq!(files(&blob_dir(dir.path())), blobs_before);

    std::fs::write(&db, b"").unwrap();
    let before = fingerprint(&db);
    let msg = storage_message(Store::open(dir.path()).unwrap_err());
    assert!(msg.contains("empty"), "{msg}");
    assert!(fingerprint(&db) == before, "the empty file was written");
    assert_eq!(files(&blob_dir(dir.path())), blobs_before);
}

#[test]
fn an_empty_store_file_of_a_first_start_that_crashed_is_initialised() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), b"").unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.accounts().unwrap(), vec![]);
}

#[test]
fn a_damaged_page_is_refused_without_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let marker = "unique-marker-7f3a91";
    {
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        store
            .commit_batch(&a, vec![mail("pop3:m", marker)], &crate::mime::summarize)
            .unwrap();
    }
    let db = dir.path().join(DB_FILE);
    let mut bytes = std::fs::read(&db).unwrap();
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
        .expect("the marker is in the file");
    bytes[at] ^= 0x20;
    std::fs::write(&db, &bytes).unwrap();
    let before = fingerprint(&db);

    let msg = storage_message(Store::open(dir.path()).unwrap_err());
    assert!(msg.contains(DB_FILE) && msg.contains("untouched"), "{msg}");
    assert!(fingerprint(&db) == before, "the damaged file was written");
}

#[test]
fn the_key_file_is_checked_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    installation(dir.path());
    let key = dir.path().join(crate::store::secret::KEY_FILE);
    std::fs::write(&key, b"short").unwrap();
    let db = dir.path().join(DB_FILE);
    let before = fingerprint(&db);
    let msg = storage_message(Store::open(dir.path()).unwrap_err());
    assert!(msg.contains("secret.key"), "{msg}");
    assert!(fingerprint(&db) == before, "the store was written");
}

#[test]
fn a_replaced_key_file_still_opens_and_says_so_per_secret() {
    let dir = tempfile::tempdir().unwrap();
    installation(dir.path());
    let key = dir.path().join(crate::store::secret::KEY_FILE);
    std::fs::remove_file(&key).unwrap();
    std::fs::write(&key, [7u8; 32]).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = &store.accounts().unwrap()[0];
    let err = store
        .secret(&a.id, crate::store::SecretKind::Password)
        .unwrap_err();
    assert!(err.to_string().contains("set the password again"), "{err}");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn new_files_are_private_and_loose_modes_are_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let blob_ids = installation(&state);
    let db = state.join(DB_FILE);
    let key = state.join(crate::store::secret::KEY_FILE);
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&blob_dir(&state)), 0o700);
    for id in &blob_ids {
        assert_eq!(mode(&blob_dir(&state).join(id.to_string())), 0o600);
    }
    for (path, loose) in [(&state, 0o755), (&db, 0o644), (&key, 0o640)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(loose)).unwrap();
    }
    let store = Store::open(&state).unwrap();
    assert_eq!((mode(&state), mode(&db), mode(&key)), (0o700, 0o600, 0o600));
    drop(store);
    // The mail is what it was.
    let store = Store::open(&state).unwrap();
    let raw = store.raw(blob_ids[0]).unwrap().unwrap();
    assert_eq!(raw, big_mail("b", 0, BLOB_MIN as usize + 1000));
}
