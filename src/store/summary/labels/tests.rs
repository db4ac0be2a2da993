use redb::{Database, ReadableDatabase};

use super::*;
use crate::store::summary::tests::{memory, typical};
use crate::store::summary::{decode, encode};

fn label(account: &str, name: &str) -> Label {
    Label {
        account: account.into(),
        tenant: "t1".into(),
        name: name.into(),
        address: format!("{account}@example.org"),
    }
}

/// `labels` added in one committed write transaction; their numbers.
fn add(db: &Database, labels: &[Label]) -> Vec<u32> {
    let tx = db.begin_write().unwrap();
    let ids = {
        let l = Labels::write(&tx);
        labels.iter().map(|x| l.intern(x).unwrap()).collect()
    };
    tx.commit().unwrap();
    ids
}

#[test]
fn one_number_per_distinct_label_and_a_rename_makes_a_new_one() {
    let db = memory();
    let (a, b) = (label("a1", "Info"), label("a2", "Vertrieb"));
    assert_eq!(add(&db, &[a.clone(), b.clone(), a.clone()]), [1, 2, 1]);
    // A later transaction finds them; a renamed account gets a new one,
    // and the old label stays as it was for the mails that name it.
    let renamed = label("a1", "Info (alt)");
    assert_eq!(
        add(&db, &[b.clone(), renamed.clone(), a.clone()]),
        [2, 3, 1]
    );
    let tx = db.begin_read().unwrap();
    let l = Labels::read(&tx, None).unwrap();
    assert_eq!(*l.get(1).unwrap(), a);
    assert_eq!(*l.get(3).unwrap(), renamed);
    // Strings that only differ in where one ends and the next begins are
    // different labels.
    let split = Label {
        account: "a".into(),
        tenant: "1t1".into(),
        ..Label::default()
    };
    let joined = Label {
        account: "a1".into(),
        tenant: "t1".into(),
        ..Label::default()
    };
    assert_eq!(add(&db, &[split, joined]), [4, 5]);
}

#[test]
fn the_cache_serves_a_page_and_never_holds_an_aborted_label() {
    let db = memory();
    let m = typical();
    let tx = db.begin_write().unwrap();
    let row = encode(&Labels::write(&tx), &m).unwrap();
    tx.commit().unwrap();
    let cache = LabelCache::default();
    {
        let tx = db.begin_read().unwrap();
        let l = Labels::read(&tx, Some(&cache)).unwrap();
        assert_eq!(decode(&l, 1, &row).unwrap().account_name, m.account_name);
    }
    assert_eq!(cache.len(), 1);
    // A write transaction adds a label and aborts; its number goes to
    // another label next. Readers through the cache see the committed one.
    let tx = db.begin_write().unwrap();
    {
        let l = Labels::write(&tx);
        assert_eq!(l.intern(&label("gone", "Weg")).unwrap(), 2);
        assert_eq!(l.get(2).unwrap().account, "gone");
    }
    tx.abort().unwrap();
    assert_eq!(cache.len(), 1, "nothing of a write transaction is shared");
    assert_eq!(add(&db, &[label("kept", "Da")]), [2]);
    let tx = db.begin_read().unwrap();
    let l = Labels::read(&tx, Some(&cache)).unwrap();
    assert_eq!(l.get(2).unwrap().account, "kept");
    assert_eq!(cache.len(), 2);
    // Served from the cache: a label the table lost would still come back
    // (the table is never changed, so the cache is right).
    drop(l);
    drop(tx);
    let tx = db.begin_write().unwrap();
    tx.delete_table(SUMMARY_LABELS).unwrap();
    tx.commit().unwrap();
    let tx = db.begin_read().unwrap();
    let cached = Labels::read(&tx, Some(&cache)).unwrap();
    assert_eq!(cached.get(2).unwrap().account, "kept");
    let e = Labels::read(&tx, None).unwrap().get(2).unwrap_err();
    assert!(
        e.to_string().contains("names label 2, which is missing"),
        "{e}"
    );
}

#[test]
fn the_cache_stays_bounded() {
    let db = memory();
    let many: Vec<Label> = (0..CACHE_MAX + 10)
        .map(|i| label(&format!("a{i}"), "n"))
        .collect();
    let ids = add(&db, &many);
    assert_eq!(ids.last().copied(), Some(many.len() as u32));
    let cache = LabelCache::default();
    let tx = db.begin_read().unwrap();
    let l = Labels::read(&tx, Some(&cache)).unwrap();
    for (id, want) in ids.iter().zip(&many) {
        assert_eq!(&*l.get(*id).unwrap(), want);
        assert!(cache.len() <= CACHE_MAX);
    }
    // Every label still reads right after the cache started again.
    let again = Labels::read(&tx, Some(&cache)).unwrap();
    for (id, want) in ids.iter().zip(&many) {
        assert_eq!(&*again.get(*id).unwrap(), want);
    }
}

#[test]
fn a_damaged_label_row_is_an_error() {
    let db = memory();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx.open_table(SUMMARY_LABELS).unwrap();
        t.insert(1, [5u8, b'a'].as_slice()).unwrap();
        let mut ok = label("a", "n").encode();
        ok.push(0);
        t.insert(2, ok.as_slice()).unwrap();
    }
    tx.commit().unwrap();
    let tx = db.begin_read().unwrap();
    let l = Labels::read(&tx, None).unwrap();
    let e = l.get(1).unwrap_err().to_string();
    assert!(e.contains("a length past its end"), "{e}");
    let e = l.get(2).unwrap_err().to_string();
    assert!(e.contains("bytes after the last field"), "{e}");
    // A read transaction never adds one.
    let e = l.intern(&label("b", "n")).unwrap_err().to_string();
    assert!(e.contains("read transaction"), "{e}");
}
