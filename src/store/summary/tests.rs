use redb::{ReadableDatabase, ReadableTableMetadata};

use super::*;
use crate::store::messages::tests::fixed_summary;
use crate::store::tests::pop3;
use crate::store::{write_txn, NewMail, Store, DB_FILE};

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A summary as a fetch makes it, every field set.
fn typical() -> MessageMeta {
    MessageMeta {
        id: 4711,
        account: "a3".into(),
        tenant: "t1".into(),
        folder: "inbox".into(),
        from: "Jürgen Müller <j.mueller@example.org>".into(),
        to: vec!["info@example.org".into(), "Vertrieb <v@example.org>".into()],
        cc: vec!["chef@example.org".into()],
        subject: "Angebot Nr. 2026-118 – Rückfrage".into(),
        date: 1_764_000_000,
        received: 1_764_000_321,
        size: 44_321,
        read: true,
        has_attachments: true,
        contact: "crm:contact:991".into(),
        message_id: "<20261203.1@mail.example.org>".into(),
        sha256: SHA.into(),
        account_name: "Info".into(),
        account_address: "info@example.org".into(),
        digest: SHA.replace('9', "0"),
        header_key: SHA.replace('a', "b"),
    }
}

/// Summaries at the edges of every field.
fn edge_cases() -> Vec<MessageMeta> {
    let mut out = vec![MessageMeta::default(), typical()];
    let mut m = typical();
    m.to = (0..3000).map(|i| format!("r{i}@example.org")).collect();
    m.cc = vec![String::new(); 200];
    out.push(m);
    for (date, received, size) in [
        (i64::MIN, i64::MAX, u64::MAX),
        (i64::MAX, i64::MIN, 0),
        (-1, 0, 127),
        (63, -64, 128),
    ] {
        let mut m = typical();
        (m.date, m.received, m.size) = (date, received, size);
        out.push(m);
    }
    let mut m = typical();
    m.subject = "日本語の件名 🦀 \u{0} \u{10FFFF} Ωμέγα".into();
    m.from = "\u{202e}evil".into();
    m.subject.push_str(&"x".repeat(70_000));
    out.push(m);
    // Hash fields that are not 64 lower-case hex digits come back as they were.
    for odd in [
        SHA.to_uppercase(),
        SHA[..63].to_string(),
        format!("{SHA}0"),
        SHA.replace('a', "g"),
        "sha256-not-hex".into(),
    ] {
        let mut m = typical();
        (m.sha256, m.digest, m.header_key) = (odd.clone(), String::new(), odd);
        out.push(m);
    }
    let mut m = typical();
    (m.digest, m.header_key) = (String::new(), String::new());
    out.push(m);
    out
}

#[test]
fn every_edge_case_comes_back_as_it_went_in() {
    for m in edge_cases() {
        let row = encode(&m);
        assert_eq!(row[0], BINARY);
        assert_eq!(decode(m.id, &row).unwrap(), m);
    }
}

#[test]
fn the_id_is_the_key_and_hashes_are_bytes() {
    let m = typical();
    let row = encode(&m);
    assert_eq!(decode(12, &row).unwrap().id, 12);
    // The texts' bytes, three hashes of 32 bytes (not 64 hex digits), and
    // a byte or so per field and number: no field names.
    let texts: usize = [
        &m.account,
        &m.tenant,
        &m.folder,
        &m.from,
        &m.subject,
        &m.contact,
        &m.message_id,
        &m.account_name,
        &m.account_address,
    ]
    .iter()
    .map(|s| s.len())
    .sum::<usize>()
        + m.to.iter().chain(&m.cc).map(String::len).sum::<usize>();
    assert!(row.len() <= texts + 3 * 32 + 30, "{} bytes", row.len());
    assert!(row.len() * 2 < serde_json::to_vec(&m).unwrap().len());
    assert!(!row.windows(SHA.len()).any(|w| w == SHA.as_bytes()));
}

