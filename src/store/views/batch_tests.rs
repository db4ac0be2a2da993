//! `super::lists` in a batch: filing a batch in memory files exactly the
//! entries and writes exactly the counter rows that filing mail by mail
//! does, on a real redb file. (The chunks may be cut differently.)

use redb::{Database, ReadableDatabase, ReadableTable};

use crate::store::meta::MessageMeta;
use crate::store::schema::{VIEW_ARRAYS, VIEW_CHUNKS, VIEW_TOTALS};
use crate::store::views::tests::chunked;
use crate::store::views::Writer;
use crate::store::write_txn;

type Rows = Vec<(String, Vec<u8>)>;

fn mail(id: u64, date: i64, contact: &str) -> MessageMeta {
    MessageMeta {
        id,
        date,
        account: format!("a{}", id % 3),
        tenant: "t1".into(),
        folder: "inbox".into(),
        subject: "Angebot".into(),
        contact: contact.into(),
        ..MessageMeta::default()
    }
}

/// Every row of the index and both counter tables, printed.
fn rows(db: &Database) -> Rows {
    let tx = db.begin_read().unwrap();
    let mut out = Rows::new();
    let t = tx.open_table(VIEW_CHUNKS).unwrap();
    for e in chunked(&t) {
        out.push((format!("{e:?}"), Vec::new()));
    }
    let t = tx.open_table(VIEW_TOTALS).unwrap();
    for r in t.iter().unwrap() {
        let (k, v) = r.unwrap();
        out.push((format!("{:?}", k.value()), v.value().to_le_bytes().to_vec()));
    }
    let t = tx.open_table(VIEW_ARRAYS).unwrap();
    for r in t.iter().unwrap() {
        let (k, v) = r.unwrap();
        out.push((format!("{:?}", k.value()), v.value().to_vec()));
    }
    out
}

/// Adds (`true`) and removals (`false`) of mails, owner "" (public).
fn apply(db: &Database, ops: &[(bool, MessageMeta)], batch: bool) {
    let run = |ops: &[(bool, MessageMeta)]| {
        let tx = write_txn(db).unwrap();
        {
            let mut w = match batch {
                true => Writer::batch(&tx).unwrap(),
                false => Writer::open(&tx).unwrap(),
            };
            for (add, m) in ops {
                match add {
                    true => w.add(m, Some("")).unwrap(),
                    false => w.remove(m, Some("")).unwrap(),
                }
            }
            w.finish().unwrap();
        }
        tx.commit().unwrap();
    };
    match batch {
        true => run(ops),
        false => ops.iter().for_each(|op| run(std::slice::from_ref(op))),
    }
}

#[test]
fn a_batch_counts_the_rows_of_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.redb"), dir.path().join("b.redb"));
    // Dates close together (shared buckets) and far apart.
    let date = |i: u64| 1_700_000_000 + (i as i64 % 40) * 300 + (i as i64 / 40) * 9_000_000;
    let before: Vec<_> = (1..200).map(|i| (true, mail(i, date(i), ""))).collect();
    {
        let db = Database::create(&a).unwrap();
        apply(&db, &before, true);
    }
    std::fs::copy(&a, &b).unwrap();
    let mut ops: Vec<_> = (200..500).map(|i| (true, mail(i, date(i), ""))).collect();
    for i in (1..200).step_by(4) {
        // Out again (counts drop, arrays and rows empty), some assigned.
        ops.push((false, mail(i, date(i), "")));
        if i % 8 == 1 {
            ops.push((true, mail(i, date(i), "K-1")));
        }
    }
    ops.push((false, mail(9_999, 5, "")));
    let (da, db) = (Database::open(&a).unwrap(), Database::open(&b).unwrap());
    apply(&da, &ops, false);
    apply(&db, &ops, true);
    let (ra, rb) = (rows(&da), rows(&db));
    assert!(ra.len() > 500, "{}", ra.len());
    assert_eq!(ra, rb, "batched counters differ from one-by-one counters");
}
