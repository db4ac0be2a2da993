//! The blob store against the real file system: commit, read, dedup,
//! delete, clean-up at open, migration from schema 3.

use std::path::{Path, PathBuf};

use redb::{Database, TableHandle};

use super::*;
use crate::store::messages::tests::{inbox, mail};
use crate::store::schema::{self, KEY_VERSION, SCHEMA_VERSION};
use crate::store::tests::pop3;
use crate::store::{sha256_hex, write_txn, NewMail, DB_FILE};

/// A mail of about `size` bytes: headers, then pseudo-random base64-like
/// CRLF lines (different per `seed`).
pub(crate) fn big_mail(subject: &str, seed: u32, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: a@example.org\r\nSubject: {subject}\r\nContent-Type: application/octet-stream\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    while m.len() < size {
        for _ in 0..76 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            m.push(alphabet[(x % 64) as usize]);
        }
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// Streams `raw` into a blob in uneven pieces, as a fetcher would.
pub(crate) fn stage(store: &Store, raw: &[u8]) -> StagedBlob {
    let mut w = store.blob_writer().unwrap();
    for piece in raw.chunks(300_001) {
        w.write(piece).unwrap();
    }
    assert_eq!(w.len(), raw.len() as u64);
    w.finish().unwrap()
}

pub(crate) fn blob_mail(store: &Store, sid: &str, raw: &[u8]) -> NewMail {
    NewMail {
        server_id: sid.into(),
        raw: Raw::Blob(stage(store, raw)),
        received: 1_700_000_000,
    }
}

/// `n` blob mails of about `size` bytes, committed in one batch.
pub(crate) fn committed(
    store: &Store,
    a: &crate::account::Account,
    n: u32,
    size: usize,
) -> Vec<u64> {
    let batch = (0..n)
        .map(|i| blob_mail(store, &format!("pop3:{i}"), &big_mail("b", i, size)))
        .collect();
    store
        .commit_batch(a, batch, &crate::mime::summarize)
        .unwrap()
}

pub(crate) fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub(crate) fn blob_dir(state: &Path) -> PathBuf {
    state.join(BLOB_DIR)
}

#[test]
fn a_blob_mail_is_stored_byte_exact_summarised_and_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let raw = big_mail("big one", 1, 3 * 1024 * 1024 + 17);
    let (a, id) = {
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        let staged = stage(&store, &raw);
        assert_eq!(staged.sha256(), sha256_hex(&raw));
        assert_eq!(staged.head(), &raw[..HEAD_BYTES]);
        let batch = vec![
            mail("pop3:small", "small"),
            NewMail {
                server_id: "pop3:big".into(),
                raw: Raw::Blob(staged),
                received: 7,
            },
        ];
        let ids = store
            .commit_batch(&a, batch, &crate::mime::summarize)
            .unwrap();
        assert_eq!(ids.len(), 2);
        (a, ids[1])
    };
    let store = Store::open(dir.path()).unwrap();
    assert!(store.raw(id).unwrap().unwrap() == raw, "bytes differ");
    let m = store.message(id).unwrap().unwrap();
    assert_eq!(m.subject, "big one");
    assert_eq!(m.from, "a@example.org");
    assert!(m.has_attachments);
    assert_eq!(
        (m.size, m.keys.raw),
        (
            raw.len() as u64,
            crate::store::keytags::tag_of(&sha256_hex(&raw))
        )
    );
    assert_eq!(
        files(&blob_dir(dir.path())),
        vec![id.to_string(), "tmp".into()]
    );
    assert!(files(&blob_dir(dir.path()).join("tmp")).is_empty());
    // Not a redb value: the store file stays far below the mail's size.
    let db_len = std::fs::metadata(dir.path().join(DB_FILE)).unwrap().len();
    assert!(db_len < raw.len() as u64, "store file {db_len} bytes");

    // The same content under another server id (a UIDVALIDITY change) only
    // maps the id; the staged copy is removed.
    let again = store
        .commit_batch(
            &a,
            vec![blob_mail(&store, "pop3:again", &raw)],
            &crate::mime::summarize,
        )
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(
        store.has_content(&a.id, &sha256_hex(&raw)).unwrap(),
        Some(id)
    );
    assert_eq!(
        files(&blob_dir(dir.path())),
        vec![id.to_string(), "tmp".into()]
    );
    assert!(files(&blob_dir(dir.path()).join("tmp")).is_empty());
    assert_eq!(store.list_messages(&inbox()).unwrap().1, 2);
}

#[test]
fn deleting_a_message_or_its_account_removes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_account(|id| pop3(id, None)).unwrap();
    let ids = committed(&store, &a, 3, 1_200_000);
    let path = |id: u64| blob_dir(dir.path()).join(id.to_string());
    assert!(ids.iter().all(|id| path(*id).exists()));

    store.delete_message(ids[0]).unwrap().unwrap();
    assert!(!path(ids[0]).exists());
    assert!(store.raw(ids[0]).unwrap().is_none());

    // Account deletion: the assigned mail and its file stay.
    store.set_contact(ids[1], "K-1").unwrap();
    store.delete_account(&a.id).unwrap();
    assert!(path(ids[1]).exists());
    assert!(store.raw(ids[1]).unwrap().is_some());
    assert!(!path(ids[2]).exists());
    assert!(store.raw(ids[2]).unwrap().is_none());
}

