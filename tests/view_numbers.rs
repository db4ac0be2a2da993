//! Schema 14 keys the view lists by a number per scope, schema 16 packs
//! them into chunks: the lists of an older store are moved in bounded
//! transactions at start. A kill -9 in the middle of either move, then a
//! start, finishes the job with every entry filed exactly once, and the
//! pages answer the same at every point (issue 16, the index footprint).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use redb::{Database, ReadableTable, ReadableTableMetadata};

use common::{migration, TestBus};
use postfach::store::schema::{
    BUCKETS, KEY_VERSION, META, VIEW_ARRAYS, VIEW_CHUNKS, VIEW_COUNTS, VIEW_ENTRIES, VIEW_INDEX,
    VIEW_SCOPES, VIEW_TOTALS,
};
use postfach::store::{view_chunk, ListQuery, NewMail, Store, Visibility, DB_FILE};

const MAILS: usize = 4_000;

type Entry = (String, i64, u64);
/// (first page ids, total) of one view.
type Answer = (Vec<u64>, u32);

/// Scope number -> scope key.
fn scope_keys(tx: &redb::WriteTransaction) -> HashMap<u32, String> {
    let t = tx.open_table(VIEW_SCOPES).unwrap();
    let rows = t.iter().unwrap().map(|r| r.unwrap());
    rows.map(|(k, v)| (v.value(), k.value().to_string()))
        .collect()
}

/// Every view entry of the store, from whichever table holds it:
/// (entries, how many are in chunks, how many are left in the old table:
/// schema 12's `view_index` or schema 14's `view_entries`).
fn entries(dir: &Path) -> (BTreeSet<Entry>, u64, Option<u64>) {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    let names: Vec<String> = tx
        .list_tables()
        .unwrap()
        .map(|h| redb::TableHandle::name(&h).to_string())
        .collect();
    let keys = scope_keys(&tx);
    let mut all = BTreeSet::new();
    let mut n = 0;
    for row in tx.open_table(VIEW_CHUNKS).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        let (s, d, i) = k.value();
        let chunk = view_chunk::decode((d, i), v.value()).unwrap();
        assert!(chunk.len() <= view_chunk::CHUNK_MAX);
        for (d, i) in chunk {
            assert!(all.insert((keys[&s].clone(), d, i)), "filed twice");
            n += 1;
        }
    }
    let has = |name: &str| names.iter().any(|n| n == name);
    let old = if has("view_index") {
        let t = tx.open_table(VIEW_INDEX).unwrap();
        for row in t.iter().unwrap() {
            let (k, _) = row.unwrap();
            let (s, d, i) = k.value();
            assert!(all.insert((s.to_string(), d, i)), "in both places");
        }
        Some(t.len().unwrap())
    } else if has("view_entries") {
        let t = tx.open_table(VIEW_ENTRIES).unwrap();
        for row in t.iter().unwrap() {
            let (s, d, i) = row.unwrap().0.value();
            assert!(all.insert((keys[&s].clone(), d, i)), "in both places");
        }
        Some(t.len().unwrap())
    } else {
        None
    };
    tx.abort().unwrap();
    (all, n, old)
}

/// What the CRM sees: first pages, a deep page and totals of several views.
fn answers(store: &Store, accounts: &[String]) -> Vec<Answer> {
    let mut qs = Vec::new();
    for viewer in [Visibility::All, Visibility::User("alice".into())] {
        qs.push(ListQuery::new(viewer.clone(), "inbox"));
        qs.push(ListQuery {
            offset: 2_500,
            limit: 5,
            ..ListQuery::new(viewer.clone(), "inbox")
        });
        for a in accounts {
            qs.push(ListQuery {
                account: Some(a.clone()),
                offset: 700,
                ..ListQuery::new(viewer.clone(), "inbox")
            });
        }
    }
    let mut out: Vec<Answer> = qs
        .iter()
        .map(|q| {
            let (page, total) = store.list_messages(q).unwrap();
            (page.iter().map(|m| m.id).collect(), total)
        })
        .collect();
    for a in accounts {
        out.push((Vec::new(), store.count_messages(a).unwrap() as u32));
    }
    out
}

/// A store of `MAILS` mails on a public and a private account: (its
/// entries, the accounts, the answers).
fn filled_store(dir: &Path) -> (BTreeSet<Entry>, Vec<String>, Vec<Answer>) {
    let (accounts, before) = {
        let store = Store::open(dir).unwrap();
        let public = migration::quiet_account(&store, "views@example.org", &[]);
        let private =
            migration::quiet_account(&store, "alice@example.org", &[("private_owner", "alice")]);
        for (n, a) in [&public, &private, &public, &public].iter().enumerate() {
            let batch = (0..MAILS / 4)
                .map(|i| {
                    let raw = format!(
                        "Subject: Angebot {n}-{i}\r\nFrom: k{i}@kunde.example\r\n\
                         To: vertrieb@example.org\r\nDate: {}\r\n\
                         Message-ID: <{n}-{i}@views.test>\r\n\r\nText\r\n",
                        date(n * MAILS / 4 + i),
                    );
                    NewMail {
                        server_id: format!("pop3:{n}-{i}"),
                        raw: raw.into_bytes().into(),
                        received: 1_700_000_000,
                    }
                })
                .collect();
            store
                .commit_batch(a, batch, &postfach::mime::summarize)
                .unwrap();
        }
        let accounts = vec![public.id.clone(), private.id.clone()];
        let before = answers(&store, &accounts);
        (accounts, before)
    };
    let (want, _, old) = entries(dir);
    assert_eq!(old, None);
    (want, accounts, before)
}

