//! Schema 18 rewrites the message summaries of an older store (here the
//! binary rows of schema 12, which hold the account's fields and the
//! content key texts, and the labelled rows of schema 17, which hold the
//! texts) as rows that name an account label and keep only tags of the
//! keys, in bounded transactions at start: a kill -9 in the middle of it
//! leaves every summary readable, and the next start finishes the job
//! with every summary as it was (issue 16, footprint). The JSON rows of
//! schema 11 and older take the same path
//! (src/store/summary/convert/tests.rs, tests/restore_schema.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, ReadableTable, ReadableTableMetadata};

use common::{migration, TestBus};
use postfach::store::keytags::KeyTexts;
use postfach::store::schema::{KEY_VERSION, MESSAGES, META, SUMMARY_LABELS, SUMMARY_LABEL_IDS};
use postfach::store::summary::{self, Labels, BINARY, KEY_PACKED, LABELLED, TAGGED};
use postfach::store::{sha256_hex, MailKeys, MessageMeta, NewMail, Store, DB_FILE};

const MAILS: usize = 16_000;

/// A store of `MAILS` small mails of two accounts rewritten into the
/// layout of schema `version`: 12, every summary binary with its
/// account's fields and key texts, no label tables; 17, every summary
/// labelled with its key texts. Returns the summaries by id.
fn older_store(dir: &Path, version: u64) -> BTreeMap<u64, MessageMeta> {
    let mut texts = BTreeMap::new();
    {
        let store = Store::open(dir).unwrap();
        let a = migration::quiet_account(
            &store,
            "summary@example.org",
            &[("name", "Zusammenfassung")],
        );
        let b = migration::quiet_account(&store, "zweites@example.org", &[("name", "Zwei")]);
        for n in 0..MAILS / 2000 {
            let a = if n % 2 == 0 { &a } else { &b };
            let raws: Vec<Vec<u8>> = (0..2000)
                .map(|i| {
                    format!(
                        "From: Absender {i} <a{i}@example.org>\r\nTo: summary@example.org, \
                         b{n}@example.org\r\nSubject: Übersicht {n}-{i}\r\nMessage-ID: \
                         <{n}.{i}@summary.test>\r\nDate: Thu, 3 Dec 2026 10:00:00 +0100\r\n\r\n\
                         Text {i}\r\n"
                    )
                    .into_bytes()
                })
                .collect();
            let batch = raws
                .iter()
                .enumerate()
                .map(|(i, raw)| NewMail {
                    server_id: format!("pop3:{n}-{i}"),
                    raw: raw.clone().into(),
                    received: 1_700_000_000 + i as i64,
                })
                .collect();
            let ids = store
                .commit_batch(a, batch, &postfach::mime::summarize)
                .unwrap();
            assert_eq!(ids.len(), 2000);
            for (id, raw) in ids.into_iter().zip(&raws) {
                let keys = KeyTexts {
                    raw: sha256_hex(raw),
                    mail: String::new(),
                    header: MailKeys::of(raw).header,
                };
                texts.insert(id, keys);
            }
        }
    }
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    let mut want = BTreeMap::new();
    {
        let labels = Labels::write(&tx);
        let mut messages = tx.open_table(MESSAGES).unwrap();
        let rows: Vec<(u64, Vec<u8>)> = messages
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value(), v.value().to_vec())
            })
            .collect();
        for (id, row) in rows {
            assert_eq!(row[0], TAGGED);
            let m = summary::decode(&labels, id, &row).unwrap();
            let old = if version == 12 {
                summary::encode_binary1(&m, &texts[&id])
            } else {
                summary::encode_labelled(&labels, &m, &texts[&id]).unwrap()
            };
            // The texts give the tags the fetch kept.
            assert_eq!(summary::decode(&labels, id, &old).unwrap(), m);
            messages.insert(id, old.as_slice()).unwrap();
            want.insert(id, m);
        }
        let mut meta = tx.open_table(META).unwrap();
        meta.insert(KEY_VERSION, version.to_be_bytes().as_slice())
            .unwrap();
    }
    if version == 12 {
        tx.delete_table(SUMMARY_LABELS).unwrap();
        tx.delete_table(SUMMARY_LABEL_IDS).unwrap();
    }
    tx.commit().unwrap();
    want
}

/// (older rows, tagged rows, the conversion mark); every row is checked
/// against `want`.
fn census(dir: &Path, want: &BTreeMap<u64, MessageMeta>) -> (usize, usize, Option<Vec<u8>>) {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    let (mut binary, mut labelled) = (0, 0);
    let mark;
    {
        let labels = Labels::write(&tx);
        let messages = tx.open_table(MESSAGES).unwrap();
        for r in messages.iter().unwrap() {
            let (k, v) = r.unwrap();
            let (id, row) = (k.value(), v.value());
            match row[0] {
                BINARY | LABELLED => binary += 1,
                TAGGED => labelled += 1,
                b => panic!("row {id} starts with {b}"),
            }
            let m = summary::decode(&labels, id, row).unwrap();
            assert_eq!(&m, &want[&id], "row {id}");
        }
        mark = tx
            .open_table(META)
            .unwrap()
            .get(KEY_PACKED)
            .unwrap()
            .map(|g| g.value().to_vec());
    }
    tx.abort().unwrap();
    assert_eq!(binary + labelled, want.len());
    (binary, labelled, mark)
}

#[test]
fn a_kill_during_the_summary_conversion_then_a_start_finishes_it() {
    kill_and_finish(12);
}

#[test]
fn a_kill_during_the_tagging_of_schema_17_summaries_then_a_start_finishes_it() {
    kill_and_finish(17);
}

fn kill_and_finish(version: u64) {
    let dir = tempfile::tempdir().unwrap();
    let want = older_store(dir.path(), version);
    assert_eq!(census(dir.path(), &want), (MAILS, 0, None));

    // First start: killed as soon as the log shows a converted transaction.
    let bus = TestBus::start();
    migration::kill_at(
        dir.path(),
        &bus,
        "first-start.log",
        "converting stored summaries",
    );
    let (binary, labelled, mark) = census(dir.path(), &want);
    assert!(
        binary > 0 && labelled > 0,
        "not killed in the middle: {binary} older rows left, {labelled} tagged"
    );
    let mark = u64::from_be_bytes(mark.expect("the mark is set").try_into().unwrap());
    assert!(mark > 0 && mark < *want.keys().last().unwrap());

    // Second start: finishes and serves; every summary is tagged and the
    // same as before, and the two accounts took one label each. (Not common::Daemon: its 10 s start timeout is too
    // short for a debug build on a busy machine.)
    let text = migration::serve_once(dir.path(), &bus, "second-start.log");
    assert!(text.contains("converting stored summaries"), "{text}");
    assert_eq!(census(dir.path(), &want), (0, MAILS, None));
    let db = Database::open(dir.path().join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    assert_eq!(tx.open_table(SUMMARY_LABELS).unwrap().len().unwrap(), 2);
    tx.abort().unwrap();
    drop(db);
    let store = Store::open(dir.path()).unwrap();
    for (id, m) in &want {
        assert_eq!(&store.message(*id).unwrap().unwrap(), m);
    }
}