#[test]
fn every_truncation_of_a_row_is_an_error() {
    // Rows short enough that a decode per prefix stays quick.
    let mut many = typical();
    many.to = (0..40).map(|i| format!("r{i}@example.org")).collect();
    let cases = edge_cases().into_iter().chain([many]);
    for row in cases.map(|m| encode(&m)).filter(|r| r.len() < 1000) {
        for n in 0..row.len() {
            let e = decode(1, &row[..n]).unwrap_err();
            assert!(matches!(e, Error::Storage { .. }), "{n}: {e}");
        }
    }
}

#[test]
fn a_byte_after_the_last_field_is_an_error() {
    let mut row = encode(&typical());
    row.push(0);
    let e = decode(1, &row).unwrap_err().to_string();
    assert!(e.contains("damaged"), "{e}");
}

#[test]
fn json_rows_of_schema_10_decode() {
    // As schema 11 and older wrote them: every field by name, hashes as hex, `digest`
    // and `header_key` only when set; the id in the row is the key's.
    let old = r#"{"id":7,"account":"a1","tenant":"t1","folder":"inbox","from":"a@b","to":["c@d","e@f"],"cc":[],"subject":"Grüße","date":-5,"received":1700000000,"size":812,"read":false,"has_attachments":true,"contact":"","message_id":"<x@y>","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","account_name":"Info","account_address":"info@example.org"}"#;
    let m = decode(7, old.as_bytes()).unwrap();
    assert_eq!((m.id, m.subject.as_str(), m.date), (7, "Grüße", -5));
    assert_eq!(m.to, ["c@d", "e@f"]);
    assert_eq!((m.sha256.as_str(), m.digest.as_str()), (SHA, ""));
    assert!(m.has_attachments && !m.read);
    // Every summary's JSON, as schema 11 and older wrote it, decodes to it.
    for m in edge_cases() {
        assert_eq!(decode(m.id, &serde_json::to_vec(&m).unwrap()).unwrap(), m);
    }
    // A schema 1 row without the fields added since.
    let m = decode(3, br#"{"id":3,"account":"a1","subject":"s"}"#).unwrap();
    assert_eq!((m.id, m.subject.as_str(), m.sha256.as_str()), (3, "s", ""));
}

#[test]
fn unknown_formats_and_damage_are_errors() {
    let row = encode(&typical());
    let mut bad = vec![
        (Vec::new(), "empty row"),
        (vec![2], "unknown format 2"),
        (vec![0], "unknown format 0"),
        ([&[0xffu8][..], &row[1..]].concat(), "unknown format 255"),
        (b"[1,2]".to_vec(), "unknown format 91"),
    ];
    // A string length far past the row's end, a count likewise.
    let mut long = vec![BINARY];
    put_varint(&mut long, u64::MAX);
    bad.push((long, "a length past its end"));
    let mut many = vec![BINARY];
    for _ in 0..4 {
        put_str(&mut many, "x");
    }
    put_varint(&mut many, 1 << 60);
    bad.push((many, "a count past its end"));
    // A varint of eleven bytes, and one whose tenth byte overflows 64 bits.
    let mut endless = vec![BINARY, 0];
    endless.extend([0x80; 10]);
    endless.push(0);
    bad.push((endless.clone(), "a number too long"));
    endless[11] = 0x02;
    endless.truncate(12);
    bad.push((endless, "a number too long"));
    // Not UTF-8.
    bad.push((vec![BINARY, 2, 0xc3, 0x28], "not UTF-8"));
    // The unused fourth hash code.
    let m = MessageMeta::default();
    let mut coded = encode(&m);
    let flags_at = coded.len() - 5;
    assert_eq!(coded[flags_at], 0);
    coded[flags_at] = 3 << 2;
    bad.push((coded, "an unknown hash code"));
    for (row, why) in bad {
        let e = decode(1, &row).unwrap_err();
        assert!(matches!(e, Error::Storage { .. }), "{why}: {e}");
        assert!(e.to_string().contains(why), "{why}: {e}");
    }
    // A damaged JSON row is a storage error too.
    let e = decode(1, b"{\"id\":").unwrap_err();
    assert!(matches!(e, Error::Storage { .. }), "{e}");
}

/// The messages table of `dir` as (id, row), read without a Store.
fn rows(dir: &std::path::Path) -> Vec<(u64, Vec<u8>)> {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_read().unwrap();
    let t = tx.open_table(MESSAGES).unwrap();
    t.iter()
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.value(), v.value().to_vec())
        })
        .collect()
}

