use crate::store::summary;
use redb::{Database, ReadableTable, TableHandle};

use super::*;
use crate::store::list::tests::{account, put};
use crate::store::{write_txn, ListQuery, Store, Visibility, DB_FILE};

/// Rewrite a current store file into the schema 1 layout, as a
/// postfachd of that version left it.
fn downgrade_to_v1(path: &std::path::Path) {
    let db = Database::open(path).unwrap();
    let tx = write_txn(&db).unwrap();
    crate::store::views::tests::to_schema_12(&tx);
    for t in [VIEW_INDEX.name(), BUCKETS.name(), MESSAGE_SIDS.name()] {
        assert!(tx.list_tables().unwrap().any(|h| h.name() == t));
    }
    tx.delete_table(VIEW_INDEX).unwrap();
    tx.delete_table(BUCKETS).unwrap();
    tx.delete_table(VIEW_COUNTS).unwrap();
    tx.delete_table(MESSAGE_SIDS).unwrap();
    {
        let messages = tx.open_table(MESSAGES).unwrap();
        let mut folder = tx.open_table(v1::FOLDER_INDEX).unwrap();
        let mut account = tx.open_table(v1::ACCOUNT_INDEX).unwrap();
        let mut counts = tx.open_table(v1::COUNTS).unwrap();
        let labels = crate::store::summary::Labels::write(&tx);
        for row in messages.iter().unwrap() {
            let (k, v) = row.unwrap();
            let m = summary::decode(&labels, k.value(), v.value()).unwrap();
            folder
                .insert((m.folder.as_str(), m.date, m.id), ())
                .unwrap();
            let key = (m.account.as_str(), m.folder.as_str(), m.date, m.id);
            account.insert(key, ()).unwrap();
            for scope in [m.account.as_str(), ""] {
                let n = counts
                    .get((scope, "inbox"))
                    .unwrap()
                    .map_or(0, |g| g.value());
                counts.insert((scope, "inbox"), n + 1).unwrap();
            }
        }
    }
    put_u64(&tx, KEY_VERSION, 1).unwrap();
    tx.commit().unwrap();
}

#[test]
fn schema_1_store_is_migrated_with_views_and_server_id_map() {
    let dir = tempfile::tempdir().unwrap();
    let (public, private, ids) = {
        let store = Store::open(dir.path()).unwrap();
        let public = account(&store, "t1", "");
        let private = account(&store, "t1", "alice");
        let mut ids = put(&store, &public, &[(5, "a"), (7, "b")]);
        ids.extend(put(&store, &private, &[(6, "c"), (8, "d")]));
        store.set_contact(ids[3], "K-1").unwrap();
        (public, private, ids)
    };
    downgrade_to_v1(&dir.path().join(DB_FILE));

    let store = Store::open(dir.path()).unwrap();
    let page = |viewer: Visibility| -> (Vec<u64>, u32) {
        let (p, n) = store
            .list_messages(&ListQuery::new(viewer, "inbox"))
            .unwrap();
        (p.into_iter().map(|m| m.id).collect(), n)
    };
    let everything = vec![ids[3], ids[1], ids[2], ids[0]];
    assert_eq!(page(Visibility::All), (everything.clone(), 4));
    assert_eq!(page(Visibility::User("alice".into())), (everything, 4));
    let bob = vec![ids[3], ids[1], ids[0]];
    assert_eq!(page(Visibility::User("bob".into())), (bob, 3));
    assert_eq!(store.count_messages(&public.id).unwrap(), 2);
    assert_eq!(store.count_messages(&private.id).unwrap(), 2);
    let (acct, sids) = store.delete_message(ids[2]).unwrap().unwrap();
    assert_eq!((acct, sids.len()), (private.id.clone(), 1));
    drop(store);

    let db = Database::open(dir.path().join(DB_FILE)).unwrap();
    let tx = write_txn(&db).unwrap();
    assert_eq!(get_u64(&tx, KEY_VERSION).unwrap(), Some(SCHEMA_VERSION));
    let names: Vec<String> = tx
        .list_tables()
        .unwrap()
        .map(|h| h.name().to_string())
        .collect();
    for old in ["folder_index", "account_index", "counts"] {
        assert!(!names.iter().any(|n| n == old), "{old} still there");
    }
}

