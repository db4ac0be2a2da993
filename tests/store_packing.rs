//! Schema 9 packs the raw mails of an older store in bounded transactions
//! at start: a kill -9 in the middle of it, then a start, finishes the job
//! with every mail byte-exact (issue 16, footprint).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, ReadableTable, ReadableTableMetadata};

use common::{migration, TestBus};
use postfach::store::schema::{KEY_DICT_PACKED, KEY_VERSION, META, RAW, RAW_DICTS, RAW_PACKED};
use postfach::store::{compress, NewMail, Store, DB_FILE};

const MAILS: usize = 4_000;

/// A store of `MAILS` mails of ~2 KB (and the fixtures), rewritten into
/// the schema 7 layout: every raw mail unpacked in `raw`.
fn schema_7_store(dir: &Path) -> BTreeMap<u64, Vec<u8>> {
    let mut want = BTreeMap::new();
    {
        let store = Store::open(dir).unwrap();
        let a = migration::quiet_account(&store, "pack@example.org", &[]);
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut raws: Vec<Vec<u8>> = std::fs::read_dir(fixtures)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        raws.extend((0..MAILS).map(|i| {
            format!(
                "Subject: Packing {i}\r\nMessage-ID: <{i}@pack.test>\r\n\r\n{}\r\n",
                format!("Zeile {i} mit Text {} ", i * 7919 % 10007).repeat(60)
            )
            .into_bytes()
        }));
        for (n, chunk) in raws.chunks(2000).enumerate() {
            let batch = chunk
                .iter()
                .enumerate()
                .map(|(i, raw)| NewMail {
                    server_id: format!("pop3:{n}-{i}"),
                    raw: raw.clone().into(),
                    received: 1_700_000_000,
                })
                .collect();
            let ids = store
                .commit_batch(&a, batch, &postfach::mime::summarize)
                .unwrap();
            assert_eq!(ids.len(), chunk.len());
            want.extend(ids.into_iter().zip(chunk.iter().cloned()));
        }
    }
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let packed = tx.open_table(RAW_PACKED).unwrap();
        let dict_rows = tx.open_table(RAW_DICTS).unwrap();
        let dicts = compress::Dicts::default();
        let mut raw = tx.open_table(RAW).unwrap();
        for row in packed.iter().unwrap() {
            let (k, v) = row.unwrap();
            let bytes = compress::unpack_stored(v.value(), &dict_rows, &dicts).unwrap();
            raw.insert(k.value(), bytes.as_slice()).unwrap();
        }
        let mut meta = tx.open_table(META).unwrap();
        meta.insert(KEY_VERSION, 7u64.to_be_bytes().as_slice())
            .unwrap();
        meta.remove(KEY_DICT_PACKED).unwrap();
    }
    tx.delete_table(RAW_PACKED).unwrap();
    tx.delete_table(RAW_DICTS).unwrap();
    tx.commit().unwrap();
    want
}

/// Rows in (`raw`, `raw_packed`); the second is None before schema 9.
fn rows(dir: &Path) -> (u64, Option<u64>) {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    let legacy = tx.open_table(RAW).unwrap().len().unwrap();
    let names: Vec<String> = tx
        .list_tables()
        .unwrap()
        .map(|h| redb::TableHandle::name(&h).to_string())
        .collect();
    let packed = names
        .iter()
        .any(|n| n == "raw_packed")
        .then(|| tx.open_table(RAW_PACKED).unwrap().len().unwrap());
    tx.abort().unwrap();
    (legacy, packed)
}

#[test]
fn a_kill_during_packing_then_a_start_finishes_it_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let want = schema_7_store(dir.path());
    let total = want.len() as u64;
    assert_eq!(rows(dir.path()), (total, None));

    // First start: killed as soon as the log shows a packed transaction.
    let bus = TestBus::start();
    migration::kill_at(dir.path(), &bus, "first-start.log", "packing stored mails");
    let (legacy, packed) = rows(dir.path());
    let packed = packed.expect("the schema step committed");
    assert!(
        legacy > 0 && packed > 0,
        "not killed in the middle: {legacy} rows left, {packed} packed"
    );
    assert_eq!(legacy + packed, total, "a mail is in both tables or none");

    // Second start: finishes, serves, and every mail is byte-exact. (Not
    // common::Daemon: its 10 s start timeout is too short for packing
    // thousands of mails in a debug build on a busy machine.)
    let text = migration::serve_once(dir.path(), &bus, "second-start.log");
    assert!(text.contains("packing stored mails"), "{text}");
    assert_eq!(rows(dir.path()), (0, Some(total)));
    let store = Store::open(dir.path()).unwrap();
    for (id, raw) in &want {
        assert!(
            store.raw(*id).unwrap().unwrap() == *raw,
            "mail {id} differs"
        );
    }
}
