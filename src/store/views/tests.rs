//! Scope numbers (schema 14): the move of schema 12's lists answers every
//! page the same at each of its steps, also with writes between them, and
//! a number that an aborted transaction assigned is never used.

use std::collections::HashMap;

use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::pack::move_some;
use crate::store::list::tests::{account, check, page_ids, put, set_owner, user};
use crate::store::schema::*;
use crate::store::{ListQuery, Store, Visibility};

/// Every entry of a chunk table: (scope, date, id), ascending.
pub(crate) fn chunked(
    t: &impl ReadableTable<(u32, i64, u64), &'static [u8]>,
) -> Vec<(u32, i64, u64)> {
    let mut out = Vec::new();
    for row in t.iter().unwrap() {
        let (k, v) = row.unwrap();
        let (s, d, id) = k.value();
        let entries = super::chunk::decode((d, id), v.value()).unwrap();
        out.extend(entries.into_iter().map(|(d, id)| (s, d, id)));
    }
    out
}

/// Rewrite the numbered view lists of `tx` into schema 12's tables, keyed
/// by the scope key, as a postfachd of schema 12 left them; the numbered
/// tables are left empty, as the step to schema 14 creates them.
pub(crate) fn to_schema_12(tx: &WriteTransaction) {
    let names: HashMap<u32, String> = {
        let t = tx.open_table(VIEW_SCOPES).unwrap();
        let rows = t.iter().unwrap().map(|r| r.unwrap());
        rows.filter(|(k, _)| !k.value().is_empty())
            .map(|(k, v)| (v.value(), k.value().to_string()))
            .collect()
    };
    {
        let entries = tx.open_table(VIEW_CHUNKS).unwrap();
        let mut old = tx.open_table(VIEW_INDEX).unwrap();
        for (s, d, id) in chunked(&entries) {
            old.insert((names[&s].as_str(), d, id), ()).unwrap();
        }
        let totals = tx.open_table(VIEW_TOTALS).unwrap();
        let mut old = tx.open_table(BUCKETS).unwrap();
        for row in totals.iter().unwrap() {
            let (k, v) = row.unwrap();
            let (l, s, b) = k.value();
            old.insert((l, names[&s].as_str(), b), v.value()).unwrap();
        }
        let arrays = tx.open_table(VIEW_ARRAYS).unwrap();
        let mut old = tx.open_table(VIEW_COUNTS).unwrap();
        for row in arrays.iter().unwrap() {
            let (k, v) = row.unwrap();
            let (l, s, b) = k.value();
            old.insert((l, names[&s].as_str(), b), v.value()).unwrap();
        }
    }
    tx.delete_table(VIEW_SCOPES).unwrap();
    tx.delete_table(VIEW_CHUNKS).unwrap();
    tx.delete_table(VIEW_TOTALS).unwrap();
    tx.delete_table(VIEW_ARRAYS).unwrap();
    tx.open_table(VIEW_SCOPES).unwrap();
    tx.open_table(VIEW_CHUNKS).unwrap();
    tx.open_table(VIEW_TOTALS).unwrap();
    tx.open_table(VIEW_ARRAYS).unwrap();
}

/// (entries in the old index or None once dropped, entries numbered).
fn places(store: &Store) -> (Option<u64>, u64) {
    places_with(store, VIEW_INDEX)
}

/// (entries in the table `old` or None once dropped, entries in chunks).
pub(super) fn places_with<K: redb::Key + 'static>(
    store: &Store,
    old: redb::TableDefinition<K, ()>,
) -> (Option<u64>, u64) {
    let tx = store.read().unwrap();
    let old = match tx.open_table(old) {
        Ok(t) => Some(t.len().unwrap()),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => panic!("{e}"),
    };
    (
        old,
        chunked(&tx.open_table(VIEW_CHUNKS).unwrap()).len() as u64,
    )
}

/// Every view of the test against the model, deep offsets included.
pub(super) fn check_all(store: &Store, ids: &[u64], accounts: &[String]) {
    let mut qs = Vec::new();
    for viewer in [Visibility::All, user("alice"), user("bob")] {
        for unassigned in [None, Some(true), Some(false)] {
            qs.push(ListQuery {
                unassigned,
                ..ListQuery::new(viewer.clone(), "inbox")
            });
        }
        qs.push(ListQuery {
            since: Some(-50_000),
            until: Some(1_600_000_000),
            ..ListQuery::new(viewer.clone(), "inbox")
        });
        qs.push(ListQuery {
            tenant: Some("t2".into()),
            ..ListQuery::new(viewer.clone(), "inbox")
        });
        for a in accounts {
            qs.push(ListQuery {
                account: Some(a.clone()),
                ..ListQuery::new(viewer.clone(), "inbox")
            });
        }
    }
    for q in &qs {
        check(store, ids, q);
    }
}

#[test]
fn schema_12_lists_move_in_steps_and_every_step_answers_alike() {
    let dir = tempfile::tempdir().unwrap();
    let store = moves_alike(dir.path(), to_schema_12, move_some, places);
    let tx = store.read().unwrap();
    assert!(tx.open_table(VIEW_SCOPES).unwrap().len().unwrap() > 10);
}

