//! The sweep deletes only what the database proves dead; snapshots keep
//! the files of mails deleted under them.

use redb::ReadableTableMetadata;

use crate::store::blobs::tests::{big_mail, blob_dir, blob_mail, committed, files};
use crate::store::messages::tests::mail;
use crate::store::schema::BLOB_TRASH;
use crate::store::tests::pop3;
use crate::store::{Store, BLOB_MIN};

const SIZE: usize = BLOB_MIN as usize + 10;

#[test]
fn a_file_no_failed_transaction_explains_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = blob_dir(dir.path());
    let (small, big) = {
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        let small = store
            .commit_batch(&a, vec![mail("pop3:s", "s")], &crate::mime::summarize)
            .unwrap();
        (small[0], committed(&store, &a, 1, SIZE)[0])
    };
    // A file under the id of a small mail (no blob row, below the
    // counter: e.g. mail of another copy of the store), and one above the
    // counter (a batch that never committed).
    std::fs::copy(blobs.join(big.to_string()), blobs.join(small.to_string())).unwrap();
    std::fs::write(blobs.join((big + 1).to_string()), b"uncommitted").unwrap();

    let store = Store::open(dir.path()).unwrap();
    let names = files(&blobs);
    assert!(names.contains(&small.to_string()), "{names:?}");
    assert!(!names.contains(&(big + 1).to_string()), "{names:?}");
    assert_eq!(store.raw(big).unwrap().unwrap(), big_mail("b", 0, SIZE));
}

#[test]
fn a_deletion_that_did_not_unlink_is_finished_by_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = |id: u64| blob_dir(dir.path()).join(id.to_string());
    let ids = {
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        let ids = committed(&store, &a, 2, SIZE);
        // A pin holds the unlink back, as a crash after the commit would.
        let pin = store.blobs.pin();
        store.delete_message(ids[0]).unwrap().unwrap();
        drop(pin);
        assert!(path(ids[0]).exists());
        ids
    };
    let store = Store::open(dir.path()).unwrap();
    assert!(!path(ids[0]).exists(), "the deleted mail's file stayed");
    assert!(path(ids[1]).exists());
    let tx = store.read().unwrap();
    assert_eq!(tx.open_table(BLOB_TRASH).unwrap().len().unwrap(), 0);
}

#[test]
fn a_snapshot_keeps_what_it_saw_while_mail_comes_and_goes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_account(|id| pop3(id, None)).unwrap();
    let ids = committed(&store, &a, 2, SIZE);
    let snapshot = store.snapshot().unwrap();

    store.delete_message(ids[0]).unwrap().unwrap();
    let later = blob_mail(&store, "pop3:later", &big_mail("later", 9, SIZE));
    let later = store
        .commit_batch(&a, vec![later], &crate::mime::summarize)
        .unwrap()[0];
    let seen = snapshot.blobs().unwrap();
    let seen_ids: Vec<u64> = seen.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(seen_ids, ids);
    for (id, len, file) in &seen {
        let bytes = std::fs::read(file).unwrap();
        assert_eq!(bytes.len() as u64, *len, "file of {id}");
    }
    assert!(store.raw(ids[0]).unwrap().is_none());
    assert!(store.raw(later).unwrap().is_some());

    // After the snapshot, the next deletion drains the trash.
    drop(snapshot);
    store.delete_message(ids[1]).unwrap().unwrap();
    let names = files(&blob_dir(dir.path()));
    assert_eq!(names, vec![later.to_string(), "tmp".into()]);
}
