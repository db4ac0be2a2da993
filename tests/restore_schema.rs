//! A backup made by an older postfachd restores into this one: every
//! migration step since `backup::restore::OLDEST_RESTORABLE` only adds
//! tables, so an older backup's tables load and the store's migration
//! finishes the job. The older backups are made from today's by rewriting
//! what differs — the header's `schema_version`, the meta table's version
//! row, and the tables the older schema did not have (before schema 8 the
//! raw mails travel unpacked in `table:raw`, before schema 12 the message
//! summaries are JSON, in schema 12 binary with the account's fields in
//! each row instead of a label, before schema 15 the content keys are
//! text, before schema 16 the view lists are one row per entry, before
//! schema 17 the word index chunks name their places by string, before
//! schema 18 the summaries hold the content key texts, not their tags,
//! before schema 19 the view counters keep a 17-minute level, before
//! schema 20 every server id is a row of `table:server_ids`) — and
//! sealing the file again with the backup writer. Older still is refused, naming both ends.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
use common::fetch as fetchkit;
use common::restorekit::{all_mails, backup, leftovers, mail, restore};

use std::collections::HashMap;
use std::path::Path;

use common::Env;
use fetchkit::Proto;
use postfach::backup::format::{unpack, Writer};
use postfach::backup::restore::OLDEST_RESTORABLE;
use postfach::store::keytags::KeyTexts;
use postfach::store::schema::SCHEMA_VERSION;
use zbus::zvariant::Variant;

/// How many mails a ListMessages `text` search finds.
async fn found(conn: &zbus::Connection, text: &str) -> u32 {
    let mb = fetchkit::mailbox(conn).await;
    let filter = HashMap::from([("text", Variant::from(text))]);
    mb.list_messages("", filter, 0, 10).await.unwrap().1
}

/// Tables that came after each schema (src/store/schema.rs, STEPS).
fn added_after(version: u64) -> Vec<&'static str> {
    let mut t = Vec::new();
    if version < 20 {
        t.push("table:server_uids");
    }
    if version < 17 {
        t.extend(["table:search_places", "table:search_place_names"]);
    }
    if version < 16 {
        t.push("table:view_chunks");
    }
    if version < 15 {
        t.push("table:content_keys");
    }
    if version < 14 {
        t.extend([
            "table:view_scopes",
            "table:view_entries",
            "table:view_totals",
            "table:view_arrays",
        ]);
    }
    if version < 13 {
        t.extend(["table:summary_labels", "table:summary_label_ids"]);
    }
    if version < 11 {
        t.push("table:raw_dicts");
    }
    if version < 10 {
        t.push("table:search_postings");
    }
    if version < 9 {
        t.push("table:raw_packed");
    }
    if version < 8 {
        t.push("table:search_index");
    }
    if version < 7 {
        t.push("table:drafts");
    }
    if version < 6 {
        t.extend(["table:outbox", "table:outbox_active"]);
    }
    if version < 5 {
        t.extend([
            "table:signatures",
            "table:employees",
            "table:employee_images",
        ]);
    }
    t
}

/// `rows` of a table section: `key_len u32 ‖ key ‖ value_len u32 ‖ value`.
fn rows(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    let take = |at: &mut usize| {
        let n = u32::from_be_bytes(body[*at..*at + 4].try_into().unwrap()) as usize;
        let v = body[*at + 4..*at + 4 + n].to_vec();
        *at += 4 + n;
        v
    };
    while at < body.len() {
        let k = take(&mut at);
        let v = take(&mut at);
        out.push((k, v));
    }
    out
}

