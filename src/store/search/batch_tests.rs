//! A batch of postings kept in memory (`Postings::batch`, `super::cache`)
//! writes exactly the rows that adding and removing the same mails one
//! by one writes, on a real redb file: in date order, out of order, on
//! one date, across chunk splits, over chunks written before, and past
//! the cache's limit of noted rows.

use redb::{Database, ReadableDatabase};

use super::cache::NOTE_MAX;
use super::chunk::CHUNK_MAX;
use super::*;
use crate::store::schema::{SEARCH_PLACES, SEARCH_POSTINGS};
use crate::store::write_txn;

type Rows = Vec<((String, i64, u64), Vec<u8>)>;

fn mail(id: u64, date: i64, subject: &str, account: &str) -> MessageMeta {
    MessageMeta {
        id,
        date,
        subject: subject.into(),
        from: "Kunde <info@kunde.example>".into(),
        to: vec!["crm@example.org".into()],
        account: account.into(),
        folder: "inbox".into(),
        ..MessageMeta::default()
    }
}

/// Every row of the word index, bytes included, then its place numbers.
fn rows(db: &Database) -> Rows {
    let tx = db.begin_read().unwrap();
    let t = tx.open_table(SEARCH_POSTINGS).unwrap();
    let mut out: Rows = t
        .iter()
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            let (w, d, i) = k.value();
            ((w.to_string(), d, i), v.value().to_vec())
        })
        .collect();
    let places = tx.open_table(SEARCH_PLACES).unwrap();
    for r in places.iter().unwrap() {
        let (k, v) = r.unwrap();
        out.push((
            (format!("place {}", k.value()), 0, v.value().into()),
            Vec::new(),
        ));
    }
    out
}

enum Op {
    Add(MessageMeta),
    Remove(MessageMeta),
}

/// `ops` one by one, each in a transaction of its own (as before batches).
fn one_by_one(db: &Database, ops: &[Op]) {
    for op in ops {
        let tx = write_txn(db).unwrap();
        {
            let mut p = Postings::open(&tx).unwrap();
            match op {
                Op::Add(m) => p.add(m).unwrap(),
                Op::Remove(m) => p.remove(m).unwrap(),
            }
        }
        tx.commit().unwrap();
    }
}

/// `ops` in one transaction, chunks kept until `finish`.
fn batched(db: &Database, ops: &[Op]) {
    let tx = write_txn(db).unwrap();
    {
        let mut p = Postings::batch(&tx).unwrap();
        for op in ops {
            match op {
                Op::Add(m) => p.add(m).unwrap(),
                Op::Remove(m) => p.remove(m).unwrap(),
            }
        }
        p.finish().unwrap();
    }
    tx.commit().unwrap();
}

/// Two copies of a store holding `before`, then `ops` applied to one by
/// one and to the other as a batch: the rows must be the same.
fn same_rows(before: &[Op], ops: &[Op]) -> Rows {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.redb"), dir.path().join("b.redb"));
    {
        let db = Database::create(&a).unwrap();
        batched(&db, before);
    }
    std::fs::copy(&a, &b).unwrap();
    let (da, db) = (Database::open(&a).unwrap(), Database::open(&b).unwrap());
    one_by_one(&da, ops);
    batched(&db, ops);
    let (ra, rb) = (rows(&da), rows(&db));
    assert!(ra.len() > 1, "the test must write rows");
    assert_eq!(ra, rb, "batched rows differ from one-by-one rows");
    ra
}

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const SUBJECTS: &[&str] = &["Re: Angebot", "AW: Rechnung 2024", "Angebot Nr", "re"];

fn adds(ids: std::ops::Range<u64>, mut date: impl FnMut(u64) -> i64) -> Vec<Op> {
    ids.map(|i| {
        let s = SUBJECTS[(i % 4) as usize];
        let acct = if i % 7 == 0 { "a2" } else { "a1" };
        Op::Add(mail(i, date(i), &format!("{s} {i}"), acct))
    })
    .collect()
}

#[test]
fn a_batch_in_date_order_writes_the_rows_of_one_by_one() {
    let n = CHUNK_MAX as u64 * 3 + 17;
    // Into an empty index, then onto chunks a batch wrote before.
    let r = same_rows(&[], &adds(1..n, |i| 1_000 + i as i64 * 60));
    // "kunde" (the sender) is in every mail: its chunks split when full.
    assert!(r.iter().filter(|x| x.0 .0 == "kunde").count() >= 3);
    same_rows(
        &adds(1..n, |i| 1_000 + i as i64 * 60),
        &adds(n..n * 2, |i| 1_000 + i as i64 * 60),
    );
}

#[test]
fn a_batch_out_of_order_and_on_one_date_writes_the_rows_of_one_by_one() {
    let mut rng = Rng(17);
    let dates: Vec<i64> = (0..2_000).map(|_| rng.next(50_000) as i64).collect();
    let before = adds(1..700, |i| dates[i as usize]);
    same_rows(&before, &adds(700..1_400, |i| dates[i as usize]));
    // Many mails of one date, ids in random order.
    let mut ids: Vec<u64> = (1..=600).collect();
    for i in (1..ids.len()).rev() {
        ids.swap(i, rng.next(i as u64 + 1) as usize);
    }
    let one_date: Vec<Op> = ids
        .iter()
        .map(|&id| Op::Add(mail(id, 42, "gleich", "a1")))
        .collect();
    same_rows(&[], &one_date);
}

#[test]
fn removals_and_re_adds_in_a_batch_write_the_rows_of_one_by_one() {
    let n = CHUNK_MAX as u64 * 2 + 9;
    let date = |i: u64| 5_000 - i as i64 * 3;
    let before = adds(1..n, date);
    let mut ops = Vec::new();
    for i in (1..n).step_by(3) {
        // The key posting of a chunk goes too: its chunk is re-keyed.
        let s = SUBJECTS[(i % 4) as usize];
        let acct = if i % 7 == 0 { "a2" } else { "a1" };
        let m = mail(i, date(i), &format!("{s} {i}"), acct);
        ops.push(Op::Remove(m.clone()));
        if i % 2 == 0 {
            let mut moved = m;
            moved.date = date(i) + 1;
            moved.contact = "K-1".into();
            ops.push(Op::Add(moved));
        }
    }
    ops.extend(adds(n..n + 50, |i| i as i64));
    same_rows(&before, &ops);
}

#[test]
fn a_word_of_more_chunks_than_the_cache_notes_writes_the_rows_of_one_by_one() {
    // More chunks above the batch's dates than the cache notes: it falls
    // back to a lookup per posting.
    let n = (CHUNK_MAX * (NOTE_MAX + 3)) as u64;
    let before = adds(1..n, |i| 10_000 + i as i64);
    let mut rng = Rng(5);
    let ops = adds(n..n + 300, |_| rng.next(10_000 + n) as i64);
    same_rows(&before, &ops);
}
