//! Schema 20 keeps the canonical IMAP server ids in chunks of their
//! generation instead of one row each: the rows of an older store are
//! moved in bounded transactions at start. A kill -9 in the middle of it,
//! then a start, finishes the job with every id in exactly one place; the
//! other ids (POP3, odd forms) stay rows, and afterwards no mail is
//! fetched twice (issue 16, the index footprint).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use common::{migration, TestBus};
use postfach::store::schema::{KEY_VERSION, META, SERVER_IDS, SERVER_UIDS};
use postfach::store::server_ids::chunk;
use postfach::store::{NewMail, Store, DB_FILE};

/// IMAP mails per account: enough for several transactions of the move.
const MAILS: usize = 8_000;

/// (account, server id, message id).
type Row = (String, String, u64);

fn mail(sid: String, n: usize) -> NewMail {
    NewMail {
        server_id: sid,
        raw: format!("Subject: Angebot {n}\r\n\r\nText {n}\r\n")
            .into_bytes()
            .into(),
        received: 1_700_000_000,
    }
}

/// Every server id, from whichever table holds it: (ids, pairs in chunks,
/// rows).
fn ids(dir: &Path) -> (BTreeSet<Row>, u64, u64) {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_read().unwrap();
    let mut all = BTreeSet::new();
    let mut pairs = 0;
    // Absent in a schema 17 store.
    let chunks = match tx.open_table(SERVER_UIDS) {
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        t => Some(t.unwrap()),
    };
    for row in chunks.iter().flat_map(|t| t.iter().unwrap()) {
        let (k, v) = row.unwrap();
        let (a, generation, first) = k.value();
        for (uid, id) in chunk::decode(first, v.value()).unwrap() {
            pairs += 1;
            let r = (a.to_string(), format!("{generation}{uid}"), id);
            assert!(all.insert(r), "twice");
        }
    }
    let rows = tx.open_table(SERVER_IDS).unwrap();
    for row in rows.iter().unwrap() {
        let (k, v) = row.unwrap();
        let (a, sid) = k.value();
        let r = (a.to_string(), sid.to_string(), v.value());
        assert!(all.insert(r), "in both places");
    }
    (all, pairs, rows.len().unwrap())
}

/// Ids of the forms that stay rows.
fn odd(all: &BTreeSet<Row>) -> u64 {
    all.iter()
        .filter(|(_, s, _)| chunk::canonical(s).is_none())
        .count() as u64
}

/// A store of two accounts' mails (IMAP ids, POP3 ids, an odd IMAP id,
/// some deleted: tombstones) rewritten into the schema 17 layout: every
/// server id a row.
fn schema_17_store(dir: &Path) -> Vec<postfach::account::Account> {
    let accounts = {
        let store = Store::open(dir).unwrap();
        let a = migration::quiet_account(&store, "a@example.org", &[]);
        let b = migration::quiet_account(&store, "b@example.org", &[]);
        for (i, acct) in [&a, &b].into_iter().enumerate() {
            for from in (0..MAILS).step_by(1000) {
                let batch = (from..from + 1000)
                    .map(|n| mail(format!("imap:INBOX:7:{}", n + 1), i * MAILS + n))
                    .collect();
                let ids = store
                    .commit_batch(acct, batch, &postfach::mime::summarize)
                    .unwrap();
                store.delete_message(ids[0]).unwrap();
            }
            let others = vec![
                mail("pop3:uidl-1".into(), 90_000 + i),
                mail("imap:INBOX:7:0042".into(), 91_000 + i),
            ];
            store
                .commit_batch(acct, others, &postfach::mime::summarize)
                .unwrap();
        }
        vec![a, b]
    };
    let (all, _, _) = ids(dir);
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut rows = tx.open_table(SERVER_IDS).unwrap();
        for (a, s, id) in &all {
            rows.insert((a.as_str(), s.as_str()), *id).unwrap();
        }
        tx.open_table(META)
            .unwrap()
            .insert(KEY_VERSION, 17u64.to_be_bytes().as_slice())
            .unwrap();
    }
    tx.delete_table(SERVER_UIDS).unwrap();
    tx.commit().unwrap();
    accounts
}

#[test]
fn a_kill_during_the_move_of_server_ids_into_chunks_then_a_start_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = schema_17_store(dir.path());
    let (want, pairs, rows) = ids(dir.path());
    let total = want.len() as u64;
    assert_eq!((pairs, rows), (0, total));
    assert_eq!(total, 2 * (MAILS as u64 + 2));
    assert_eq!(odd(&want), 4);

    let bus = TestBus::start();
    let line = "moving IMAP server ids into chunks";
    migration::kill_at(dir.path(), &bus, "first-start.log", line);
    let (mid, pairs, rows) = ids(dir.path());
    assert!(
        pairs > 0 && rows > odd(&want),
        "not killed in the middle: {rows} rows left, {pairs} moved"
    );
    assert_eq!(pairs + rows, total, "an id in both places or none");
    assert!(mid == want, "ids changed by the kill");

    let text = migration::serve_once(dir.path(), &bus, "second-start.log");
    assert!(text.contains(line), "{text}");
    let (after, pairs, rows) = ids(dir.path());
    assert_eq!((pairs, rows), (total - 4, 4), "only the odd ids stay rows");
    assert!(after == want, "ids changed by the move");

    // The server offers everything again: nothing is stored twice, and the
    // deleted mails stay deleted.
    let store = Store::open(dir.path()).unwrap();
    for acct in &accounts {
        let known = store.known_server_ids(&acct.id, "").unwrap();
        assert_eq!(known.len(), MAILS + 2);
        assert_eq!(
            store
                .known_server_ids(&acct.id, "imap:INBOX:7:")
                .unwrap()
                .len(),
            MAILS + 1
        );
        let again = (0..MAILS)
            .map(|n| mail(format!("imap:INBOX:7:{}", n + 1), 0))
            .chain([
                mail("pop3:uidl-1".into(), 1),
                mail("imap:INBOX:7:0042".into(), 2),
            ])
            .collect();
        let new = store
            .commit_batch(acct, again, &postfach::mime::summarize)
            .unwrap();
        assert!(new.is_empty(), "stored again: {}", new.len());
    }
}
