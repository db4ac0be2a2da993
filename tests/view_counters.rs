//! Schema 19 no longer counts 17-minute buckets in the view counters:
//! the level 0 rows of `view_arrays` that a store of schema 18 or older holds are
//! deleted at start, in bounded transactions. A kill -9 in the middle
//! leaves every other counter as it was and only level 0 rows nobody
//! reads; the next start finishes, and the pages (deep ones found through
//! the counters) answer as before (issue 16, the index footprint).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, ReadableTable};

use common::{migration, TestBus};
use postfach::store::schema::{KEY_VERSION, META, VIEW_ARRAYS, VIEW_CHUNKS};
use postfach::store::{view_chunk, ListQuery, NewMail, Store, Visibility, DB_FILE};

/// Mails 11 hours apart, so each has a 9-hour bucket of its own in each
/// of its five scopes: 30,000 rows of level 0, six transactions.
const MAILS: usize = 6_000;

type Arrays = BTreeMap<(u8, u32, i64), Vec<u8>>;
/// (page ids, total) of one view.
type Answer = (Vec<u64>, u32);

/// Every row of `view_arrays`.
fn arrays(dir: &Path) -> Arrays {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    let out = {
        let t = tx.open_table(VIEW_ARRAYS).unwrap();
        let rows = t.iter().unwrap().map(|r| r.unwrap());
        rows.map(|(k, v)| (k.value(), v.value().to_vec())).collect()
    };
    tx.abort().unwrap();
    out
}

/// The level 0 rows schema 17 kept for the entries of `tx`.
fn level_0(tx: &redb::WriteTransaction) -> Arrays {
    let mut entries = Vec::new();
    for row in tx.open_table(VIEW_CHUNKS).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        let (s, d, i) = k.value();
        let chunk = view_chunk::decode((d, i), v.value()).unwrap();
        entries.extend(chunk.into_iter().map(|(d, _)| (s, d)));
    }
    migration::level_0_rows(entries)
}

/// What the CRM sees: first pages, deep pages and totals of several views.
fn answers(store: &Store, accounts: &[String]) -> Vec<Answer> {
    let mut qs = Vec::new();
    for viewer in [Visibility::All, Visibility::User("alice".into())] {
        qs.push(ListQuery::new(viewer.clone(), "inbox"));
        for offset in [65, 2_345, 4_500] {
            qs.push(ListQuery {
                offset,
                limit: 7,
                ..ListQuery::new(viewer.clone(), "inbox")
            });
        }
        for a in accounts {
            qs.push(ListQuery {
                account: Some(a.clone()),
                offset: 700,
                ..ListQuery::new(viewer.clone(), "inbox")
            });
        }
    }
    qs.iter()
        .map(|q| {
            let (page, total) = store.list_messages(q).unwrap();
            (page.iter().map(|m| m.id).collect(), total)
        })
        .collect()
}

/// A store of `MAILS` mails on a public and a private account, put back
/// into the schema 17 layout: (its accounts, its answers, its counters,
/// the level 0 rows added).
fn schema_17_store(dir: &Path) -> (Vec<String>, Vec<Answer>, Arrays, Arrays) {
    let (accounts, before) = {
        let store = Store::open(dir).unwrap();
        let public = migration::quiet_account(&store, "counts@example.org", &[]);
        let private =
            migration::quiet_account(&store, "alice@example.org", &[("private_owner", "alice")]);
        for (n, a) in [&public, &private, &public, &public].iter().enumerate() {
            let batch = (0..MAILS / 4)
                .map(|i| {
                    let at = 1_600_000_000 - ((n * MAILS / 4 + i) as i64) * 11 * 3600;
                    let date = chrono::DateTime::from_timestamp(at, 0).unwrap();
                    let raw = format!(
                        "Subject: Rechnung {n}-{i}\r\nFrom: k{i}@kunde.example\r\n\
                         To: buchhaltung@example.org\r\nDate: {}\r\n\
                         Message-ID: <{n}-{i}@counts.test>\r\n\r\nText\r\n",
                        date.to_rfc2822(),
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
    let counters = arrays(dir);
    assert!(counters.keys().all(|k| k.0 > 0), "a level 0 row written");
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    let old = level_0(&tx);
    {
        let mut t = tx.open_table(VIEW_ARRAYS).unwrap();
        for (k, v) in &old {
            t.insert(k, v.as_slice()).unwrap();
        }
        let mut meta = tx.open_table(META).unwrap();
        meta.insert(KEY_VERSION, 17u64.to_be_bytes().as_slice())
            .unwrap();
    }
    tx.commit().unwrap();
    (accounts, before, counters, old)
}

/// Split `rows` into (level 0, the others).
fn by_level(rows: Arrays) -> (Arrays, Arrays) {
    rows.into_iter().partition(|(k, _)| k.0 == 0)
}

#[test]
fn a_kill_while_the_17_minute_counters_are_deleted_then_a_start_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (accounts, before, counters, old) = schema_17_store(dir);
    assert!(old.len() >= 5 * MAILS - 10, "{} rows of level 0", old.len());
    assert!(before.iter().all(|(_, n)| *n > 0), "{before:?}");

    let bus = TestBus::start();
    let line = "dropping the 17-minute view counters";
    migration::kill_at(dir, &bus, "first-start.log", line);
    let (left, rest) = by_level(arrays(dir));
    assert!(
        !left.is_empty() && left.len() < old.len(),
        "not killed in the middle: {} of {} rows left",
        left.len(),
        old.len()
    );
    assert!(left.iter().all(|(k, v)| old.get(k) == Some(v)), "changed");
    assert!(rest == counters, "other counters changed by the kill");

    let text = migration::serve_once(dir, &bus, "second-start.log");
    assert!(text.contains(line), "{text}");
    let (left, rest) = by_level(arrays(dir));
    assert!(left.is_empty(), "{} rows of level 0 left", left.len());
    assert!(rest == counters, "other counters changed by the deletion");
    let store = Store::open(dir).unwrap();
    assert_eq!(answers(&store, &accounts), before);
}