#[test]
fn open_removes_staged_and_orphaned_files_and_keeps_committed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let raw = big_mail("kept", 3, 2_000_000);
    let id = {
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        let ids = store
            .commit_batch(
                &a,
                vec![blob_mail(&store, "pop3:1", &raw)],
                &crate::mime::summarize,
            )
            .unwrap();
        // A crash mid-download and one between rename and commit.
        let mut w = store.blob_writer().unwrap();
        w.write(b"half a mail").unwrap();
        std::mem::forget(w);
        std::fs::write(blob_dir(dir.path()).join("77"), b"uncommitted").unwrap();
        std::fs::write(blob_dir(dir.path()).join("not-a-blob"), b"foreign").unwrap();
        ids[0]
    };
    assert_eq!(files(&blob_dir(dir.path()).join("tmp")).len(), 1);
    let store = Store::open(dir.path()).unwrap();
    assert!(files(&blob_dir(dir.path()).join("tmp")).is_empty());
    assert_eq!(
        files(&blob_dir(dir.path())),
        vec![id.to_string(), "not-a-blob".into(), "tmp".into()]
    );
    assert!(store.raw(id).unwrap().unwrap() == raw);
}

#[test]
fn unfinished_and_uncommitted_blobs_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let tmp = blob_dir(dir.path()).join("tmp");
    let mut w = store.blob_writer().unwrap();
    w.write(b"abc").unwrap();
    assert_eq!(files(&tmp).len(), 1);
    drop(w);
    assert!(files(&tmp).is_empty());
    // A batch for a deleted account commits nothing and keeps no file.
    let a = store.create_account(|id| pop3(id, None)).unwrap();
    store.delete_account(&a.id).unwrap();
    let m = blob_mail(&store, "pop3:1", &big_mail("x", 4, 1_100_000));
    let err = store
        .commit_batch(&a, vec![m], &crate::mime::summarize)
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(files(&blob_dir(dir.path())), vec!["tmp".to_string()]);
    assert!(files(&tmp).is_empty());
}

#[test]
fn a_missing_or_truncated_file_is_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_account(|id| pop3(id, None)).unwrap();
    let ids = committed(&store, &a, 2, 1_100_000);
    std::fs::remove_file(blob_dir(dir.path()).join(ids[0].to_string())).unwrap();
    let err = store.raw(ids[0]).unwrap_err();
    assert!(
        matches!(&err, Error::Storage { message: m, .. } if m.contains("missing")),
        "{err:?}"
    );
    std::fs::write(blob_dir(dir.path()).join(ids[1].to_string()), b"short").unwrap();
    let err = store.raw(ids[1]).unwrap_err();
    assert!(
        matches!(&err, Error::Storage { message: m, .. } if m.contains("5 bytes")),
        "{err:?}"
    );
}

#[test]
fn schema_3_store_is_migrated_and_takes_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let small = {
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        store
            .commit_batch(&a, vec![mail("pop3:1", "old")], &crate::mime::summarize)
            .unwrap()[0]
    };
    {
        // The layout a schema 3 postfachd wrote: no blobs table.
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        let tx = write_txn(&db).unwrap();
        assert!(tx.delete_table(schema::BLOBS).unwrap());
        schema::put_u64(&tx, KEY_VERSION, 3).unwrap();
        tx.commit().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.raw(small).unwrap().unwrap(),
        b"Subject: old\r\n\r\nold\r\n"
    );
    let a = store.accounts().unwrap().remove(0);
    let raw = big_mail("new", 5, 1_500_000);
    let ids = store
        .commit_batch(
            &a,
            vec![blob_mail(&store, "pop3:2", &raw)],
            &crate::mime::summarize,
        )
        .unwrap();
    assert!(store.raw(ids[0]).unwrap().unwrap() == raw);
    drop(store);
    let db = Database::open(dir.path().join(DB_FILE)).unwrap();
    let tx = write_txn(&db).unwrap();
    assert_eq!(
        schema::get_u64(&tx, KEY_VERSION).unwrap(),
        Some(SCHEMA_VERSION)
    );
    assert_eq!(SCHEMA_VERSION, 20);
    assert!(tx
        .list_tables()
        .unwrap()
        .any(|t| t.name() == schema::BLOBS.name()));
}

#[test]
fn headers_beyond_the_head_get_fallbacks_and_the_mail_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_account(|id| pop3(id, None)).unwrap();
    // 70 KiB of Received: lines push Subject and Date past the head.
    let mut raw = Vec::new();
    while raw.len() < HEAD_BYTES + 6 * 1024 {
        raw.extend_from_slice(b"Received: from relay.example.org by mx.example.org; hop\r\n");
    }
    raw.extend_from_slice(b"Subject: late\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n");
    raw.extend_from_slice(&big_mail("inner", 6, 1_100_000));
    let ids = store
        .commit_batch(
            &a,
            vec![blob_mail(&store, "pop3:1", &raw)],
            &crate::mime::summarize,
        )
        .unwrap();
    let m = store.message(ids[0]).unwrap().unwrap();
    assert_eq!((m.subject.as_str(), m.date), ("", 1_700_000_000));
    assert_eq!(m.size, raw.len() as u64);
    assert!(store.raw(ids[0]).unwrap().unwrap() == raw);
}
