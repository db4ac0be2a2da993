//! The store's mail dictionary (schema 11): codec 2 rows, training, and
//! the repacking of older rows.

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::dict::{self, Dict, Dicts, TRAIN_MAILS};
use super::recompress::{step, EXAMINE_ROWS};
use super::tests::corpus;
use super::*;
use crate::store::messages::tests::fixed_summary;
use crate::store::schema::{get_u64, put_u64, KEY_DICT_PACKED, KEY_VERSION};
use crate::store::tests::pop3;
use crate::store::{NewMail, Store, DB_FILE};

/// Mail with the repeated headers a dictionary learns, and a varied body.
fn mail(i: usize) -> Vec<u8> {
    format!(
        "Return-Path: <news{r}@lists.example.org>\r\nReceived: from mx{r}.example.org \
         (mx{r}.example.org [192.0.2.{r}])\r\n\tby mail.example.com (Postfix) with ESMTPS id \
         {i:X}\r\n\tfor <kunde@example.com>; Tue, 14 Nov 2023 22:13:20 +0000\r\nFrom: \
         \"Vertrieb {r}\" <vertrieb{r}@example.org>\r\nTo: kunde@example.com\r\nSubject: \
         Angebot {i}\r\nMessage-ID: <{i}.{r}@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Sehr geehrte Damen und Herren,\r\n\r\n{}\r\nMit freundlichen Grüßen\r\n",
        format!("Position {i} kostet {} Euro. ", i * 7919 % 10007).repeat(20),
        r = i % 17,
    )
    .into_bytes()
}

fn trained() -> Dict {
    let mails: Vec<Vec<u8>> = (0..300).map(mail).collect();
    let heads: Vec<&[u8]> = mails.iter().map(Vec::as_slice).collect();
    Dict::trained(dict::train(&heads).unwrap()).unwrap()
}

/// A `raw_dicts` table holding `dicts`, for unpacking outside a store.
fn table_of(dir: &std::path::Path, dicts: &[&Dict]) -> Database {
    let db = Database::create(dir.join("dicts.redb")).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx.open_table(RAW_DICTS).unwrap();
        for d in dicts {
            t.insert(d.id(), d.bytes()).unwrap();
        }
    }
    tx.commit().unwrap();
    db
}

#[test]
fn every_corpus_mail_round_trips_through_the_dictionary_codec() {
    let d = trained();
    let dir = tempfile::tempdir().unwrap();
    let db = table_of(dir.path(), &[&d]);
    let tx = db.begin_read().unwrap();
    let rows = tx.open_table(RAW_DICTS).unwrap();
    let cache = Dicts::default();
    for raw in corpus().into_iter().chain((1000..1010).map(mail)) {
        let row = d.pack(&raw).unwrap();
        assert!(row.len() <= raw.len() + 1, "a row grew past the mail");
        assert!(unpack_stored(&row, &rows, &cache).unwrap() == raw);
    }
    // Mail like the samples shrinks well below plain zstd; noise is kept.
    let m = mail(5000);
    let row = d.pack(&m).unwrap();
    assert_eq!(row[0], ZSTD_DICT);
    assert!(row.len() < pack(&m).unwrap().len());
    let noise = &corpus()[corpus().len() - 4];
    assert_eq!(d.pack(noise).unwrap()[0], STORED);
}

#[test]
fn a_row_naming_an_unknown_dictionary_is_a_storage_error() {
    let d = trained();
    assert!(Dict::new(d.id() ^ 1, d.bytes().to_vec()).is_err());
    let dir = tempfile::tempdir().unwrap();
    let db = table_of(dir.path(), &[&d]);
    let tx = db.begin_read().unwrap();
    let rows = tx.open_table(RAW_DICTS).unwrap();
    let cache = Dicts::default();
    let mut row = d.pack(&mail(1)).unwrap();
    assert_eq!(row[..5], [&[ZSTD_DICT][..], &d.id().to_be_bytes()].concat());
    row[1..5].copy_from_slice(&7u32.to_be_bytes());
    let e = unpack_stored(&row, &rows, &cache).unwrap_err();
    assert!(matches!(e, Error::Storage { .. }), "{e:?}");
    assert!(e.to_string().contains("dictionary 7"), "{e}");
    // Without the table, and damaged rows: errors, no panic.
    assert!(unpack(&row).is_err());
    let good = d.pack(&mail(1)).unwrap();
    for bad in [
        vec![ZSTD_DICT],
        vec![ZSTD_DICT, 0, 0],
        good[..good.len() / 2].to_vec(),
        [&good[..5], &[0u8; 16][..]].concat(),
    ] {
        assert!(unpack_stored(&bad, &rows, &cache).is_err(), "{bad:?}");
    }
    // A damaged dictionary (zstd's magic, then garbage tables) is refused.
    let mut damaged = d.bytes().to_vec();
    for b in &mut damaged[8..200] {
        *b = 0xff;
    }
    assert!(Dict::new(2, damaged).is_err());
}

