//! The numbering of schema 10 chunks (places by string) on a real redb
//! file: in bounded transactions, resumed from the mark, leaving the same
//! postings, and a write meanwhile numbers the older chunk it touches.

use std::collections::{BTreeSet, HashMap};

use redb::{Database, ReadableTable};

use super::chunk::{Chunk, Place};
use super::places::{mark, pack_legacy, pack_some, start, PACK_CHUNKS};
use super::*;
use crate::store::schema::{SEARCH_PLACES, SEARCH_PLACE_NAMES, SEARCH_POSTINGS};
use crate::store::varint;
use crate::store::write_txn;

type Posting = (String, i64, u64, String);

/// Every posting with its place spelled out, and how many chunks are
/// still named.
fn postings(db: &Database) -> (BTreeSet<Posting>, usize) {
    let tx = write_txn(db).unwrap();
    let names: HashMap<u32, String> = tx
        .open_table(SEARCH_PLACE_NAMES)
        .unwrap()
        .iter()
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.value(), v.value().to_string())
        })
        .collect();
    let mut all = BTreeSet::new();
    let mut named = 0;
    for row in tx.open_table(SEARCH_POSTINGS).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        let (w, d, i) = k.value();
        let c = Chunk::decode(d, i, v.value()).unwrap();
        named += usize::from(!c.numbered());
        for (d, i, p) in c.entries {
            let place = match &c.places[p] {
                Place::Id(n) => names[n].clone(),
                Place::Name(s) => s.clone(),
            };
            all.insert((w.to_string(), d, i, place));
        }
    }
    tx.abort().unwrap();
    (all, named)
}

/// Every chunk rewritten as schema 10 wrote it, the place tables dropped
/// and the mark of the schema step set.
fn as_schema_14(db: &Database) {
    let tx = write_txn(db).unwrap();
    {
        let names: HashMap<u32, String> = tx
            .open_table(SEARCH_PLACE_NAMES)
            .unwrap()
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value(), v.value().to_string())
            })
            .collect();
        let mut t = tx.open_table(SEARCH_POSTINGS).unwrap();
        let rows: Vec<((String, i64, u64), Vec<u8>)> = t
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                let (w, d, i) = k.value();
                ((w.to_string(), d, i), v.value().to_vec())
            })
            .collect();
        for ((w, d, i), v) in rows {
            assert_eq!(v[0], 0);
            let mut at = 1;
            let n = varint::get(&v, &mut at).unwrap();
            let mut old = Vec::new();
            varint::put(&mut old, n);
            for _ in 0..n {
                let name = &names[&(varint::get(&v, &mut at).unwrap() as u32)];
                varint::put(&mut old, name.len() as u64);
                old.extend_from_slice(name.as_bytes());
            }
            old.extend_from_slice(&v[at..]);
            t.insert((w.as_str(), d, i), old.as_slice()).unwrap();
        }
    }
    tx.delete_table(SEARCH_PLACES).unwrap();
    tx.delete_table(SEARCH_PLACE_NAMES).unwrap();
    start(&tx).unwrap();
    tx.commit().unwrap();
}

fn mail(i: u64) -> MessageMeta {
    MessageMeta {
        id: i + 1,
        date: (i / 2) as i64,
        subject: format!("wort{i} gemein"),
        account: format!("a{}", i % 3),
        contact: if i % 5 == 0 {
            "k1".into()
        } else {
            String::new()
        },
        folder: "inbox".into(),
        ..MessageMeta::default()
    }
}

#[test]
fn named_chunks_are_numbered_in_bounded_resumable_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("t.redb")).unwrap();
    let mails: Vec<MessageMeta> = (0..(PACK_CHUNKS + 700) as u64).map(mail).collect();
    let tx = write_txn(&db).unwrap();
    {
        let mut p = Postings::batch(&tx).unwrap();
        for m in &mails {
            p.add(m).unwrap();
        }
        p.finish().unwrap();
    }
    tx.commit().unwrap();
    let (want, named) = postings(&db);
    assert_eq!(named, 0);
    as_schema_14(&db);
    let (now, named) = postings(&db);
    assert!(now == want && named > PACK_CHUNKS, "{named} named chunks");

    // One transaction, as a kill after its commit leaves it.
    let tx = write_txn(&db).unwrap();
    let from = mark(&tx).unwrap().expect("the mark is set");
    assert_eq!(from, None);
    let (n, done) = pack_some(&tx, from).unwrap();
    tx.commit().unwrap();
    assert!(n > 0 && !done);
    let (mid, left) = postings(&db);
    assert!(mid == want && left > 0 && left < named, "{left} left");

    // A write meanwhile numbers the older chunk it changes ("wort999"
    // sorts last, so the first transaction left its chunk named).
    let extra = MessageMeta {
        subject: "wort999 gemein".into(),
        ..mail(mails.len() as u64)
    };
    let tx = write_txn(&db).unwrap();
    Postings::open(&tx).unwrap().add(&extra).unwrap();
    tx.commit().unwrap();

    let rest = pack_legacy(&db).unwrap();
    assert_eq!(n + rest, named as u64 - 1, "the changed chunk is numbered");
    let (after, left) = postings(&db);
    assert_eq!(left, 0);
    let mut want = want;
    for w in ["gemein", "wort999"] {
        want.insert((w.to_string(), extra.date, extra.id, place(&extra)));
    }
    assert!(after == want, "postings changed by the numbering");
    let tx = write_txn(&db).unwrap();
    assert_eq!(mark(&tx).unwrap(), None, "mark removed");
    tx.abort().unwrap();
    assert_eq!(pack_legacy(&db).unwrap(), 0, "nothing left to do");
}
