//! Schema 19's deletion of the 17-minute counters: the rows of level 0 go
//! in steps, writes between the steps neither read nor write them, every
//! step answers every view as the model does, and at the end the counters
//! that are left are exactly those of the entries.

use std::collections::BTreeMap;

use redb::{ReadableTable, WriteTransaction};

use super::finest::drop_some;
use super::tests::{check_all, chunked, store_with_mail};
use crate::store::counters::{encode, Children, ARRAY_LEVELS, FANOUT};
use crate::store::list::tests::put;
use crate::store::rank::{bucket, slot};
use crate::store::schema::{VIEW_ARRAYS, VIEW_CHUNKS};

/// Rows deleted per step: enough steps to see partial states.
const STEP: usize = 17;

type Arrays = BTreeMap<(u8, u32, i64), Vec<u8>>;

/// The child arrays of `levels` that the entries of `tx` make, encoded.
fn arrays_of(tx: &WriteTransaction, levels: std::ops::Range<u8>) -> Arrays {
    let mut counts: BTreeMap<(u8, u32, i64), Children> = BTreeMap::new();
    for (s, d, _) in chunked(&tx.open_table(VIEW_CHUNKS).unwrap()) {
        for level in levels.clone() {
            let key = (level, s, bucket(level + 1, d));
            counts.entry(key).or_insert([0; FANOUT])[slot(level, d)] += 1;
        }
    }
    counts.into_iter().map(|(k, c)| (k, encode(&c))).collect()
}

/// Every row of a `view_arrays` table.
fn stored(t: &impl ReadableTable<(u8, u32, i64), &'static [u8]>) -> Arrays {
    let rows = t.iter().unwrap().map(|r| r.unwrap());
    rows.map(|(k, v)| (k.value(), v.value().to_vec())).collect()
}

fn level_0_rows(store: &crate::store::Store) -> usize {
    let tx = store.read().unwrap();
    let t = tx.open_table(VIEW_ARRAYS).unwrap();
    stored(&t).keys().filter(|k| k.0 == 0).count()
}

#[test]
fn the_17_minute_counters_go_in_steps_and_every_step_answers_alike() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut ids, accounts) = store_with_mail(dir.path());
    // As schema 17 left them: level 0 arrays beside the others.
    let tx = store.write().unwrap();
    let now = stored(&tx.open_table(VIEW_ARRAYS).unwrap());
    assert_eq!(now, arrays_of(&tx, 1..ARRAY_LEVELS), "no level 0");
    let old = arrays_of(&tx, 0..1);
    {
        let mut t = tx.open_table(VIEW_ARRAYS).unwrap();
        for (k, v) in &old {
            t.insert(k, v.as_slice()).unwrap();
        }
    }
    tx.commit().unwrap();
    let mut left = level_0_rows(&store);
    assert_eq!(left, old.len());
    assert!(left > 200, "{left}");
    check_all(&store, &ids, &accounts);

    let mut steps = 0;
    loop {
        let tx = store.write().unwrap();
        let (n, done) = drop_some(&tx, STEP).unwrap().expect("rows left");
        tx.commit().unwrap();
        steps += 1;
        let now = level_0_rows(&store);
        assert_eq!(now as u64, left as u64 - n, "step {steps}");
        left = now;
        if done {
            break;
        }
        assert!(left > 0);
        if steps == 2 {
            // Writes meanwhile, among the rows of level 0 still there.
            let public = store.account(&accounts[0]).unwrap().unwrap();
            ids.extend(put(&store, &public, &[(1_700_000_001, "new")]));
            store.delete_message(ids.remove(3)).unwrap();
        }
        if steps % 5 == 1 {
            check_all(&store, &ids, &accounts);
        }
    }
    assert!(steps > 10, "{steps} steps: too few to see a partial state");
    assert_eq!(left, 0);
    check_all(&store, &ids, &accounts);
    let tx = store.write().unwrap();
    assert_eq!(drop_some(&tx, STEP).unwrap(), None, "nothing left");
    let now = stored(&tx.open_table(VIEW_ARRAYS).unwrap());
    assert_eq!(now, arrays_of(&tx, 1..ARRAY_LEVELS));
}