/// [`filled_store`] rewritten into the schema 12 layout: the view lists
/// keyed by the scope key.
fn schema_12_store(dir: &Path) -> (BTreeSet<Entry>, Vec<String>, Vec<Answer>) {
    let (want, accounts, before) = filled_store(dir);
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let keys = scope_keys(&tx);
        let mut old = tx.open_table(VIEW_INDEX).unwrap();
        for (s, d, i) in &want {
            old.insert((s.as_str(), *d, *i), ()).unwrap();
        }
        let totals = tx.open_table(VIEW_TOTALS).unwrap();
        let mut old = tx.open_table(BUCKETS).unwrap();
        for row in totals.iter().unwrap() {
            let (k, v) = row.unwrap();
            let (l, s, b) = k.value();
            old.insert((l, keys[&s].as_str(), b), v.value()).unwrap();
        }
        let arrays = tx.open_table(VIEW_ARRAYS).unwrap();
        let mut old = tx.open_table(VIEW_COUNTS).unwrap();
        for row in arrays.iter().unwrap() {
            let (k, v) = row.unwrap();
            let (l, s, b) = k.value();
            old.insert((l, keys[&s].as_str(), b), v.value()).unwrap();
        }
        let mut meta = tx.open_table(META).unwrap();
        meta.insert(KEY_VERSION, 12u64.to_be_bytes().as_slice())
            .unwrap();
    }
    tx.delete_table(VIEW_SCOPES).unwrap();
    tx.delete_table(VIEW_CHUNKS).unwrap();
    tx.delete_table(VIEW_TOTALS).unwrap();
    tx.delete_table(VIEW_ARRAYS).unwrap();
    tx.commit().unwrap();
    (want, accounts, before)
}

/// [`filled_store`] rewritten into the schema 14 layout: one row per view
/// entry, keyed by the scope number.
fn schema_14_store(dir: &Path) -> (BTreeSet<Entry>, Vec<String>, Vec<Answer>) {
    let (want, accounts, before) = filled_store(dir);
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let numbers: HashMap<String, u32> =
            scope_keys(&tx).into_iter().map(|(n, k)| (k, n)).collect();
        let mut old = tx.open_table(VIEW_ENTRIES).unwrap();
        for (s, d, i) in &want {
            old.insert((numbers[s], *d, *i), ()).unwrap();
        }
        let mut meta = tx.open_table(META).unwrap();
        meta.insert(KEY_VERSION, 14u64.to_be_bytes().as_slice())
            .unwrap();
    }
    tx.delete_table(VIEW_CHUNKS).unwrap();
    tx.commit().unwrap();
    (want, accounts, before)
}

/// An RFC 5322 date, a few hours apart per mail over years, some shared.
fn date(i: usize) -> String {
    let h = (i / 3) % 24;
    let d = 1 + (i / 72) % 28;
    let y = 2000 + (i * 7) % 26;
    format!("Mon, {d:02} Jun {y} {h:02}:00:00 +0000")
}

/// Start postfachd over the store in `dir` (`want` its entries, `before`
/// its answers) and kill it as soon as its log shows `line`, in the middle
/// of a move; then start it again, which finishes the move.
fn kill_then_finish(dir: &Path, made: (BTreeSet<Entry>, Vec<String>, Vec<Answer>), line: &str) {
    let (want, accounts, before) = made;
    let total = want.len() as u64;
    assert_eq!(total, 5 * MAILS as u64, "five scopes per mail");
    assert!(before.iter().all(|(_, n)| *n > 0), "{before:?}");

    let bus = TestBus::start();
    migration::kill_at(dir, &bus, "first-start.log", line);
    let (mid, moved, old) = entries(dir);
    let old = old.expect("killed before the last batch");
    assert!(
        old > 0 && moved > 0,
        "not killed in the middle: {old} entries left, {moved} moved"
    );
    assert_eq!(old + moved, total, "an entry in both places or none");
    assert!(mid == want, "entries changed by the kill");

    let text = migration::serve_once(dir, &bus, "second-start.log");
    assert!(text.contains(line), "{text}");
    let (after, moved, old) = entries(dir);
    assert_eq!((moved, old), (total, None), "old tables dropped");
    assert!(after == want, "entries changed by the move");
    let store = Store::open(dir).unwrap();
    assert_eq!(answers(&store, &accounts), before);
}

#[test]
fn a_kill_during_the_move_to_scope_numbers_then_a_start_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let made = schema_12_store(dir.path());
    kill_then_finish(dir.path(), made, "moving the view index");
}

#[test]
fn a_kill_during_the_move_into_chunks_then_a_start_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let made = schema_14_store(dir.path());
    kill_then_finish(dir.path(), made, "packing the view index");
}
