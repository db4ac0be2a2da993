use redb::{Database, ReadableDatabase, ReadableTableMetadata};

use super::*;
use crate::store::messages::tests::fixed_summary;
use crate::store::meta::MessageMeta;
use crate::store::schema::SUMMARY_LABELS;
use crate::store::summary::{encode_binary1, BINARY, JSON};
use crate::store::tests::pop3;
use crate::store::{write_txn, NewMail, Store, DB_FILE};

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
/// rewritten by `old` (JSON or the schema 12 binary form) and whose mark
/// says the conversion has not begun: a store of schema 11 or 12 just
/// migrated. Returns the summaries.
fn older_store(
    dir: &std::path::Path,
    n: usize,
    old: fn(&MessageMeta) -> Vec<u8>,
) -> Vec<MessageMeta> {
    {
        let store = Store::open(dir).unwrap();
        for (half, count) in [(0, n / 2), (1, n - n / 2)] {
            let a = store.create_account(|id| pop3(id, None)).unwrap();
            let mails = (0..count)
                .map(|i| NewMail {
                    server_id: format!("pop3:{half}-{i}"),
                    raw: format!("Subject: {i}\r\n\r\nbody {half} {i}\r\n")
                        .into_bytes()
                        .into(),
                    received: i as i64,
                })
                .collect();
            store
                .commit_batch(&a, mails, &fixed_summary(Some(1)))
                .unwrap();
        }
    }
    let (want, labels) = decoded(dir);
    assert_eq!((want.len(), labels), (n, 2));
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = write_txn(&db).unwrap();
    {
        let mut t = tx.open_table(MESSAGES).unwrap();
        for m in &want {
            t.insert(m.id, old(m).as_slice()).unwrap();
        }
    }
    tx.delete_table(SUMMARY_LABELS).unwrap();
    tx.delete_table(crate::store::schema::SUMMARY_LABEL_IDS)
        .unwrap();
    put_u64(&tx, KEY_PACKED, 0).unwrap();
    tx.commit().unwrap();
    want
}

fn json(m: &MessageMeta) -> Vec<u8> {
    serde_json::to_vec(m).unwrap()
}

fn mark(db: &Database) -> Option<u64> {
    let tx = write_txn(db).unwrap();
    let m = get_u64(&tx, KEY_PACKED).unwrap();
    tx.abort().unwrap();
    m
}

#[test]
fn older_rows_are_converted_in_bounded_resumable_steps() {
    for (old, first) in [
        (json as fn(&MessageMeta) -> Vec<u8>, JSON),
        (encode_binary1, BINARY),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let n = PACK_ROWS * 2 + 5;
        let want = older_store(dir.path(), n, old);
        {
            let db = Database::open(dir.path().join(DB_FILE)).unwrap();
            // One transaction, as if killed right after it: the first rows
            // are labelled, the rest as they were, and the mark says where
            // to go on.
            let tx = write_txn(&db).unwrap();
            assert_eq!(pack_some(&tx, 0).unwrap(), (PACK_ROWS as u64, false));
            tx.commit().unwrap();
            assert_eq!(mark(&db), Some(want[PACK_ROWS - 1].id));
            let tx = db.begin_read().unwrap();
            assert_eq!(tx.open_table(MESSAGES).unwrap().len().unwrap(), n as u64);
        }
        for (i, (_, row)) in rows(dir.path()).iter().enumerate() {
            assert_eq!(row[0], if i < PACK_ROWS { LABELLED } else { first });
        }
        assert_eq!(decoded(dir.path()), (want.clone(), 1));
        // The next open goes on from the mark and finishes.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.message(want[n - 1].id).unwrap().unwrap(), want[n - 1]);
        drop(store);
        assert!(rows(dir.path()).iter().all(|(_, row)| row[0] == LABELLED));
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
    let want = older_store(dir.path(), 6, encode_binary1);
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
        assert_eq!(after[i].1[0], LABELLED);
        assert_eq!(decode(&labels, after[i].0, &after[i].1).unwrap(), want[i]);
    }
}
