//! Schema 10 packs the word index of an older store in bounded
//! transactions at start: a kill -9 in the middle of it, then a start,
//! finishes the job with every posting where it was, and searches answer
//! the same at every point (issue 16, footprint).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use redb::{Database, ReadableTable, ReadableTableMetadata};

use common::{migration, TestBus};
use postfach::store::schema::{KEY_VERSION, META, SEARCH_INDEX, SEARCH_POSTINGS};
use postfach::store::search_chunk::{Chunk, Place};
use postfach::store::{ListQuery, NewMail, Store, Visibility, DB_FILE};

const MAILS: usize = 3_000;

type Posting = (String, i64, u64, String);

/// Every posting of the store, from whichever table holds it.
fn postings(dir: &Path) -> (BTreeSet<Posting>, u64, Option<u64>) {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    let names: Vec<String> = tx
        .list_tables()
        .unwrap()
        .map(|h| redb::TableHandle::name(&h).to_string())
        .collect();
    let mut all = BTreeSet::new();
    let place_names = migration::place_names(&tx);
    let packed = tx.open_table(SEARCH_POSTINGS).unwrap();
    let mut n_packed = 0;
    for row in packed.iter().unwrap() {
        let (k, v) = row.unwrap();
        let (w, d, i) = k.value();
        let c = Chunk::decode(d, i, v.value()).unwrap();
        for (d, i, p) in c.entries {
            let place = match &c.places[p] {
                Place::Id(n) => place_names[n].clone(),
                Place::Name(s) => s.clone(),
            };
            all.insert((w.to_string(), d, i, place));
            n_packed += 1;
        }
    }
    let legacy = names.iter().any(|n| n == "search_index").then(|| {
        let t = tx.open_table(SEARCH_INDEX).unwrap();
        for row in t.iter().unwrap() {
            let (k, v) = row.unwrap();
            let (w, d, i) = k.value();
            all.insert((w.to_string(), d, i, v.value().to_string()));
        }
        t.len().unwrap()
    });
    drop(packed);
    tx.abort().unwrap();
    (all, n_packed, legacy)
}

/// A store of `MAILS` mails with words of their own and shared ones,
/// rewritten into the schema 9 layout: one `search_index` row per posting.
fn schema_9_store(dir: &Path) -> (BTreeSet<Posting>, Vec<(u32, Vec<u64>)>) {
    let answers = {
        let store = Store::open(dir).unwrap();
        let a = migration::quiet_account(&store, "words@example.org", &[]);
        let raws: Vec<Vec<u8>> = (0..MAILS)
            .map(|i| {
                format!(
                    "Subject: Angebot {i} Kunde{} Posten{}\r\nFrom: k{}@kunde{}.example\r\n\
                     To: vertrieb@example.org\r\nDate: {}\r\n\
                     Message-ID: <{i}@words.test>\r\n\r\nText\r\n",
                    i % 97,
                    i * 7919 % 10007,
                    i % 31,
                    i % 13,
                    chrono_date(i),
                )
                .into_bytes()
            })
            .collect();
        for (n, chunk) in raws.chunks(1000).enumerate() {
            let batch = chunk
                .iter()
                .enumerate()
                .map(|(i, raw)| NewMail {
                    server_id: format!("pop3:{n}-{i}"),
                    raw: raw.clone().into(),
                    received: 1_700_000_000,
                })
                .collect();
            store
                .commit_batch(&a, batch, &postfach::mime::summarize)
                .unwrap();
        }
        QUERIES
            .iter()
            .map(|q| search(&store, q))
            .collect::<Vec<_>>()
    };
    let (want, _, legacy) = postings(dir);
    assert_eq!(legacy, None);
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut old = tx.open_table(SEARCH_INDEX).unwrap();
        for (w, d, i, p) in &want {
            old.insert((w.as_str(), *d, *i), p.as_str()).unwrap();
        }
        let mut meta = tx.open_table(META).unwrap();
        meta.insert(KEY_VERSION, 9u64.to_be_bytes().as_slice())
            .unwrap();
    }
    tx.delete_table(SEARCH_POSTINGS).unwrap();
    tx.commit().unwrap();
    (want, answers)
}

/// An RFC 5322 date, a few hours apart per mail, some mails sharing one.
fn chrono_date(i: usize) -> String {
    let h = (i / 3) % 24;
    let d = 1 + (i / 72) % 28;
    format!("Mon, {d:02} Jun 2025 {h:02}:00:00 +0000")
}

/// (total, ids of the first page) of a search, as the CRM sees it.
fn search(store: &Store, text: &str) -> (u32, Vec<u64>) {
    let q = ListQuery {
        text: Some(text.into()),
        limit: 20,
        ..ListQuery::new(Visibility::All, "inbox")
    };
    let (page, total) = store.list_messages(&q).unwrap();
    (total, page.iter().map(|m| m.id).collect())
}

const QUERIES: &[&str] = &["angebot", "kunde4", "posten1", "k3@kunde3", "vertrieb"];

#[test]
fn a_kill_during_word_packing_then_a_start_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (want, before) = schema_9_store(dir.path());
    let total = want.len() as u64;
    assert!(total > 20_000, "{total} postings: too few for many batches");
    assert!(before.iter().all(|(n, _)| *n > 0), "{before:?}");

    let bus = TestBus::start();
    migration::kill_at(
        dir.path(),
        &bus,
        "first-start.log",
        "packing the word index",
    );
    let (mid, packed, legacy) = postings(dir.path());
    let legacy = legacy.expect("killed before the last batch");
    assert!(
        legacy > 0 && packed > 0,
        "not killed in the middle: {legacy} rows left, {packed} packed"
    );
    assert_eq!(
        legacy + packed,
        total,
        "a posting is in both tables or none"
    );
    assert!(mid == want, "postings changed by the kill");

    let text = migration::serve_once(dir.path(), &bus, "second-start.log");
    assert!(text.contains("packing the word index"), "{text}");
    let (after, packed, legacy) = postings(dir.path());
    assert_eq!((packed, legacy), (total, None), "old table dropped");
    assert!(after == want, "postings changed by the packing");
    let store = Store::open(dir.path()).unwrap();
    let now: Vec<(u32, Vec<u64>)> = QUERIES.iter().map(|q| search(&store, q)).collect();
    assert_eq!(now, before);
}
