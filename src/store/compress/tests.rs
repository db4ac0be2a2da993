use redb::{Database, ReadableTable, ReadableTableMetadata};

use super::*;
use crate::store::messages::tests::fixed_summary;
use crate::store::schema::{get_u64, put_u64, KEY_VERSION, SCHEMA_VERSION};
use crate::store::tests::pop3;
use crate::store::{NewMail, Store, DB_FILE};

/// Every mail of tests/fixtures (the hostile ones: NUL bytes, 8-bit
/// headers, the empty mail) and a few made here: incompressible bytes, a
/// long text, bare CR and LF, a mail of one byte.
fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut mails: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(mails.len() >= 9, "the fixtures are missing");
    let mut x: u32 = 0x9e37_79b9;
    let noise: Vec<u8> = (0..3000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    mails.push(noise);
    mails.push(b"From: a@b\r\n\r\n..dot\n.\r\nbare\rcr \xff\xfe\x00 end".to_vec());
    mails.push("Subject: long\r\n\r\nzeile\r\n".repeat(20_000).into_bytes());
    mails.push(b"x".to_vec());
    assert!(
        mails.iter().any(Vec::is_empty),
        "the empty fixture is missing"
    );
    mails
}

#[test]
fn pack_round_trips_every_corpus_mail() {
    for raw in corpus() {
        let row = pack(&raw).unwrap();
        assert!(row.len() <= raw.len() + 1, "a row grew past the mail");
        assert!(unpack(&row).unwrap() == raw);
    }
    // Text shrinks; noise is kept as it is.
    let text = "Subject: long\r\n\r\nzeile\r\n".repeat(200).into_bytes();
    assert_eq!(pack(&text).unwrap()[0], ZSTD);
    let noise = &corpus()[corpus().len() - 4];
    assert_eq!(pack(noise).unwrap()[0], STORED);
}

#[test]
fn damaged_rows_are_errors_not_guesses() {
    let text = "Subject: x\r\n\r\nbody body body body body\r\n".repeat(50);
    let row = pack(text.as_bytes()).unwrap();
    for bad in [
        Vec::new(),
        vec![7, 1, 2, 3],
        row[..row.len() / 2].to_vec(),
        [&[ZSTD][..], &[0u8; 16][..]].concat(),
    ] {
        assert!(unpack(&bad).is_err(), "{bad:?} unpacked");
    }
    // A frame header that claims more than MAX_RAW is refused before
    // anything is allocated: magic, descriptor (8-byte content size, no
    // single segment), window descriptor, size (RFC 8878 3.1.1.1).
    let mut claim = 0xFD2F_B528u32.to_le_bytes().to_vec();
    claim.extend_from_slice(&[0xC0, 0x50]);
    claim.extend_from_slice(&(MAX_RAW + 1).to_le_bytes());
    assert_eq!(
        zstd::zstd_safe::get_frame_content_size(&claim).ok(),
        Some(Some(MAX_RAW + 1))
    );
    let row = [&[ZSTD][..], &claim[..]].concat();
    assert!(unpack(&row).is_err());
}

fn store_corpus(store: &Store) -> Vec<(u64, Vec<u8>)> {
    let a = store.create_account(|id| pop3(id, None)).unwrap();
    let raws = corpus();
    let batch = raws
        .iter()
        .enumerate()
        .map(|(i, raw)| NewMail {
            server_id: format!("pop3:{i}"),
            raw: raw.clone().into(),
            received: 5,
        })
        .collect();
    let ids = store.commit_batch(&a, batch, &fixed_summary(None)).unwrap();
    // The content key folds equal mails into one message; the corpus has none.
    assert_eq!(ids.len(), raws.len());
    ids.into_iter().zip(raws).collect()
}

#[test]
fn every_corpus_mail_is_byte_exact_after_store_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let stored = {
        let store = Store::open(dir.path()).unwrap();
        let stored = store_corpus(&store);
        for (id, raw) in &stored {
            assert!(store.raw(*id).unwrap().unwrap() == *raw, "mail {id}");
        }
        stored
    };
    let store = Store::open(dir.path()).unwrap();
    for (id, raw) in &stored {
        assert!(store.raw(*id).unwrap().unwrap() == *raw, "mail {id}");
    }
}

