//! View list chunks (schema 16): the move of schema 14's one row per entry
//! answers every page the same at each of its steps, also with writes
//! between them; chunks stay within their size; a damaged chunk is a
//! storage error.

use redb::{ReadableTable, WriteTransaction};

use super::chunk::CHUNK_MAX;
use super::rechunk::move_some;
use super::tests::{chunked, moves_alike, places_with, store_with_mail};
use crate::store::schema::*;
use crate::store::{ListQuery, Store, Visibility};

/// Rewrite the chunks of `tx` into schema 14's one row per entry, as a
/// postfachd of schema 14 left them; the chunk table is left empty, as
/// the step to schema 16 creates it.
fn to_schema_14(tx: &WriteTransaction) {
    let entries = chunked(&tx.open_table(VIEW_CHUNKS).unwrap());
    {
        let mut old = tx.open_table(VIEW_ENTRIES).unwrap();
        for e in entries {
            old.insert(e, ()).unwrap();
        }
    }
    tx.delete_table(VIEW_CHUNKS).unwrap();
    tx.open_table(VIEW_CHUNKS).unwrap();
}

/// (entries in the old table or None once dropped, entries in chunks).
fn places(store: &Store) -> (Option<u64>, u64) {
    places_with(store, VIEW_ENTRIES)
}

/// Entries per chunk row, every row of the store.
fn chunk_sizes(store: &Store) -> Vec<usize> {
    let tx = store.read().unwrap();
    let t = tx.open_table(VIEW_CHUNKS).unwrap();
    let rows = t.iter().unwrap().map(|r| r.unwrap());
    rows.map(|(k, v)| {
        let (_, d, id) = k.value();
        super::chunk::decode((d, id), v.value()).unwrap().len()
    })
    .collect()
}

#[test]
fn schema_14_entries_move_into_chunks_in_steps_and_every_step_answers_alike() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let (store, ids, _) = store_with_mail(dir.path());
        let sizes = chunk_sizes(&store);
        assert!(sizes.iter().all(|n| *n <= CHUNK_MAX), "{sizes:?}");
        let entries: usize = sizes.iter().sum();
        assert!(entries >= 5 * ids.len());
        assert!(sizes.len() < entries / 16, "{} chunks", sizes.len());
        sizes.len()
    };
    let dir = tempfile::tempdir().unwrap();
    let store = moves_alike(dir.path(), to_schema_14, move_some, places);
    // Moved in key order: whole chunks, no more of them than filing made.
    let sizes = chunk_sizes(&store);
    assert!(sizes.iter().all(|n| *n <= CHUNK_MAX), "{sizes:?}");
    assert!(
        sizes.len() <= before + 2,
        "{} chunks, {before} before",
        sizes.len()
    );
}

#[test]
fn a_damaged_chunk_is_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, _) = store_with_mail(dir.path());
    let tx = store.write().unwrap();
    {
        let mut t = tx.open_table(VIEW_CHUNKS).unwrap();
        let keys: Vec<(u32, i64, u64)> = t.iter().unwrap().map(|r| r.unwrap().0.value()).collect();
        for k in keys {
            // A step cut off in the middle of its number.
            t.insert(k, [0x80u8].as_slice()).unwrap();
        }
    }
    tx.commit().unwrap();
    let e = store
        .list_messages(&ListQuery::new(Visibility::All, "inbox"))
        .unwrap_err();
    assert!(e.to_string().contains("view list chunk is damaged"), "{e}");
}