/// `n` mails in batches of `per`, from `first` on; their ids and bytes.
fn fill(store: &Store, first: usize, n: usize, per: usize) -> Vec<(u64, Vec<u8>)> {
    let a = match store.accounts().unwrap().into_iter().next() {
        Some(a) => a,
        None => store.create_account(|id| pop3(id, None)).unwrap(),
    };
    let mut out = Vec::new();
    for start in (first..first + n).step_by(per) {
        let raws: Vec<Vec<u8>> = (start..(start + per).min(first + n)).map(mail).collect();
        let batch = raws
            .iter()
            .enumerate()
            .map(|(i, raw)| NewMail {
                server_id: format!("pop3:{}", start + i),
                raw: raw.clone().into(),
                received: 5,
            })
            .collect();
        let ids = store.commit_batch(&a, batch, &fixed_summary(None)).unwrap();
        assert_eq!(ids.len(), raws.len());
        out.extend(ids.into_iter().zip(raws));
    }
    out
}

/// (codec byte of every row, dictionary ids stored, the mark).
fn census(path: &std::path::Path) -> (Vec<u8>, Vec<u32>, Option<u64>) {
    let db = Database::open(path).unwrap();
    let tx = crate::store::write_txn(&db).unwrap();
    let codecs = tx
        .open_table(RAW_PACKED)
        .unwrap()
        .iter()
        .unwrap()
        .map(|r| r.unwrap().1.value()[0])
        .collect();
    let ids = tx
        .open_table(RAW_DICTS)
        .unwrap()
        .iter()
        .unwrap()
        .map(|r| r.unwrap().0.value())
        .collect();
    let mark = get_u64(&tx, KEY_DICT_PACKED).unwrap();
    (codecs, ids, mark)
}

#[test]
fn the_batch_that_brings_enough_mail_trains_and_repacks_the_rows_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let per = 60;
    let before = (TRAIN_MAILS / per) * per;
    let (stored, plain) = {
        let store = Store::open(dir.path()).unwrap();
        let mut stored = fill(&store, 0, before, per);
        let plain: usize = stored.iter().map(|(_, m)| pack(m).unwrap().len()).sum();
        drop(store);
        let (codecs, ids, _) = census(&path);
        assert!(
            ids.is_empty() && codecs.iter().all(|c| *c == ZSTD),
            "{codecs:?}"
        );
        let store = Store::open(dir.path()).unwrap();
        stored.extend(fill(&store, before, per, per));
        for (id, raw) in &stored {
            assert!(store.raw(*id).unwrap().unwrap() == *raw, "mail {id}");
        }
        (stored, plain)
    };
    let (codecs, ids, mark) = census(&path);
    assert_eq!(ids.len(), 1);
    assert!(codecs.iter().all(|c| *c == ZSTD_DICT), "{codecs:?}");
    assert_eq!(mark, stored.last().map(|(id, _)| *id));
    // The rows before the dictionary are smaller than they were.
    let db = Database::open(&path).unwrap();
    let tx = db.begin_read().unwrap();
    let rows = tx.open_table(RAW_PACKED).unwrap();
    let now: usize = stored[..before]
        .iter()
        .map(|(id, _)| rows.get(*id).unwrap().unwrap().value().len())
        .sum();
    assert!(now < plain, "{now} >= {plain}");
    drop((rows, tx, db));
    // Later batches are packed with it and move the mark along.
    let store = Store::open(dir.path()).unwrap();
    let more = fill(&store, before + per, 10, 10);
    drop(store);
    let (codecs, _, mark) = census(&path);
    assert!(codecs.iter().all(|c| *c == ZSTD_DICT));
    assert_eq!(mark, more.last().map(|(id, _)| *id));
}