/// A store of `n` fetched mails whose summaries are rewritten as JSON and
/// whose mark says the conversion has not begun: a schema 11 store just
/// migrated. Returns the summaries.
fn json_store(dir: &std::path::Path, n: usize) -> Vec<MessageMeta> {
    {
        let store = Store::open(dir).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        let mails = (0..n)
            .map(|i| NewMail {
                server_id: format!("pop3:{i}"),
                raw: format!("Subject: {i}\r\n\r\nbody {i}\r\n")
                    .into_bytes()
                    .into(),
                received: i as i64,
            })
            .collect();
        store
            .commit_batch(&a, mails, &fixed_summary(Some(1)))
            .unwrap();
    }
    let want: Vec<MessageMeta> = rows(dir)
        .iter()
        .map(|(id, row)| decode(*id, row).unwrap())
        .collect();
    assert_eq!(want.len(), n);
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = write_txn(&db).unwrap();
    {
        let mut t = tx.open_table(MESSAGES).unwrap();
        for m in &want {
            t.insert(m.id, serde_json::to_vec(m).unwrap().as_slice())
                .unwrap();
        }
    }
    put_u64(&tx, KEY_PACKED, 0).unwrap();
    tx.commit().unwrap();
    want
}

fn mark(db: &Database) -> Option<u64> {
    let tx = write_txn(db).unwrap();
    let m = get_u64(&tx, KEY_PACKED).unwrap();
    tx.abort().unwrap();
    m
}

#[test]
fn json_rows_are_converted_in_bounded_resumable_steps() {
    let dir = tempfile::tempdir().unwrap();
    let n = PACK_ROWS * 2 + 5;
    let want = json_store(dir.path(), n);
    {
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        // One transaction, as if killed right after it: the first rows are
        // binary, the rest JSON, and the mark says where to go on.
        let tx = write_txn(&db).unwrap();
        assert_eq!(pack_some(&tx, 0).unwrap(), (PACK_ROWS as u64, false));
        tx.commit().unwrap();
        assert_eq!(mark(&db), Some(want[PACK_ROWS - 1].id));
        let tx = db.begin_read().unwrap();
        assert_eq!(tx.open_table(MESSAGES).unwrap().len().unwrap(), n as u64);
    }
    let mixed = rows(dir.path());
    for (i, (id, row)) in mixed.iter().enumerate() {
        assert_eq!(row[0], if i < PACK_ROWS { BINARY } else { JSON });
        assert_eq!(decode(*id, row).unwrap(), want[i]);
    }
    // The next open goes on from the mark and finishes.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.message(want[n - 1].id).unwrap().unwrap(), want[n - 1]);
    drop(store);
    let packed = rows(dir.path());
    assert!(packed.iter().all(|(_, row)| row[0] == BINARY));
    for ((id, row), m) in packed.iter().zip(&want) {
        assert_eq!(&decode(*id, row).unwrap(), m);
    }
    // Done: the mark is gone, and an open converts and writes nothing.
    let db = Database::open(dir.path().join(DB_FILE)).unwrap();
    assert_eq!(mark(&db), None);
    assert_eq!(pack_legacy(&db).unwrap(), 0);
}

#[test]
fn a_damaged_json_row_is_left_and_the_rest_converted() {
    let dir = tempfile::tempdir().unwrap();
    let want = json_store(dir.path(), 5);
    let db = Database::open(dir.path().join(DB_FILE)).unwrap();
    let tx = write_txn(&db).unwrap();
    tx.open_table(MESSAGES)
        .unwrap()
        .insert(want[2].id, b"{\"id\":".as_slice())
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(pack_legacy(&db).unwrap(), 4);
    assert_eq!(mark(&db), None);
    drop(db);
    let after = rows(dir.path());
    assert_eq!(after[2].1, b"{\"id\":");
    for i in [0, 1, 3, 4] {
        assert_eq!(after[i].1[0], BINARY);
        assert_eq!(decode(after[i].0, &after[i].1).unwrap(), want[i]);
    }
}
