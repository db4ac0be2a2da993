//! Schema 17 names the places of the word index's chunks by number; a
//! schema 14 store has its chunks rewritten in bounded transactions at
//! start. A kill -9 in the middle of it, then a start, finishes the job
//! with every posting where it was, and searches answer the same at every
//! point (issue 16, footprint).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use redb::{Database, ReadableTable};

use common::{migration, TestBus};
use postfach::store::schema::{
    KEY_VERSION, META, SEARCH_PLACES, SEARCH_PLACE_NAMES, SEARCH_POSTINGS,
};
use postfach::store::search_chunk::{Chunk, Place};
use postfach::store::{ListQuery, NewMail, Store, Visibility, DB_FILE};

const MAILS: usize = 4_000;
/// `postfach::store::search_places::KEY_PLACES`: the mark of the rewrite.
const MARK: &str = "search_places_upto";

type Posting = (String, i64, u64, String);

/// Every posting of the store with its place spelled out, and how many
/// chunks name their places by number and by string.
fn postings(dir: &Path) -> (BTreeSet<Posting>, usize, usize, bool) {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    let has_names = tx
        .list_tables()
        .unwrap()
        .any(|h| redb::TableHandle::name(&h) == "search_place_names");
    let names = match has_names {
        true => migration::place_names(&tx),
        false => Default::default(),
    };
    let mut all = BTreeSet::new();
    let (mut numbered, mut named) = (0, 0);
    {
        let chunks = tx.open_table(SEARCH_POSTINGS).unwrap();
        for row in chunks.iter().unwrap() {
            let (k, v) = row.unwrap();
            let (w, d, i) = k.value();
            let c = Chunk::decode(d, i, v.value()).unwrap();
            match c.numbered() {
                true => numbered += 1,
                false => named += 1,
            }
            for (d, i, p) in c.entries {
                let place = match &c.places[p] {
                    Place::Id(n) => names[n].clone(),
                    Place::Name(s) => s.clone(),
                };
                all.insert((w.to_string(), d, i, place));
            }
        }
    }
    let mark = tx.open_table(META).unwrap().get(MARK).unwrap().is_some();
    tx.abort().unwrap();
    (all, numbered, named, mark)
}

/// A store of `MAILS` mails in several accounts' folders, its chunks
/// rewritten as schema 14 wrote them (places by string) and its place
/// tables dropped.
fn schema_14_store(dir: &Path) -> (BTreeSet<Posting>, Vec<(u32, Vec<u64>)>) {
    let answers = {
        let store = Store::open(dir).unwrap();
        let accounts: Vec<_> = (0..3)
            .map(|n| migration::quiet_account(&store, &format!("w{n}@example.org"), &[]))
            .collect();
        for (n, part) in (0..MAILS).collect::<Vec<_>>().chunks(500).enumerate() {
            let batch = part
                .iter()
                .map(|&i| NewMail {
                    server_id: format!("pop3:{n}-{i}"),
                    raw: raw(i).into(),
                    received: 1_700_000_000,
                })
                .collect();
            store
                .commit_batch(&accounts[n % 3], batch, &postfach::mime::summarize)
                .unwrap();
        }
        QUERIES.iter().map(|q| search(&store, q)).collect()
    };
    let (want, numbered, named, mark) = postings(dir);
    assert_eq!((named, mark), (0, false), "a new store is numbered");
    assert!(
        numbered > 6_000,
        "{numbered} chunks: too few for many batches"
    );
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let names = migration::place_names(&tx);
        let mut chunks = tx.open_table(SEARCH_POSTINGS).unwrap();
        let rows: Vec<((String, i64, u64), Vec<u8>)> = chunks
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                let (w, d, i) = k.value();
                ((w.to_string(), d, i), v.value().to_vec())
            })
            .collect();
        for ((w, d, i), v) in rows {
            let old = migration::named_chunk(&v, &names);
            chunks.insert((w.as_str(), d, i), old.as_slice()).unwrap();
        }
        let mut meta = tx.open_table(META).unwrap();
        meta.insert(KEY_VERSION, 14u64.to_be_bytes().as_slice())
            .unwrap();
    }
    tx.delete_table(SEARCH_PLACES).unwrap();
    tx.delete_table(SEARCH_PLACE_NAMES).unwrap();
    tx.commit().unwrap();
    (want, answers)
}

fn raw(i: usize) -> Vec<u8> {
    format!(
        "Subject: Angebot {i} Kunde{} Posten{}\r\nFrom: k{}@kunde{}.example\r\n\
         To: vertrieb@example.org\r\nDate: Mon, {:02} Jun 2025 {:02}:00:00 +0000\r\n\
         Message-ID: <{i}@places.test>\r\n\r\nText\r\n",
        i % 97,
        i * 7919 % 10007,
        i % 31,
        i % 13,
        1 + (i / 72) % 28,
        (i / 3) % 24,
    )
    .into_bytes()
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

const QUERIES: &[&str] = &[
    "angebot",
    "kunde4",
    "posten1",
    "k3@kunde3",
    "vertrieb",
    "17",
];

#[test]
fn a_kill_while_numbering_places_then_a_start_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (want, before) = schema_14_store(dir.path());
    let total = postings(dir.path());
    assert_eq!((total.1, total.3), (0, false), "every chunk by string");
    assert!(before.iter().all(|(n, _)| *n > 0), "{before:?}");

    let bus = TestBus::start();
    migration::kill_at(
        dir.path(),
        &bus,
        "first-start.log",
        "numbering the word index places",
    );
    let (mid, numbered, named, mark) = postings(dir.path());
    assert!(
        mark && numbered > 0 && named > 0,
        "not killed in the middle: {numbered} numbered, {named} by string"
    );
    assert!(mid == want, "postings changed by the kill");

    let text = migration::serve_once(dir.path(), &bus, "second-start.log");
    assert!(text.contains("numbering the word index places"), "{text}");
    let (after, numbered, named, mark) = postings(dir.path());
    assert_eq!((named, mark), (0, false), "every chunk numbered, mark gone");
    assert_eq!(numbered, total.2);
    assert!(after == want, "postings changed by the numbering");
    let store = Store::open(dir.path()).unwrap();
    let now: Vec<(u32, Vec<u64>)> = QUERIES.iter().map(|q| search(&store, q)).collect();
    assert_eq!(now, before);
}