/// Rewrite a current store into the schema 10 layout: every row packed
/// without a dictionary, no `raw_dicts` table, no mark.
pub(crate) fn downgrade_to_v10(path: &std::path::Path) {
    let db = Database::open(path).unwrap();
    let tx = crate::store::write_txn(&db).unwrap();
    {
        let dicts = Dicts::default();
        let rows = tx.open_table(RAW_DICTS).unwrap();
        let mut packed = tx.open_table(RAW_PACKED).unwrap();
        let all: Vec<(u64, Vec<u8>)> = packed
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value(), unpack_stored(v.value(), &rows, &dicts).unwrap())
            })
            .collect();
        for (id, raw) in all {
            packed.insert(id, pack(&raw).unwrap().as_slice()).unwrap();
        }
        let mut meta = tx.open_table(crate::store::schema::META).unwrap();
        meta.remove(KEY_DICT_PACKED).unwrap();
    }
    tx.delete_table(RAW_DICTS).unwrap();
    put_u64(&tx, KEY_VERSION, 10).unwrap();
    tx.commit().unwrap();
}

#[test]
fn a_schema_10_store_is_trained_at_open_and_repacked_in_resumable_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let stored = {
        let store = Store::open(dir.path()).unwrap();
        let mut stored = fill(&store, 0, EXAMINE_ROWS + 300, 500);
        stored.extend(super::tests::store_corpus(&store));
        stored
    };
    downgrade_to_v10(&path);
    let total = stored.len();

    // A start killed after the schema step and one repacking transaction.
    let d = trained();
    {
        let db = Database::open(&path).unwrap();
        let tx = crate::store::write_txn(&db).unwrap();
        crate::store::migrate::migrate(&tx, 10).unwrap();
        tx.commit().unwrap();
        let tx = crate::store::write_txn(&db).unwrap();
        let s = step(&tx, &d).unwrap();
        assert!(
            s.stored_dict && !s.done && s.examined == EXAMINE_ROWS,
            "{s:?}"
        );
        tx.commit().unwrap();
    }
    let (codecs, ids, mark) = census(&path);
    assert_eq!(ids, vec![d.id()]);
    let repacked = codecs.iter().filter(|c| **c == ZSTD_DICT).count();
    assert!(repacked > 0 && repacked <= EXAMINE_ROWS, "{repacked}");
    assert_eq!(mark, Some(stored[EXAMINE_ROWS - 1].0));

    let store = Store::open(dir.path()).unwrap();
    for (id, raw) in &stored {
        assert!(store.raw(*id).unwrap().unwrap() == *raw, "mail {id}");
    }
    drop(store);
    let (codecs, _, mark) = census(&path);
    assert_eq!(codecs.len(), total);
    assert_eq!(mark, stored.iter().map(|(id, _)| *id).max());
    // Only where the dictionary makes the row smaller: noise and the
    // empty mail stay as they were.
    assert!(codecs.iter().filter(|c| **c == ZSTD_DICT).count() > EXAMINE_ROWS);
    assert!(codecs.contains(&STORED));

    // A schema 10 store trains its own dictionary at open.
    downgrade_to_v10(&path);
    let store = Store::open(dir.path()).unwrap();
    for (id, raw) in &stored {
        assert!(store.raw(*id).unwrap().unwrap() == *raw, "mail {id}");
    }
    drop(store);
    let (codecs, ids, _) = census(&path);
    assert_eq!(ids.len(), 1);
    assert!(codecs.iter().filter(|c| **c == ZSTD_DICT).count() > EXAMINE_ROWS);
}

#[test]
fn a_store_whose_dictionary_is_gone_reports_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let stored = {
        let store = Store::open(dir.path()).unwrap();
        fill(&store, 0, TRAIN_MAILS + 10, 100)
    };
    {
        let db = Database::open(&path).unwrap();
        let tx = crate::store::write_txn(&db).unwrap();
        {
            let mut t = tx.open_table(RAW_DICTS).unwrap();
            assert!(t.pop_first().unwrap().is_some());
            assert!(t.is_empty().unwrap());
        }
        tx.commit().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let e = store.raw(stored[0].0).unwrap_err();
    assert!(matches!(e, Error::Storage { .. }), "{e:?}");
    assert!(e.to_string().contains("does not hold"), "{e}");
    drop(store);
    // Too little mail of codec 0 or 1 is left to train another at open.
    assert!(census(&path).1.is_empty());
}