fn encode(rows: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in rows {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// Rows of the packed word index as the rows of schemas 8 and 9:
/// `(word, date, id) -> place`, one per posting. `names` are the places
/// by number.
fn unpacked_postings(
    packed: &[(Vec<u8>, Vec<u8>)],
    names: &HashMap<u32, String>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    use postfach::store::search_chunk::{Chunk, Place};
    type Key = (&'static str, i64, u64);
    let mut out = Vec::new();
    for (k, v) in packed {
        let (word, d, i) = <Key as redb::Value>::from_bytes(k);
        let c = Chunk::decode(d, i, v).unwrap();
        for (d, i, p) in &c.entries {
            let key = <Key as redb::Value>::as_bytes(&(word, *d, *i));
            let Place::Id(n) = &c.places[*p] else {
                panic!("today's backup names a place by string");
            };
            out.push((key.to_vec(), names[n].as_bytes().to_vec()));
        }
    }
    out.sort();
    out
}

/// The view list chunks of today's backup as the rows of schema 14's and 15's
/// `table:view_entries`: `(scope, date, id) -> ()`, one per entry.
fn unchunked_views(sections: &[(String, std::path::PathBuf)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    type Key = (u32, i64, u64);
    let (_, path) = sections
        .iter()
        .find(|(n, _)| n == "table:view_chunks")
        .unwrap();
    let mut out = Vec::new();
    for (k, v) in rows(&std::fs::read(path).unwrap()) {
        let (s, d, i) = <Key as redb::Value>::from_bytes(&k);
        for (d, i) in postfach::store::view_chunk::decode((d, i), &v).unwrap() {
            let key = <Key as redb::Value>::as_bytes(&(s, d, i));
            out.push((key.to_vec(), Vec::new()));
        }
    }
    assert!(!out.is_empty());
    out
}

/// Today's `table:view_arrays` section with the level 0 rows (17-minute
/// counts) that schemas 3 to 17 kept beside the others.
fn with_level_0(sections: &[(String, std::path::PathBuf)]) -> Vec<u8> {
    type Key = (u32, i64, u64);
    type Counter = (u8, u32, i64);
    let (_, path) = sections
        .iter()
        .find(|(n, _)| n == "table:view_arrays")
        .unwrap();
    let mut r = rows(&std::fs::read(path).unwrap());
    assert!(
        r.iter().all(|(k, _)| k[0] > 0),
        "today's backup has level 0"
    );
    let entries = unchunked_views(sections).into_iter().map(|(k, _)| {
        let (s, d, _) = <Key as redb::Value>::from_bytes(&k);
        (s, d)
    });
    let old = common::migration::level_0_rows(entries);
    assert!(!old.is_empty());
    for (k, v) in old {
        r.push((<Counter as redb::Value>::as_bytes(&k).to_vec(), v));
    }
    encode(&r)
}

/// The places of the word index by number, from a backup's
/// `table:search_place_names` section.
fn place_names(sections: &[(String, std::path::PathBuf)]) -> HashMap<u32, String> {
    let (_, path) = sections
        .iter()
        .find(|(n, _)| n == "table:search_place_names")
        .unwrap();
    rows(&std::fs::read(path).unwrap())
        .into_iter()
        .map(|(k, v)| {
            (
                <u32 as redb::Value>::from_bytes(&k),
                String::from_utf8(v).unwrap(),
            )
        })
        .collect()
}

/// The numbered view lists of today's backup as the sections of schemas
/// 12 and older, keyed by the scope key: `table:view_index`,
/// `table:view_buckets` and `table:view_counts`, by name.
fn keyed_views(sections: &[(String, std::path::PathBuf)]) -> HashMap<String, Vec<u8>> {
    let read = |name: &str| {
        let (_, path) = sections.iter().find(|(n, _)| n == name).unwrap();
        rows(&std::fs::read(path).unwrap())
    };
    let keys: HashMap<u32, String> = read("table:view_scopes")
        .into_iter()
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| {
            (
                <u32 as redb::Value>::from_bytes(&v),
                String::from_utf8(k).unwrap(),
            )
        })
        .collect();
    type Entry = (u32, i64, u64);
    type OldEntry = (&'static str, i64, u64);
    type Counter = (u8, u32, i64);
    type OldCounter = (u8, &'static str, i64);
    let entries: Vec<(Vec<u8>, Vec<u8>)> = unchunked_views(sections)
        .into_iter()
        .map(|(k, v)| {
            let (s, d, i) = <Entry as redb::Value>::from_bytes(&k);
            let old = <OldEntry as redb::Value>::as_bytes(&(keys[&s].as_str(), d, i));
            (old.to_vec(), v)
        })
        .collect();
    assert!(!entries.is_empty());
    let counters = |name: &str| -> Vec<(Vec<u8>, Vec<u8>)> {
        read(name)
            .into_iter()
            .map(|(k, v)| {
                let (l, s, b) = <Counter as redb::Value>::from_bytes(&k);
                let old = <OldCounter as redb::Value>::as_bytes(&(l, keys[&s].as_str(), b));
                (old.to_vec(), v)
            })
            .collect()
    };
    HashMap::from([
        ("table:view_index".to_string(), encode(&entries)),
        (
            "table:view_buckets".to_string(),
            encode(&counters("table:view_totals")),
        ),
        (
            "table:view_counts".to_string(),
            encode(&counters("table:view_arrays")),
        ),
    ])
}

/// The content key texts of every mail of the backup, by message id,
/// computed from its bytes (`table:raw_packed` rows and `blob:<id>`
/// sections) as the fetch computes them.
fn key_texts(sections: &[(String, std::path::PathBuf)]) -> HashMap<u64, KeyTexts> {
    let texts = |raw: &[u8]| {
        let keys = postfach::store::MailKeys::of(raw);
        KeyTexts {
            raw: postfach::store::sha256_hex(raw),
            mail: if keys.bookkeeping {
                keys.mail
            } else {
                String::new()
            },
            header: keys.header,
        }
    };
    let mut out = HashMap::new();
    for (name, path) in sections {
        let body = std::fs::read(path).unwrap();
        if name == "table:raw_packed" {
            for (k, v) in rows(&body) {
                let id = u64::from_le_bytes(k.as_slice().try_into().unwrap());
                let raw = postfach::store::compress::unpack(&v).unwrap();
                out.insert(id, texts(&raw));
            }
        } else if let Some(id) = name.strip_prefix("blob:") {
            out.insert(id.parse().unwrap(), texts(&body));
        }
    }
    out
}

/// A `table:messages` section with every summary as schema `version`
/// wrote it: JSON up to schema 11, binary with the account's fields in
/// schema 12, labelled with the key texts in schemas 13 to 17
/// (postfach::store::summary). `labels` and `label_ids` are the backup's
/// `table:summary_labels` and `table:summary_label_ids` sections; `texts`
/// the key texts by message id, checked against the tags.
fn older_summaries(
    body: &[u8],
    (labels, label_ids): (&[u8], &[u8]),
    texts: &HashMap<u64, KeyTexts>,
    version: u64,
) -> Vec<u8> {
    use postfach::store::summary::{self, Labels};
    let db = redb::Database::builder()
        .create_with_backend(redb::backends::InMemoryBackend::new())
        .unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx
            .open_table(postfach::store::schema::SUMMARY_LABELS)
            .unwrap();
        for (k, v) in rows(labels) {
            let id = u32::from_le_bytes(k.as_slice().try_into().unwrap());
            t.insert(id, v.as_slice()).unwrap();
        }
        let mut t = tx
            .open_table(postfach::store::schema::SUMMARY_LABEL_IDS)
            .unwrap();
        for (k, v) in rows(label_ids) {
            let id = u32::from_le_bytes(v.as_slice().try_into().unwrap());
            t.insert(k.as_slice(), id).unwrap();
        }
    }
    tx.commit().unwrap();
    // Written back, not committed: a label the rows need must already be
    // the backup's (checked below).
    let tx = db.begin_write().unwrap();
    let labels = Labels::write(&tx);
    let r = rows(body);
    assert!(!r.is_empty());
    let r: Vec<(Vec<u8>, Vec<u8>)> = r
        .into_iter()
        .map(|(k, v)| {
            assert_eq!(v[0], summary::TAGGED);
            let id = u64::from_le_bytes(k.as_slice().try_into().unwrap());
            let m = summary::decode(&labels, id, &v).unwrap();
            let keys = &texts[&id];
            assert_eq!(m.keys, keys.tags(), "message {id}");
            let old = if version < 12 {
                summary::encode_json(&m, keys).unwrap()
            } else if version == 12 {
                summary::encode_binary1(&m, keys)
            } else {
                let old = summary::encode_labelled(&labels, &m, keys).unwrap();
                // The same label number as the tagged row.
                assert_eq!(old[1..3], v[1..3], "message {id}");
                old
            };
            assert_eq!(summary::decode(&labels, id, &old).unwrap(), m);
            (k, old)
        })
        .collect();
    drop(labels);
    tx.abort().unwrap();
    encode(&r)
}

/// Today's `table:content_keys` section as the `table:content` of schemas
/// 14 and older, keyed by the key's text: the texts are the keys of each
/// summary's mail (its raw hash, mail key and header key), and every row
/// must be one of them (the backed-up store deleted no mail).
fn text_content(
    keys: &[u8],
    messages: &[u8],
    labels: &[u8],
    texts: &HashMap<u64, KeyTexts>,
) -> Vec<u8> {
    use postfach::store::content::stored_key;
    use postfach::store::summary::{self, Labels};
    use redb::ReadableDatabase;
    type Key = (&'static str, &'static [u8; 32]);
    type OldKey = (&'static str, &'static str);
    let mut by_key: HashMap<(String, [u8; 32]), Vec<u8>> = rows(keys)
        .into_iter()
        .map(|(k, v)| {
            let (a, key) = <Key as redb::Value>::from_bytes(&k);
            ((a.to_string(), *key), v)
        })
        .collect();
    assert!(!by_key.is_empty());
    let db = redb::Database::builder()
        .create_with_backend(redb::backends::InMemoryBackend::new())
        .unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx
            .open_table(postfach::store::schema::SUMMARY_LABELS)
            .unwrap();
        for (k, v) in rows(labels) {
            let id = u32::from_le_bytes(k.as_slice().try_into().unwrap());
            t.insert(id, v.as_slice()).unwrap();
        }
    }
    tx.commit().unwrap();
    let tx = db.begin_read().unwrap();
    let labels = Labels::read(&tx, None).unwrap();
    let mut out = Vec::new();
    for (k, v) in rows(messages) {
        let id = u64::from_le_bytes(k.as_slice().try_into().unwrap());
        let m = summary::decode(&labels, id, &v).unwrap();
        for text in texts[&id].all() {
            if let Some(v) = by_key.remove(&(m.account.clone(), stored_key(text))) {
                let old = <OldKey as redb::Value>::as_bytes(&(m.account.as_str(), text.as_str()));
                out.push((old.to_vec(), v));
            }
        }
    }
    assert!(by_key.is_empty(), "rows of no summary: {by_key:?}");
    out.sort();
    encode(&out)
}

/// The content index of the store in `dir` is keyed by 32 bytes, and no
/// move is pending: the open after the restore moved the text-keyed rows.
fn assert_binary_content(dir: &Path) {
    use postfach::store::schema::CONTENT_KEYS;
    use redb::ReadableTableMetadata;
    let db = redb::Database::open(dir.join(postfach::store::DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    let names: Vec<String> = tx
        .list_tables()
        .unwrap()
        .map(|h| redb::TableHandle::name(&h).to_string())
        .collect();
    assert!(!names.iter().any(|n| n == "content"), "{names:?}");
    assert!(tx.open_table(CONTENT_KEYS).unwrap().len().unwrap() >= 3);
    tx.abort().unwrap();
}

/// Rows of the IMAP server id chunks as the rows of schemas 1 to 19:
/// `(account, server id) -> message id`, one per id.
fn unchunked_server_ids(sections: &[(String, std::path::PathBuf)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    use postfach::store::server_ids::chunk;
    type Key = (&'static str, &'static str, u32);
    type Row = (&'static str, &'static str);
    let (_, path) = sections
        .iter()
        .find(|(n, _)| n == "table:server_uids")
        .unwrap();
    let mut out = Vec::new();
    for (k, v) in rows(&std::fs::read(path).unwrap()) {
        let (a, generation, first) = <Key as redb::Value>::from_bytes(&k);
        for (uid, id) in chunk::decode(first, &v).unwrap() {
            let sid = format!("{generation}{uid}");
            let key = <Row as redb::Value>::as_bytes(&(a, sid.as_str()));
            out.push((key.to_vec(), id.to_be_bytes().to_vec()));
        }
    }
    out
}

/// The canonical IMAP server ids of the store in `dir` are in chunks and
/// no move is pending: the open after the restore moved the older rows.
fn assert_chunked_server_ids(dir: &Path) {
    use postfach::store::schema::{META, SERVER_IDS};
    use postfach::store::server_ids::chunk::canonical;
    use redb::ReadableTable;
    let db = redb::Database::open(dir.join(postfach::store::DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let meta = tx.open_table(META).unwrap();
        assert!(meta.get("server_ids_moved_after").unwrap().is_none());
        for row in tx.open_table(SERVER_IDS).unwrap().iter().unwrap() {
            let (k, _) = row.unwrap();
            assert!(canonical(k.value().1).is_none(), "{:?}", k.value());
        }
    }
    tx.abort().unwrap();
}

/// Every summary of the store in `dir` is tagged, and no conversion is
/// pending: the open after the restore converted the older rows.
fn assert_tagged_summaries(dir: &Path) {
    use postfach::store::schema::{MESSAGES, META};
    use postfach::store::summary::{KEY_PACKED, TAGGED};
    use redb::ReadableTable;
    let db = redb::Database::open(dir.join(postfach::store::DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let meta = tx.open_table(META).unwrap();
        assert!(meta.get(KEY_PACKED).unwrap().is_none());
        let messages = tx.open_table(MESSAGES).unwrap();
        let mut n = 0;
        for row in messages.iter().unwrap() {
            assert_eq!(row.unwrap().1.value()[0], TAGGED);
            n += 1;
        }
        assert!(n > 0);
    }
    tx.abort().unwrap();
}

/// The view lists of the store in `dir` are numbered and in chunks, their
/// counters have no 17-minute level, and no move is pending: the open
/// after the restore moved or deleted the older rows.
fn assert_numbered_views(dir: &Path) {
    use postfach::store::schema::{VIEW_ARRAYS, VIEW_CHUNKS};
    use redb::ReadableTable;
    let db = redb::Database::open(dir.join(postfach::store::DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    let names: Vec<String> = tx
        .list_tables()
        .unwrap()
        .map(|h| redb::TableHandle::name(&h).to_string())
        .collect();
    assert!(!names.iter().any(|n| n == "view_index"), "{names:?}");
    assert!(!names.iter().any(|n| n == "view_entries"), "{names:?}");
    let mut entries = 0;
    for row in tx.open_table(VIEW_CHUNKS).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        let (_, d, i) = k.value();
        entries += postfach::store::view_chunk::decode((d, i), v.value())
            .unwrap()
            .len();
    }
    assert!(entries >= 15, "{entries}");
    let mut levels = Vec::new();
    for row in tx.open_table(VIEW_ARRAYS).unwrap().iter().unwrap() {
        levels.push(row.unwrap().0.value().0);
    }
    assert!(!levels.is_empty() && !levels.contains(&0), "{levels:?}");
    assert!(!names.iter().any(|n| n == "view_counts"), "{names:?}");
    tx.abort().unwrap();
}

/// The word index chunks of the store in `dir` name their places by
/// number, and no rewrite is pending: the open after the restore did it.
fn assert_numbered_places(dir: &Path) {
    use postfach::store::schema::{META, SEARCH_POSTINGS};
    use postfach::store::search_chunk::Chunk;
    use redb::ReadableTable;
    let db = redb::Database::open(dir.join(postfach::store::DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let meta = tx.open_table(META).unwrap();
        assert!(meta.get("search_places_upto").unwrap().is_none());
        let chunks = tx.open_table(SEARCH_POSTINGS).unwrap();
        let mut n = 0;
        for row in chunks.iter().unwrap() {
            let (k, v) = row.unwrap();
            let (_, d, i) = k.value();
            assert!(Chunk::decode(d, i, v.value()).unwrap().numbered());
            n += 1;
        }
        assert!(n > 0);
    }
    tx.abort().unwrap();
}

/// Today's backup `from` rewritten as one of schema `version`.
fn as_schema(from: &Path, version: u64, to: &Path) {
    let staging = tempfile::tempdir().unwrap();
    let u = unpack(
        &mut std::fs::File::open(from).unwrap(),
        staging.path(),
        u64::MAX,
    )
    .unwrap();
    let mut header: serde_json::Value = serde_json::from_slice(&u.header).unwrap();
    header["schema_version"] = version.into();
    let mut w = Writer::new(Vec::new(), header.to_string().as_bytes()).unwrap();
    let dropped = added_after(version);
    let mut seen_meta = false;
    let (_, labels) = u
        .sections
        .iter()
        .find(|(n, _)| n == "table:summary_labels")
        .unwrap();
    let labels = std::fs::read(labels).unwrap();
    let (_, label_ids) = u
        .sections
        .iter()
        .find(|(n, _)| n == "table:summary_label_ids")
        .unwrap();
    let label_ids = std::fs::read(label_ids).unwrap();
    let texts = key_texts(&u.sections);
    // Schema 19 dropped the view counters' 17-minute level; older backups
    // carry its rows (in `table:view_counts` before schema 14, made below
    // from these).
    if version < 19 {
        let body = with_level_0(&u.sections);
        let (_, path) = u
            .sections
            .iter()
            .find(|(n, _)| n == "table:view_arrays")
            .unwrap();
        std::fs::write(path, body).unwrap();
    }
    // Schema 9 packed the raw mails (postfach::store::compress); older
    // backups carry them as received, in `table:raw`.
    let unpacked: Vec<(Vec<u8>, Vec<u8>)> = if version < 9 {
        let (_, path) = u
            .sections
            .iter()
            .find(|(n, _)| n == "table:raw_packed")
            .unwrap();
        let r = rows(&std::fs::read(path).unwrap());
        assert!(!r.is_empty());
        r.into_iter()
            .map(|(k, v)| (k, postfach::store::compress::unpack(&v).unwrap()))
            .collect()
    } else {
        Vec::new()
    };
    // Schema 17 names the word index's places by number; older backups
    // carry them by string in each chunk.
    let names = place_names(&u.sections);
    // Schema 10 packed the word index (postfach::store::search_chunk);
    // schemas 8 and 9 carry one `table:search_index` row per posting.
    let postings: Vec<(Vec<u8>, Vec<u8>)> = if version < 10 {
        let (_, path) = u
            .sections
            .iter()
            .find(|(n, _)| n == "table:search_postings")
            .unwrap();
        let r = rows(&std::fs::read(path).unwrap());
        assert!(!r.is_empty());
        unpacked_postings(&r, &names)
    } else {
        Vec::new()
    };
    // Schema 14 numbered the view scopes (postfach::store::views); older
    // backups carry the lists keyed by the scope key.
    // Schema 15 keyed the content index by 32 bytes (postfach::store::
    // content); older backups carry it keyed by the key's text.
    let content = if version < 15 {
        let read = |name: &str| {
            let (_, path) = u.sections.iter().find(|(n, _)| n == name).unwrap();
            std::fs::read(path).unwrap()
        };
        Some(text_content(
            &read("table:content_keys"),
            &read("table:messages"),
            &labels,
            &texts,
        ))
    } else {
        None
    };
    // Schema 20 keeps the canonical IMAP server ids in chunks; older
    // backups carry one `table:server_ids` row per id.
    // (The account of this backup deletes on the server, so its ids were
    // forgotten and the section may be empty: tests/server_uids.rs moves
    // a full one.)
    let server_ids = if version < 20 {
        unchunked_server_ids(&u.sections)
    } else {
        Vec::new()
    };
    let mut keyed = if version < 14 {
        keyed_views(&u.sections)
    } else {
        HashMap::new()
    };
    // Schema 16 packed the view lists into chunks; schema 14 and 15
    // backups carry one `table:view_entries` row per entry.
    if version == 14 || version == 15 {
        keyed.insert(
            "table:view_entries".to_string(),
            encode(&unchunked_views(&u.sections)),
        );
    }
    for (name, path) in &u.sections {
        let body = std::fs::read(path).unwrap();
        if dropped.contains(&name.as_str()) {
            continue;
        }
        let body = if let Some(old) = keyed.remove(name.as_str()) {
            assert!(rows(&body).is_empty(), "a numbered store has no old rows");
            old
        } else if name == "table:content" && version < 15 {
            assert!(rows(&body).is_empty(), "a keyed store has no text rows");
            content.clone().unwrap()
        } else if name == "table:search_index" && version < 10 {
            assert!(rows(&body).is_empty(), "a packed store has no old rows");
            encode(&postings)
        } else if name == "table:search_postings" && (10..17).contains(&version) {
            let r: Vec<(Vec<u8>, Vec<u8>)> = rows(&body)
                .into_iter()
                .map(|(k, v)| (k, common::migration::named_chunk(&v, &names)))
                .collect();
            assert!(!r.is_empty());
            encode(&r)
        } else if name == "table:server_ids" && version < 20 {
            let mut r = rows(&body);
            r.extend(server_ids.iter().cloned());
            encode(&r)
        } else if name == "table:raw" && version < 9 {
            let mut r = rows(&body);
            r.extend(unpacked.iter().cloned());
            encode(&r)
        } else if name == "table:messages" && version < 18 {
            older_summaries(&body, (&labels, &label_ids), &texts, version)
        } else if name == "table:meta" {
            seen_meta = true;
            let mut r = rows(&body);
            let row = r.iter_mut().find(|(k, _)| k == b"schema_version").unwrap();
            assert_eq!(row.1, SCHEMA_VERSION.to_be_bytes());
            row.1 = version.to_be_bytes().to_vec();
            encode(&r)
        } else {
            body
        };
        w.section(name, &mut body.as_slice()).unwrap();
    }
    assert!(seen_meta);
    assert!(keyed.is_empty(), "sections missing: {:?}", keyed.keys());
    std::fs::write(to, w.finish().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_of_older_schemas_restore_and_older_still_are_refused() {
    let env = Env::get();
    let user = common::create_user(env, "oldschema");
    for i in 0..3 {
        common::drop_raw(env, &user, &mail(i, if i == 0 { 1_200_000 } else { 4000 }));
    }
    let state = tempfile::tempdir().unwrap();
    let d = fetchkit::start(state.path());
    let conn = fetchkit::bus(&d).await;
    let path = fetchkit::account_for(&conn, Proto::Imap, &user, true, 0).await;
    let acc = fetchkit::account(&conn, &path).await;
    assert_eq!(acc.fetch_now().await.unwrap(), 3);
    let mails = all_mails(&conn).await;
    let out = tempfile::tempdir().unwrap();
    let today = out.path().join("today");
    backup(&conn, &today).await.unwrap();

    for version in OLDEST_RESTORABLE..=SCHEMA_VERSION {
        let old = out.path().join(format!("schema-{version}"));
        as_schema(&today, version, &old);
        let fresh = tempfile::tempdir().unwrap();
        let b = fetchkit::start(fresh.path());
        let conn_b = fetchkit::bus(&b).await;
        let report = restore(&conn_b, &old)
            .await
            .unwrap_or_else(|e| panic!("schema {version}: {e}"));
        let reset: Vec<String> = fetchkit::get(&report, "reset");
        assert_eq!(reset.len(), 1, "schema {version}: {report:?}");
        assert_eq!(all_mails(&conn_b).await, mails, "schema {version}");
        // The word index was built by the migration (schema 8).
        assert_eq!(found(&conn_b, "Restore 1").await, 1, "schema {version}");
        assert_eq!(found(&conn_b, "restore").await, 3, "schema {version}");
        assert!(leftovers(fresh.path()).is_empty());
        // The restored store is today's schema: a restart opens it as is.
        drop(conn_b);
        drop(b);
        let again = fetchkit::start(fresh.path());
        let conn_c = fetchkit::bus(&again).await;
        assert_eq!(
            all_mails(&conn_c).await,
            mails,
            "schema {version} after a restart"
        );
        drop(conn_c);
        drop(again);
        assert_tagged_summaries(fresh.path());
        assert_numbered_views(fresh.path());
        assert_binary_content(fresh.path());
        assert_numbered_places(fresh.path());
        assert_chunked_server_ids(fresh.path());
    }

    let too_old = out.path().join("too-old");
    as_schema(&today, OLDEST_RESTORABLE - 1, &too_old);
    let e = restore(&conn, &too_old)
        .await
        .expect_err("too old")
        .to_string();
    assert!(
        e.contains(&format!(
            "restores schemas {OLDEST_RESTORABLE} to {SCHEMA_VERSION}"
        )),
        "{e}"
    );
    assert_eq!(all_mails(&conn).await, mails, "nothing changed");
}
