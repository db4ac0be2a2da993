//! Schema 15 keys the content index by 32 bytes instead of the key's text:
//! the rows of an older store are moved in bounded transactions at start.
//! A kill -9 in the middle of it, then a start, finishes the job with
//! every key in exactly one place, and afterwards every mail seen before
//! is recognised when the server offers it again under new ids, and every
//! mail deleted in the CRM stays deleted (issue 16, the index footprint).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use common::{migration, TestBus};
use postfach::account::Account;
use postfach::store::content::stored_key;
use postfach::store::digest::MailKeys;
use postfach::store::schema::{CONTENT, CONTENT_KEYS, KEY_VERSION, META};
use postfach::store::{sha256_hex, ListQuery, NewMail, Store, Visibility, DB_FILE};

/// Mails per account and kind: half of them from a server that rewrites
/// bookkeeping fields (three keys each), half plain (one key).
const MAILS: usize = 4_000;

/// (account, stored key, message id or tombstone).
type Row = (String, [u8; 32], u64);

/// Mail `n` of account `acct`, as the server with UIDVALIDITY `v` sends it.
fn raw(acct: usize, n: usize, v: usize) -> Vec<u8> {
    if n % 2 == 0 {
        format!("Subject: Angebot {acct}-{n}\r\nX-UID: {v}{n}\r\n\r\nText {n}\r\n").into_bytes()
    } else {
        format!("Subject: Rechnung {acct}-{n}\r\n\r\nText {n}\r\n").into_bytes()
    }
}

fn batch(acct: usize, v: usize, range: std::ops::Range<usize>) -> Vec<NewMail> {
    range
        .map(|n| NewMail {
            server_id: format!("imap:INBOX:{v}:{n}"),
            raw: raw(acct, n, v).into(),
            received: 1_700_000_000,
        })
        .collect()
}

/// Every key text a mail may have a row for.
fn texts(bytes: &[u8]) -> [String; 3] {
    let keys = MailKeys::of(bytes);
    [sha256_hex(bytes), keys.mail, keys.header]
}

/// Every content row, from whichever table holds it: (rows, how many are
/// in the keyed table, how many are left in the old one if it exists).
fn rows(dir: &Path) -> (BTreeSet<Row>, u64, Option<u64>) {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_read().unwrap();
    let mut all = BTreeSet::new();
    let keyed = tx.open_table(CONTENT_KEYS).unwrap();
    for row in keyed.iter().unwrap() {
        let (k, v) = row.unwrap();
        let (a, key) = k.value();
        assert!(all.insert((a.to_string(), *key, v.value())), "twice");
    }
    let old = match tx.open_table(CONTENT) {
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        t => {
            let t = t.unwrap();
            for row in t.iter().unwrap() {
                let (k, v) = row.unwrap();
                let (a, text) = k.value();
                let r = (a.to_string(), stored_key(text), v.value());
                assert!(all.insert(r), "in both places");
            }
            Some(t.len().unwrap())
        }
    };
    (all, keyed.len().unwrap(), old)
}

/// A store of two accounts' mails, some deleted, rewritten into the
/// schema 14 layout: the content index keyed by the key's text.
fn schema_14_store(dir: &Path) -> (Vec<Account>, usize) {
    let (accounts, deleted) = {
        let store = Store::open(dir).unwrap();
        let a = migration::quiet_account(&store, "a@example.org", &[]);
        let b = migration::quiet_account(&store, "b@example.org", &[]);
        let mut deleted = 0;
        for (i, acct) in [&a, &b].into_iter().enumerate() {
            for from in (0..MAILS).step_by(500) {
                let ids = store
                    .commit_batch(
                        acct,
                        batch(i, 1, from..from + 500),
                        &postfach::mime::summarize,
                    )
                    .unwrap();
                // Two of each batch deleted in the CRM: tombstones.
                for id in &ids[..2] {
                    store.delete_message(*id).unwrap();
                    deleted += 1;
                }
            }
        }
        (vec![a, b], deleted)
    };
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut keyed = tx.open_table(CONTENT_KEYS).unwrap();
        let mut old = tx.open_table(CONTENT).unwrap();
        for (i, acct) in accounts.iter().enumerate() {
            for n in 0..MAILS {
                for t in texts(&raw(i, n, 1)) {
                    if let Some(v) = keyed.remove((acct.id.as_str(), &stored_key(&t))).unwrap() {
                        old.insert((acct.id.as_str(), t.as_str()), v.value())
                            .unwrap();
                    }
                }
            }
        }
        assert_eq!(keyed.len().unwrap(), 0, "every key back in its text");
        tx.open_table(META)
            .unwrap()
            .insert(KEY_VERSION, 14u64.to_be_bytes().as_slice())
            .unwrap();
    }
    tx.commit().unwrap();
    (accounts, deleted)
}

#[test]
fn a_kill_during_the_move_to_binary_content_keys_then_a_start_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (accounts, deleted) = schema_14_store(dir.path());
    let (want, keyed, old) = rows(dir.path());
    let total = want.len() as u64;
    assert_eq!((keyed, old), (0, Some(total)));
    // Two accounts, half of the mails with three keys, half with one.
    assert_eq!(total, 2 * (MAILS as u64 / 2) * 4);

    let bus = TestBus::start();
    migration::kill_at(dir.path(), &bus, "first-start.log", "moving content keys");
    let (mid, keyed, old) = rows(dir.path());
    let old = old.expect("killed before the last transaction");
    assert!(
        old > 0 && keyed > 0,
        "not killed in the middle: {old} rows left, {keyed} moved"
    );
    assert_eq!(old + keyed, total, "a key in both places or none");
    assert!(mid == want, "rows changed by the kill");

    let text = migration::serve_once(dir.path(), &bus, "second-start.log");
    assert!(text.contains("moving content keys"), "{text}");
    let (after, keyed, old) = rows(dir.path());
    assert_eq!((keyed, old), (total, None), "old table dropped");
    assert!(after == want, "rows changed by the move");

    // The server renumbers (a new UIDVALIDITY, and new X-UID fields): every
    // mail is recognised, the deleted ones stay deleted.
    let store = Store::open(dir.path()).unwrap();
    let stored = |store: &Store| {
        let q = ListQuery::new(Visibility::All, "inbox");
        store.list_messages(&q).unwrap().1 as usize
    };
    assert_eq!(stored(&store), 2 * MAILS - deleted);
    for (i, acct) in accounts.iter().enumerate() {
        let new = store
            .commit_batch(acct, batch(i, 2, 0..MAILS), &postfach::mime::summarize)
            .unwrap();
        assert!(new.is_empty(), "stored again: {}", new.len());
    }
    assert_eq!(stored(&store), 2 * MAILS - deleted);
}
