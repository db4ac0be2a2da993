use redb::{Database, ReadableDatabase, ReadableTableMetadata};

use super::*;
use crate::store::digest::MailKeys;
use crate::store::keytags::KeyTexts;
use crate::store::messages::tests::fixed_summary;
use crate::store::meta::MessageMeta;
use crate::store::schema::SUMMARY_LABELS;
use crate::store::summary::{encode_binary1, encode_json, encode_labelled, BINARY, JSON, LABELLED};
use crate::store::tests::pop3;
use crate::store::{sha256_hex, write_txn, NewMail, Store, DB_FILE};

/// An older form of a summary, given its key texts.
type Old = fn(&Labels<'_>, &MessageMeta, &KeyTexts) -> Vec<u8>;

fn json(_: &Labels<'_>, m: &MessageMeta, keys: &KeyTexts) -> Vec<u8> {
    encode_json(m, keys).unwrap()
}

fn binary(_: &Labels<'_>, m: &MessageMeta, keys: &KeyTexts) -> Vec<u8> {
    encode_binary1(m, keys)
}

fn labelled(labels: &Labels<'_>, m: &MessageMeta, keys: &KeyTexts) -> Vec<u8> {
    encode_labelled(labels, m, keys).unwrap()
}

/// The messages table of `dir` as (id, row), read without a Store.
fn rows(dir: &std::path::Path) -> Vec<(u64, Vec<u8>)> {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_read().unwrap();
    let t = tx.open_table(MESSAGES).unwrap();
    t.iter()
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.value(), v.value().to_vec())
        })
        .collect()
}

/// Every row of `dir` decoded, and how many labels the store has.
fn decoded(dir: &std::path::Path) -> (Vec<MessageMeta>, u64) {
    let rows = rows(dir);
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_read().unwrap();
    let labels = Labels::read(&tx, None).unwrap();
    let all = rows
        .iter()
        .map(|(id, row)| decode(&labels, *id, row).unwrap())
        .collect();
    (all, tx.open_table(SUMMARY_LABELS).unwrap().len().unwrap())
}

/// A store of `n` fetched mails of two accounts whose summaries are
/// rewritten by `old` (JSON, the schema 12 binary form or the labelled
/// form of schema 13 with the key texts) and whose mark says the
/// conversion has not begun: a store of schema 11, 12 or 17 just
/// migrated. Returns the summaries.
fn older_store(dir: &std::path::Path, n: usize, old: Old, first: u8) -> Vec<MessageMeta> {
    let mut texts = std::collections::HashMap::new();
    {
        let store = Store::open(dir).unwrap();
        for (half, count) in [(0, n / 2), (1, n - n / 2)] {
            let a = store.create_account(|id| pop3(id, None)).unwrap();
            let raws: Vec<Vec<u8>> = (0..count)
                .map(|i| format!("Subject: {i}\r\n\r\nbody {half} {i}\r\n").into_bytes())
                .collect();
            let mails = raws
                .iter()
                .enumerate()
                .map(|(i, raw)| NewMail {
                    server_id: format!("pop3:{half}-{i}"),
                    raw: raw.clone().into(),
                    received: i as i64,
                })
                .collect();
            let ids = store
                .commit_batch(&a, mails, &fixed_summary(Some(1)))
                .unwrap();
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
    let (want, labels) = decoded(dir);
    assert_eq!((want.len(), labels), (n, 2));
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = write_txn(&db).unwrap();
    {
        let labels = Labels::write(&tx);
        let mut t = tx.open_table(MESSAGES).unwrap();
        for m in &want {
            let row = old(&labels, m, &texts[&m.id]);
            assert_eq!(row[0], first);
            // The texts give the tags the fetch kept.
            assert_eq!(&decode(&labels, m.id, &row).unwrap(), m);
            t.insert(m.id, row.as_slice()).unwrap();
        }
    }
    if first != LABELLED {
        tx.delete_table(SUMMARY_LABELS).unwrap();
        tx.delete_table(crate::store::schema::SUMMARY_LABEL_IDS)
            .unwrap();
    }
    put_u64(&tx, KEY_PACKED, 0).unwrap();
    tx.commit().unwrap();
    want
}

fn mark(db: &Database) -> Option<u64> {
    let tx = write_txn(db).unwrap();
    let m = get_u64(&tx, KEY_PACKED).unwrap();
    tx.abort().unwrap();
    m
}

#[test]
fn older_rows_are_converted_in_bounded_resumable_steps() {
    for (old, first) in [(json as Old, JSON), (binary, BINARY), (labelled, LABELLED)] {
        let dir = tempfile::tempdir().unwrap();
        let n = PACK_ROWS * 2 + 5;
        let want = older_store(dir.path(), n, old, first);
        // Labels: the first account's only, until the rows of the second
        // are converted (the labelled form had both already).
        let part = if first == LABELLED { 2 } else { 1 };
        {
            let db = Database::open(dir.path().join(DB_FILE)).unwrap();
            // One transaction, as if killed right after it: the first rows
            // are tagged, the rest as they were, and the mark says where
            // to go on.
            let tx = write_txn(&db).unwrap();
            assert_eq!(pack_some(&tx, 0).unwrap(), (PACK_ROWS as u64, false));
            tx.commit().unwrap();
            assert_eq!(mark(&db), Some(want[PACK_ROWS - 1].id));
            let tx = db.begin_read().unwrap();
            assert_eq!(tx.open_table(MESSAGES).unwrap().len().unwrap(), n as u64);
        }
        for (i, (_, row)) in rows(dir.path()).iter().enumerate() {
            assert_eq!(row[0], if i < PACK_ROWS { TAGGED } else { first });
        }
        assert_eq!(decoded(dir.path()), (want.clone(), part));
        // The next open goes on from the mark and finishes.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.message(want[n - 1].id).unwrap().unwrap(), want[n - 1]);
        drop(store);
        assert!(rows(dir.path()).iter().all(|(_, row)| row[0] == TAGGED));
        assert_eq!(decoded(dir.path()), (want, 2), "one label per account");
        // Done: the mark is gone, and an open converts and writes nothing.
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        assert_eq!(mark(&db), None);
        assert_eq!(pack_legacy(&db).unwrap(), 0);
    }
}

#[test]
fn a_damaged_row_is_left_and_the_rest_converted() {
    let dir = tempfile::tempdir().unwrap();
    let want = older_store(dir.path(), 6, binary, BINARY);
    let db = Database::open(dir.path().join(DB_FILE)).unwrap();
    let tx = write_txn(&db).unwrap();
    {
        let mut t = tx.open_table(MESSAGES).unwrap();
        t.insert(want[2].id, b"{\"id\":".as_slice()).unwrap();
        t.insert(want[4].id, [BINARY, 9].as_slice()).unwrap();
    }
    tx.commit().unwrap();
    assert_eq!(pack_legacy(&db).unwrap(), 4);
    assert_eq!(mark(&db), None);
    drop(db);
    let after = rows(dir.path());
    assert_eq!(after[2].1, b"{\"id\":");
    assert_eq!(after[4].1, [BINARY, 9]);
    let db = Database::open(dir.path().join(DB_FILE)).unwrap();
    let tx = db.begin_read().unwrap();
    let labels = Labels::read(&tx, None).unwrap();
    for i in [0, 1, 3, 5] {
        assert_eq!(after[i].1[0], TAGGED);
        assert_eq!(decode(&labels, after[i].0, &after[i].1).unwrap(), want[i]);
    }
}
