//! The packed word index on a real redb file: chunks split when full,
//! empty when their postings go, follow a message's place and date, keep
//! many mails of one date apart, and the conversion from the schema 9 rows
//! leaves the same postings.

use redb::{Database, ReadableDatabase, ReadableTableMetadata};

use super::chunk::{Chunk, CHUNK_MAX};
use super::places::PlaceCache;
use super::read::{Candidates, Posting};
use super::*;
use crate::store::schema::{SEARCH_INDEX, SEARCH_POSTINGS};
use crate::store::write_txn;

fn fresh() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("t.redb")).unwrap();
    (dir, db)
}

fn mail(id: u64, date: i64, subject: &str) -> MessageMeta {
    MessageMeta {
        id,
        date,
        subject: subject.into(),
        account: "a1".into(),
        folder: "inbox".into(),
        ..MessageMeta::default()
    }
}

fn add(db: &Database, mails: &[MessageMeta]) {
    let tx = write_txn(db).unwrap();
    {
        let mut p = Postings::open(&tx).unwrap();
        for m in mails {
            p.add(m).unwrap();
        }
    }
    tx.commit().unwrap();
}

fn remove(db: &Database, mails: &[MessageMeta]) {
    let tx = write_txn(db).unwrap();
    {
        let mut p = Postings::open(&tx).unwrap();
        for m in mails {
            p.remove(m).unwrap();
        }
    }
    tx.commit().unwrap();
}

/// Every posting of words starting with `prefix` in `since..=until`.
fn found(db: &Database, prefix: &str, since: i64, until: i64) -> Vec<Posting> {
    let tx = db.begin_read().unwrap();
    let places = PlaceCache::default();
    let mut c = Candidates::new(&tx, &places, prefix, since, until)
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    while let Some(p) = c.next_posting().unwrap() {
        out.push(p);
    }
    out
}

/// The chunks of `word`: (key, postings), oldest first.
fn chunks(db: &Database, word: &str) -> Vec<((i64, u64), usize)> {
    let tx = db.begin_read().unwrap();
    let t = tx.open_table(SEARCH_POSTINGS).unwrap();
    t.range((word, i64::MIN, 0u64)..=(word, i64::MAX, u64::MAX))
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            let (_, d, i) = k.value();
            ((d, i), Chunk::decode(d, i, v.value()).unwrap().len())
        })
        .collect()
}