/// Rewrite a current store file into the schema 2 layout: one counter
/// row per bucket at every level, no child arrays.
fn downgrade_to_v2(path: &std::path::Path) {
    let db = Database::open(path).unwrap();
    let tx = write_txn(&db).unwrap();
    crate::store::views::tests::to_schema_12(&tx);
    tx.delete_table(VIEW_COUNTS).unwrap();
    {
        let index = tx.open_table(VIEW_INDEX).unwrap();
        let mut buckets = tx.open_table(BUCKETS).unwrap();
        for row in index.iter().unwrap() {
            let (k, _) = row.unwrap();
            let (scope, date, _) = k.value();
            for level in 0..crate::store::counters::ARRAY_LEVELS {
                let key = (level, scope, crate::store::rank::bucket(level, date));
                let n = buckets.get(key).unwrap().map_or(0, |g| g.value());
                buckets.insert(key, n + 1).unwrap();
            }
        }
    }
    put_u64(&tx, KEY_VERSION, 2).unwrap();
    tx.commit().unwrap();
}

#[test]
fn schema_2_store_is_migrated_to_child_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let ids = {
        let store = Store::open(dir.path()).unwrap();
        let public = account(&store, "t1", "");
        let private = account(&store, "t1", "alice");
        // Dates an hour apart over ~8 days: many buckets at every level.
        let mails: Vec<(i64, String)> = (0..200).map(|i| (i * 3600, format!("m{i}"))).collect();
        let refs: Vec<(i64, &str)> = mails.iter().map(|(d, s)| (*d, s.as_str())).collect();
        let mut ids = put(&store, &public, &refs[..150]);
        ids.extend(put(&store, &private, &refs[150..]));
        ids
    };
    downgrade_to_v2(&dir.path().join(DB_FILE));

    let store = Store::open(dir.path()).unwrap();
    let page = |viewer: Visibility, offset: u32| -> (Vec<u64>, u32) {
        let q = ListQuery {
            offset,
            limit: 3,
            ..ListQuery::new(viewer, "inbox")
        };
        let (p, n) = store.list_messages(&q).unwrap();
        (p.into_iter().map(|m| m.id).collect(), n)
    };
    // Newest first; offset 100 is found by rank through the new arrays.
    let all: Vec<u64> = ids.iter().rev().copied().collect();
    assert_eq!(page(Visibility::All, 100), (all[100..103].to_vec(), 200));
    let bob: Vec<u64> = ids[..150].iter().rev().copied().collect();
    assert_eq!(
        page(Visibility::User("bob".into()), 100),
        (bob[100..103].to_vec(), 150)
    );
    drop(store);

    let db = Database::open(dir.path().join(DB_FILE)).unwrap();
    let tx = write_txn(&db).unwrap();
    assert_eq!(get_u64(&tx, KEY_VERSION).unwrap(), Some(SCHEMA_VERSION));
    assert!(!tx
        .list_tables()
        .unwrap()
        .any(|h| h.name() == VIEW_INDEX.name()));
    let buckets = tx.open_table(VIEW_TOTALS).unwrap();
    let fine = buckets
        .iter()
        .unwrap()
        .filter(|r| r.as_ref().unwrap().0.value().0 < crate::store::counters::ARRAY_LEVELS)
        .count();
    assert_eq!(
        fine, 0,
        "schema 2 per-bucket rows of the fine levels remain"
    );
    assert!(redb::ReadableTableMetadata::len(&tx.open_table(VIEW_ARRAYS).unwrap()).unwrap() > 0);
}