/// Rewrite a current store into the schema 7 layout: raw bytes unpacked in
/// `raw`, no `raw_packed` table.
pub(crate) fn downgrade_to_v7(path: &std::path::Path) {
    let db = Database::open(path).unwrap();
    let tx = crate::store::write_txn(&db).unwrap();
    {
        let packed = tx.open_table(RAW_PACKED).unwrap();
        let mut raw = tx.open_table(RAW).unwrap();
        for row in packed.iter().unwrap() {
            let (k, v) = row.unwrap();
            raw.insert(k.value(), unpack(v.value()).unwrap().as_slice())
                .unwrap();
        }
    }
    tx.delete_table(RAW_PACKED).unwrap();
    put_u64(&tx, KEY_VERSION, 7).unwrap();
    tx.commit().unwrap();
}

fn table_lens(path: &std::path::Path) -> (u64, u64, Option<u64>) {
    let db = Database::open(path).unwrap();
    let tx = crate::store::write_txn(&db).unwrap();
    let legacy = tx.open_table(RAW).unwrap().len().unwrap();
    let packed = tx.open_table(RAW_PACKED).unwrap().len().unwrap();
    let version = get_u64(&tx, KEY_VERSION).unwrap();
    (legacy, packed, version)
}

#[test]
fn schema_7_store_is_packed_in_bounded_steps_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let stored = {
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        // More than one transaction's worth, plus the corpus.
        let batch = (0..PACK_ROWS + 123)
            .map(|i| NewMail {
                server_id: format!("pop3:m{i}"),
                raw: format!("Subject: {i}\r\n\r\nText {i} text text\r\n")
                    .into_bytes()
                    .into(),
                received: 5,
            })
            .collect();
        let ids = store.commit_batch(&a, batch, &fixed_summary(None)).unwrap();
        let mut stored: Vec<(u64, Vec<u8>)> = ids
            .into_iter()
            .map(|id| (id, store.raw(id).unwrap().unwrap()))
            .collect();
        stored.extend(store_corpus(&store));
        stored
    };
    let total = stored.len() as u64;
    downgrade_to_v7(&path);
    assert_eq!(table_lens(&path), (total, 0, Some(7)));

    // A start killed after the schema step and one packing transaction:
    // the same two commits, then no more.
    {
        let db = Database::open(&path).unwrap();
        let tx = crate::store::write_txn(&db).unwrap();
        crate::store::migrate::migrate(&tx, 7).unwrap();
        tx.commit().unwrap();
        let tx = crate::store::write_txn(&db).unwrap();
        assert_eq!(pack_some(&tx).unwrap(), (PACK_ROWS, false));
        tx.commit().unwrap();
    }
    let left = total - PACK_ROWS as u64;
    assert_eq!(
        table_lens(&path),
        (left, PACK_ROWS as u64, Some(SCHEMA_VERSION))
    );

    let store = Store::open(dir.path()).unwrap();
    for (id, raw) in &stored {
        assert!(store.raw(*id).unwrap().unwrap() == *raw, "mail {id}");
    }
    drop(store);
    assert_eq!(table_lens(&path), (0, total, Some(SCHEMA_VERSION)));
    let store = Store::open(dir.path()).unwrap();
    for (id, raw) in &stored {
        assert!(store.raw(*id).unwrap().unwrap() == *raw, "mail {id}");
    }
}

#[test]
fn half_packed_store_reads_and_deletes_both_kinds_of_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let (a_id, ids) = {
        let store = Store::open(dir.path()).unwrap();
        let ids: Vec<u64> = store_corpus(&store).into_iter().map(|(id, _)| id).collect();
        (store.accounts().unwrap()[0].id.clone(), ids)
    };
    downgrade_to_v7(&path);
    {
        let db = Database::open(&path).unwrap();
        let tx = crate::store::write_txn(&db).unwrap();
        crate::store::migrate::migrate(&tx, 7).unwrap();
        tx.commit().unwrap();
    }
    // Reads before packing: the daemon's `reopen` after an I/O error does
    // not pack, so both tables must serve.
    let db = Database::open(&path).unwrap();
    let rtx = redb::ReadableDatabase::begin_read(&db).unwrap();
    assert!(read(&rtx, ids[0]).unwrap().is_some());
    drop(rtx);
    let tx = crate::store::write_txn(&db).unwrap();
    remove(&tx, ids[0]).unwrap();
    tx.commit().unwrap();
    let rtx = redb::ReadableDatabase::begin_read(&db).unwrap();
    assert!(read(&rtx, ids[0]).unwrap().is_none());
    drop(rtx);
    drop(db);
    let store = Store::open(dir.path()).unwrap();
    let n = store.count_messages(&a_id).unwrap();
    assert_eq!(n as usize, ids.len());
    assert!(store.raw(ids[1]).unwrap().is_some());
}