/// Newest first, as a search returns them.
fn want(mails: &[MessageMeta]) -> Vec<Posting> {
    let mut w: Vec<Posting> = mails.iter().map(|m| (m.date, m.id, place(m))).collect();
    w.sort_by_key(|p| std::cmp::Reverse((p.0, p.1)));
    w
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

#[test]
fn a_full_chunk_splits_and_date_order_keeps_older_chunks_full() {
    let (_d, db) = fresh();
    let n = CHUNK_MAX * 3 + 5;
    let mails: Vec<MessageMeta> = (0..n as u64)
        .map(|i| mail(i + 1, 1_000 + i as i64 * 60, "com"))
        .collect();
    for m in &mails {
        add(&db, std::slice::from_ref(m));
    }
    let c = chunks(&db, "com");
    assert_eq!(
        c.iter().map(|x| x.1).collect::<Vec<_>>(),
        vec![CHUNK_MAX, CHUNK_MAX, CHUNK_MAX, 5],
        "appending fills chunks: {c:?}"
    );
    assert_eq!(found(&db, "com", i64::MIN, i64::MAX), want(&mails));
    // Out of order: every chunk stays within the bound, nothing is lost.
    let (_d2, db2) = fresh();
    let mut rng = Rng(99);
    let mails: Vec<MessageMeta> = (0..(CHUNK_MAX * 5) as u64)
        .map(|i| mail(i + 1, rng.next(100_000) as i64, "com"))
        .collect();
    add(&db2, &mails);
    let c = chunks(&db2, "com");
    assert!(c.len() >= 5, "{c:?}");
    assert!(c.iter().all(|x| x.1 >= 1 && x.1 <= CHUNK_MAX), "{c:?}");
    assert_eq!(found(&db2, "com", i64::MIN, i64::MAX), want(&mails));
    // A date window reads only its postings.
    let w: Vec<Posting> = want(&mails)
        .into_iter()
        .filter(|p| (20_000..=30_000).contains(&p.0))
        .collect();
    assert_eq!(found(&db2, "com", 20_000, 30_000), w);
}

#[test]
fn removals_shrink_and_finally_delete_a_chunk() {
    let (_d, db) = fresh();
    let mails: Vec<MessageMeta> = (0..10u64)
        .map(|i| mail(i + 1, 500 - i as i64, "angebot rechnung"))
        .collect();
    add(&db, &mails);
    assert_eq!(chunks(&db, "angebot"), vec![((491, 10), 10)]);
    // The key posting (the oldest) goes: the chunk is keyed by the next.
    remove(&db, &mails[9..]);
    assert_eq!(chunks(&db, "angebot"), vec![((492, 9), 9)]);
    assert_eq!(found(&db, "angeb", i64::MIN, i64::MAX), want(&mails[..9]));
    // Removing a posting that is not there changes nothing.
    remove(&db, &mails[9..]);
    assert_eq!(chunks(&db, "angebot").len(), 1);
    remove(&db, &mails[..9]);
    assert!(chunks(&db, "angebot").is_empty());
    assert!(chunks(&db, "rechnung").is_empty());
    let tx = db.begin_read().unwrap();
    assert_eq!(tx.open_table(SEARCH_POSTINGS).unwrap().len().unwrap(), 0);
    drop(tx);
    assert!(found(&db, "angebot", i64::MIN, i64::MAX).is_empty());
}

#[test]
fn a_change_of_place_or_date_moves_the_posting() {
    let (_d, db) = fresh();
    let mails: Vec<MessageMeta> = (0..300u64)
        .map(|i| mail(i + 1, 10_000 + i as i64, "kunde"))
        .collect();
    add(&db, &mails);
    let before = mails[150].clone();
    let mut after = before.clone();
    after.contact = "K-1".into();
    after.folder = "archive".into();
    after.date = 5;
    let tx = write_txn(&db).unwrap();
    Postings::open(&tx)
        .unwrap()
        .change(&before, &after)
        .unwrap();
    tx.commit().unwrap();
    let mut now = mails.clone();
    now[150] = after.clone();
    let got = found(&db, "kunde", i64::MIN, i64::MAX);
    assert_eq!(got, want(&now));
    assert_eq!(got.last(), Some(&(5, 151, "ca1\u{1f}archive".to_string())));
    assert_eq!(chunks(&db, "kunde").first().map(|c| c.0), Some((5, 151)));
    // A place change alone (same date) re-places the one posting.
    let mut again = after.clone();
    again.contact.clear();
    let tx = write_txn(&db).unwrap();
    Postings::open(&tx).unwrap().change(&after, &again).unwrap();
    tx.commit().unwrap();
    now[150] = again;
    assert_eq!(found(&db, "kunde", i64::MIN, i64::MAX), want(&now));
}

#[test]
fn many_mails_of_one_date_stay_apart_by_id() {
    let (_d, db) = fresh();
    let mut ids: Vec<u64> = (1..=700).collect();
    let mut rng = Rng(5);
    for i in (1..ids.len()).rev() {
        ids.swap(i, rng.next(i as u64 + 1) as usize);
    }
    let mails: Vec<MessageMeta> = ids.iter().map(|&id| mail(id, 42, "gleich")).collect();
    add(&db, &mails);
    let got = found(&db, "gleich", 42, 42);
    assert_eq!(got.len(), 700);
    assert_eq!(got, want(&mails));
    assert!(found(&db, "gleich", 43, i64::MAX).is_empty());
    assert!(found(&db, "gleich", i64::MIN, 41).is_empty());
    let c = chunks(&db, "gleich");
    assert!(c.iter().all(|x| x.1 <= CHUNK_MAX) && c.len() >= 700 / CHUNK_MAX);
    remove(&db, &mails[..350]);
    assert_eq!(found(&db, "gleich", 42, 42), want(&mails[350..]));
}

#[test]
fn schema_9_rows_are_searched_then_packed_into_the_same_postings() {
    let (_d, db) = fresh();
    let mut rng = Rng(3);
    let words = ["alpha", "alpine", "beta", "com"];
    let mails: Vec<MessageMeta> = (0..2_000u64)
        .map(|i| {
            let mut m = mail(i + 1, rng.next(5_000) as i64, words[(i % 4) as usize]);
            m.subject = format!("{} com", m.subject);
            m.account = format!("a{}", i % 3);
            m
        })
        .collect();
    // The old layout: one row per posting.
    let tx = write_txn(&db).unwrap();
    {
        let mut old = tx.open_table(SEARCH_INDEX).unwrap();
        for m in &mails[..1_500] {
            for t in tokens(m) {
                old.insert((t.as_str(), m.date, m.id), place(m).as_str())
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    // New mail lands packed while old rows remain; a deletion finds its
    // posting in either table.
    add(&db, &mails[1_500..]);
    remove(&db, &mails[..10]);
    remove(&db, &mails[1_990..]);
    let live = &mails[10..1_990];
    let alp: Vec<MessageMeta> = live
        .iter()
        .filter(|m| m.subject.starts_with("alp"))
        .cloned()
        .collect();
    assert_eq!(found(&db, "alp", i64::MIN, i64::MAX), want(&alp));
    assert_eq!(found(&db, "com", 100, 4_000), {
        let w: Vec<MessageMeta> = live
            .iter()
            .filter(|m| (100..=4_000).contains(&m.date))
            .cloned()
            .collect();
        want(&w)
    });
    let moved = pack::pack_legacy(&db).unwrap();
    let old: usize = mails[10..1_500].iter().map(|m| tokens(m).len()).sum();
    assert_eq!(moved, old as u64);
    let tx = db.begin_read().unwrap();
    let tables: Vec<String> = tx
        .list_tables()
        .unwrap()
        .map(|h| redb::TableHandle::name(&h).to_string())
        .collect();
    assert!(!tables.contains(&"search_index".to_string()), "{tables:?}");
    drop(tx);
    assert_eq!(found(&db, "alp", i64::MIN, i64::MAX), want(&alp));
    assert_eq!(found(&db, "com", i64::MIN, i64::MAX), want(live));
    assert_eq!(pack::pack_legacy(&db).unwrap(), 0, "nothing left to do");
}

#[test]
fn a_first_page_decodes_only_the_newest_chunks() {
    let (_d, db) = fresh();
    let mails: Vec<MessageMeta> = (0..(CHUNK_MAX * 3) as u64)
        .map(|i| mail(i + 1, 1_000 + i as i64, "com"))
        .collect();
    for m in &mails {
        add(&db, std::slice::from_ref(m));
    }
    // Damage the oldest chunk: a search that decoded it would fail.
    let oldest = chunks(&db, "com")[0].0;
    let tx = write_txn(&db).unwrap();
    tx.open_table(SEARCH_POSTINGS)
        .unwrap()
        .insert(("com", oldest.0, oldest.1), [0u8].as_slice())
        .unwrap();
    tx.commit().unwrap();
    let tx = db.begin_read().unwrap();
    let places = PlaceCache::default();
    let mut c = Candidates::new(&tx, &places, "com", i64::MIN, i64::MAX)
        .unwrap()
        .unwrap();
    for want in want(&mails).iter().take(CHUNK_MAX + 10) {
        assert_eq!(c.next_posting().unwrap().as_ref(), Some(want));
    }
    loop {
        match c.next_posting() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("reading on must reach the damaged chunk"),
            Err(_) => break,
        }
    }
}

#[test]
fn a_place_number_without_its_place_is_a_storage_error() {
    let (_d, db) = fresh();
    add(&db, &[mail(1, 10, "zahl")]);
    assert_eq!(found(&db, "zahl", i64::MIN, i64::MAX).len(), 1);
    let tx = write_txn(&db).unwrap();
    tx.open_table(SEARCH_POSTINGS)
        .unwrap()
        .insert(("zahl", 10, 1), [0u8, 1, 99].as_slice())
        .unwrap();
    tx.commit().unwrap();
    let tx = db.begin_read().unwrap();
    let places = PlaceCache::default();
    let e = match Candidates::new(&tx, &places, "zahl", i64::MIN, i64::MAX) {
        Err(e) => e,
        Ok(Some(mut c)) => c.next_posting().unwrap_err(),
        Ok(None) => panic!("one word, not too many"),
    };
    assert!(e.to_string().contains("unknown place 99"), "{e}");
}