/// Three accounts, 600 mails: dates far apart (every counter level),
/// equal, before 1970, in order and out of order, so that chunks are cut
/// in date order and in the middle; one in seven assigned.
pub(super) fn store_with_mail(dir: &std::path::Path) -> (Store, Vec<u64>, [String; 3]) {
    let store = Store::open(dir).unwrap();
    let public = account(&store, "t1", "");
    let private = account(&store, "t2", "alice");
    let other = account(&store, "t2", "carol");
    let dates: Vec<(i64, String)> = (0..600i64)
        .map(|i| match i % 4 {
            0 => (1_700_000_000, format!("m{i}")),
            1 => (-(i * 977), format!("m{i}")),
            2 => (1_600_000_000 + i * 300, format!("m{i}")),
            _ => (1_700_000_000 - i * i * 86_000, format!("m{i}")),
        })
        .collect();
    let refs: Vec<(i64, &str)> = dates.iter().map(|(d, s)| (*d, s.as_str())).collect();
    let mut ids = put(&store, &public, &refs[..300]);
    ids.extend(put(&store, &private, &refs[300..500]));
    ids.extend(put(&store, &other, &refs[500..]));
    for id in ids.iter().step_by(7) {
        store.set_contact(*id, "K-1").unwrap();
    }
    let accounts = [public.id, private.id, other.id];
    (store, ids, accounts)
}

/// [`store_with_mail`] rewritten by `downgrade` into an older layout,
/// then moved back by `step` in steps ([`move_in_steps`]), with writes
/// between the steps: every step answers every view as the model does.
pub(super) fn moves_alike(
    dir: &std::path::Path,
    downgrade: fn(&WriteTransaction),
    step: Step,
    places: fn(&Store) -> (Option<u64>, u64),
) -> Store {
    let (store, mut ids, accounts) = store_with_mail(dir);
    let filed = places(&store).1;
    assert!(filed >= 5 * ids.len() as u64, "{filed}");
    let tx = store.write().unwrap();
    downgrade(&tx);
    tx.commit().unwrap();
    assert_eq!(places(&store), (Some(filed), 0));
    check_all(&store, &ids, &accounts);
    move_in_steps(&store, filed, step, places, |steps| {
        // Writes meanwhile: a mail filed, one deleted (wherever its
        // entries are), one assigned, and an owner change that refiles a
        // whole account's mail.
        if steps == 3 {
            let public = store.account(&accounts[0]).unwrap().unwrap();
            ids.extend(put(&store, &public, &[(1_700_000_001, "new")]));
            // The last mail of `other`.
            let gone = ids.remove(ids.len() - 2);
            store.delete_message(gone).unwrap();
            store.set_contact(ids[ids.len() - 3], "K-2").unwrap();
            set_owner(&store, &accounts[2], "bob");
        }
        if steps % 9 == 1 {
            check_all(&store, &ids, &accounts);
        }
    });
    check_all(&store, &ids, &accounts);
    for (a, n) in [(&accounts[0], 301), (&accounts[1], 200), (&accounts[2], 99)] {
        assert_eq!(store.count_messages(a).unwrap(), n, "{a}");
    }
    store
}

/// A move's bounded `step`: (entries moved, done), None with nothing left.
pub(super) type Step = fn(&WriteTransaction, usize) -> crate::error::Result<Option<(u64, bool)>>;

/// Run `step` 97 entries a transaction until it is done. After each
/// step every one of the `filed` entries is in exactly one of the
/// `places` (old, new); `between` (given the steps so far) may write and
/// check. Also: enough steps to see partial states, and nothing to do at
/// the end.
fn move_in_steps(
    store: &Store,
    filed: u64,
    step: Step,
    places: fn(&Store) -> (Option<u64>, u64),
    mut between: impl FnMut(usize),
) {
    let mut steps = 0;
    loop {
        let tx = store.write().unwrap();
        let (n, done) = step(&tx, 97).unwrap().expect("old tables present");
        tx.commit().unwrap();
        steps += 1;
        assert!(n <= 97);
        let (old, new) = places(store);
        if done {
            assert_eq!((old, new), (None, filed), "old tables dropped");
            break;
        }
        assert_eq!(old.unwrap() + new, filed, "an entry in both places or none");
        between(steps);
    }
    assert!(steps > 10, "{steps} steps: too few to see a partial state");
    let tx = store.write().unwrap();
    assert_eq!(step(&tx, 97).unwrap(), None, "nothing left to move");
}

#[test]
fn a_number_assigned_in_an_aborted_transaction_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = account(&store, "t1", "");
    let b = account(&store, "t1", "dora");
    let first = put(&store, &a, &[(5, "a")]);
    let seen = |q: ListQuery| page_ids(&store, &q);
    assert_eq!(
        seen(ListQuery::new(user("dora"), "inbox")),
        (first.clone(), 1)
    );
    let numbered = || {
        let tx = store.read().unwrap();
        tx.open_table(VIEW_SCOPES).unwrap().len().unwrap()
    };
    let before = numbered();
    {
        // dora's private scopes numbered in a transaction that aborts.
        let tx = store.write().unwrap();
        let mut m = store.message(first[0]).unwrap().unwrap();
        m.id = 999;
        m.account = b.id.clone();
        super::Writer::open(&tx)
            .unwrap()
            .add(&m, Some("dora"))
            .unwrap();
        assert!(tx.open_table(VIEW_SCOPES).unwrap().len().unwrap() > before);
    }
    assert_eq!(numbered(), before);
    // The same numbers now go to eve's scopes: dora must not see her mail.
    set_owner(&store, &a.id, "eve");
    assert_eq!(seen(ListQuery::new(user("dora"), "inbox")), (vec![], 0));
    assert_eq!(
        seen(ListQuery::new(user("eve"), "inbox")),
        (first.clone(), 1)
    );
    assert_eq!(seen(ListQuery::new(Visibility::All, "inbox")), (first, 1));
    assert_eq!(store.count_messages(&b.id).unwrap(), 0);
}
