use redb::backends::InMemoryBackend;
use redb::{Database, ReadableDatabase};

use super::wire::{put_str, put_varint};
use super::*;
use crate::store::keytags::tag_of;

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A summary as a fetch makes it, every field set.
pub(super) fn typical() -> MessageMeta {
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
        account_name: "Info".into(),
        account_address: "info@example.org".into(),
        keys: typical_keys().tags(),
    }
}

/// The key texts of [`typical`], as summaries up to schema 17 held them.
pub(super) fn typical_keys() -> KeyTexts {
    KeyTexts {
        raw: SHA.into(),
        mail: SHA.replace('9', "0"),
        header: format!("header:{}:812", SHA.replace('a', "b")),
    }
}

/// Summaries at the edges of every field, with their key texts (which
/// give their tags).
pub(super) fn edge_cases() -> Vec<(MessageMeta, KeyTexts)> {
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
    let mut out: Vec<(MessageMeta, KeyTexts)> = out
        .into_iter()
        .map(|m| {
            let keys = if m.id == 0 {
                KeyTexts::default()
            } else {
                typical_keys()
            };
            (m, keys)
        })
        .collect();
    // Key texts that are not 64 lower-case hex digits (stored as text in
    // the older forms) give their tags too; any key may be missing.
    for odd in [
        SHA.to_uppercase(),
        SHA[..63].to_string(),
        format!("{SHA}0"),
        SHA.replace('a', "g"),
        "sha256-not-hex".into(),
    ] {
        let keys = KeyTexts {
            raw: odd.clone(),
            mail: String::new(),
            header: odd,
        };
        out.push((typical(), keys));
    }
    for keys in [
        KeyTexts {
            raw: SHA.into(),
            ..KeyTexts::default()
        },
        KeyTexts {
            header: typical_keys().header,
            ..KeyTexts::default()
        },
    ] {
        out.push((typical(), keys));
    }
    for (m, keys) in &mut out {
        m.keys = keys.tags();
    }
    out
}

/// A database in memory, for rows that need labels.
pub(super) fn memory() -> Database {
    Database::builder()
        .create_with_backend(InMemoryBackend::new())
        .unwrap()
}

/// `m` encoded and decoded back in one write transaction.
fn round_trip(db: &Database, m: &MessageMeta) -> (Vec<u8>, MessageMeta) {
    let tx = db.begin_write().unwrap();
    let back = {
        let labels = Labels::write(&tx);
        let row = encode(&labels, m).unwrap();
        let back = decode(&labels, m.id, &row).unwrap();
        (row, back)
    };
    tx.commit().unwrap();
    back
}

#[test]
fn every_edge_case_comes_back_as_it_went_in() {
    let db = memory();
    for (m, keys) in edge_cases() {
        let (row, back) = round_trip(&db, &m);
        assert_eq!(row[0], TAGGED);
        assert_eq!(back, m);
        // Read back in a later read transaction, through a cache.
        let cache = LabelCache::default();
        let tx = db.begin_read().unwrap();
        let labels = Labels::read(&tx, Some(&cache)).unwrap();
        assert_eq!(decode(&labels, m.id, &row).unwrap(), m);
        // The schema 12 and 13 forms of every summary, with the key
        // texts, still decode to it: the texts give the same tags.
        let old = encode_binary1(&m, &keys);
        assert_eq!(old[0], BINARY);
        assert_eq!(decode(&labels, m.id, &old).unwrap(), m);
        let tx = db.begin_write().unwrap();
        let labelled = encode_labelled(&Labels::write(&tx), &m, &keys).unwrap();
        tx.commit().unwrap();
        assert_eq!(labelled[0], LABELLED);
        assert_eq!(decode(&labels, m.id, &labelled).unwrap(), m);
    }
}

#[test]
fn the_row_holds_a_label_number_instead_of_the_account_fields() {
    let db = memory();
    let mut m = typical();
    m.account_address = "konto-7@example.org".into();
    let (row, back) = round_trip(&db, &m);
    assert_eq!(back, m);
    // The texts' bytes without the account's, three key tags of 4 bytes
    // (not the keys), and a byte or so per field and number.
    let texts: usize = [&m.folder, &m.from, &m.subject, &m.contact, &m.message_id]
        .iter()
        .map(|s| s.len())
        .sum::<usize>()
        + m.to.iter().chain(&m.cc).map(String::len).sum::<usize>();
    assert!(row.len() <= texts + 3 * 4 + 30, "{} bytes", row.len());
    let keys = typical_keys();
    let old = encode_binary1(&m, &keys);
    let account = Label::of(&m).encode().len();
    // Format 1 holds the account's fields instead of the label, and the
    // two hashes (32 bytes each) and the header key text instead of the
    // tags (4 bytes each).
    let header = keys.header.len() + 1;
    assert_eq!(row.len() + account + 2 * 32 + header, old.len() + 1 + 3 * 4,);
    let raw_bytes = crate::store::keytags::stored_key(SHA);
    assert!(!row.windows(8).any(|w| w == &raw_bytes[..8]));
    assert!(!row.windows(SHA.len()).any(|w| w == SHA.as_bytes()));
    for s in [&m.account_name, &m.account_address] {
        assert!(!row.windows(s.len()).any(|w| w == s.as_bytes()), "{s}");
    }
}

#[test]
fn every_truncation_of_a_row_is_an_error() {
    let db = memory();
    let tx = db.begin_write().unwrap();
    let labels = Labels::write(&tx);
    // Rows short enough that a decode per prefix stays quick.
    let mut many = typical();
    many.to = (0..40).map(|i| format!("r{i}@example.org")).collect();
    let cases: Vec<(MessageMeta, KeyTexts)> = edge_cases()
        .into_iter()
        .chain([(many, typical_keys())])
        .collect();
    let rows: Vec<Vec<u8>> = cases
        .iter()
        .flat_map(|(m, keys)| {
            [
                encode(&labels, m).unwrap(),
                encode_binary1(m, keys),
                encode_labelled(&labels, m, keys).unwrap(),
            ]
        })
        .filter(|r| r.len() < 1000)
        .collect();
    for row in rows {
        for n in 0..row.len() {
            let e = decode(&labels, 1, &row[..n]).unwrap_err();
            assert!(matches!(e, Error::Storage { .. }), "{n}: {e}");
        }
        let mut longer = row.clone();
        longer.push(0);
        let e = decode(&labels, 1, &longer).unwrap_err().to_string();
        assert!(e.contains("bytes after the last field"), "{e}");
    }
}

#[test]
fn json_rows_of_schema_11_decode() {
    let db = memory();
    let tx = db.begin_read().unwrap();
    let labels = Labels::read(&tx, None).unwrap();
    // As schema 11 and older wrote them: every field by name, hashes as hex, `digest`
    // and `header_key` only when set; the id in the row is the key's.
    let old = r#"{"id":7,"account":"a1","tenant":"t1","folder":"inbox","from":"a@b","to":["c@d","e@f"],"cc":[],"subject":"Grüße","date":-5,"received":1700000000,"size":812,"read":false,"has_attachments":true,"contact":"","message_id":"<x@y>","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","account_name":"Info","account_address":"info@example.org"}"#;
    let m = decode(&labels, 7, old.as_bytes()).unwrap();
    assert_eq!((m.id, m.subject.as_str(), m.date), (7, "Grüße", -5));
    assert_eq!(m.to, ["c@d", "e@f"]);
    assert_eq!(
        (m.keys.raw, m.keys.mail, m.keys.header),
        (tag_of(SHA), None, None)
    );
    assert!(m.has_attachments && !m.read);
    for (m, keys) in edge_cases() {
        let row = encode_json(&m, &keys).unwrap();
        assert_eq!(decode(&labels, m.id, &row).unwrap(), m);
    }
    // A schema 1 row without the fields added since.
    let m = decode(&labels, 3, br#"{"id":3,"account":"a1","subject":"s"}"#).unwrap();
    assert_eq!(
        (m.id, m.subject.as_str(), m.keys),
        (3, "s", KeyTags::default())
    );
}

#[test]
fn unknown_formats_and_damage_are_errors() {
    let db = memory();
    let tx = db.begin_write().unwrap();
    let labels = Labels::write(&tx);
    let row = encode(&labels, &typical()).unwrap();
    let mut bad = vec![
        (Vec::new(), "empty row"),
        (vec![4], "unknown format 4"),
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
    // The unused fourth hash code, in the forms with key texts.
    let m = MessageMeta::default();
    let none = KeyTexts::default();
    for (mut coded, after) in [
        (encode_binary1(&m, &none), 5),
        (encode_labelled(&labels, &m, &none).unwrap(), 3),
    ] {
        let flags_at = coded.len() - after;
        assert_eq!(coded[flags_at], 0);
        coded[flags_at] = 3 << 2;
        bad.push((coded, "an unknown hash code"));
    }
    // A flag bit above the tags' in the tagged form.
    let mut coded = encode(&labels, &m).unwrap();
    let flags_at = coded.len() - 3;
    assert_eq!(coded[flags_at], 0);
    coded[flags_at] = 1 << 5;
    bad.push((coded, "unknown flags"));
    // A tag flag without its tag.
    let mut coded = encode(&labels, &m).unwrap();
    coded[flags_at] = 1 << 4;
    bad.push((coded, "a length past its end"));
    // A label number beyond u32, and one the store does not have.
    for format in [LABELLED, TAGGED] {
        let mut huge = vec![format];
        put_varint(&mut huge, 1 << 32);
        bad.push((huge, "a label too large"));
    }
    let mut stray = row.clone();
    stray[1] = 99;
    bad.push((stray, "it names label 99, which is missing"));
    for (row, why) in bad {
        let e = decode(&labels, 1, &row).unwrap_err();
        assert!(matches!(e, Error::Storage { .. }), "{why}: {e}");
        assert!(e.to_string().contains(why), "{why}: {e}");
    }
    // A damaged JSON row is a storage error too.
    let e = decode(&labels, 1, b"{\"id\":").unwrap_err();
    assert!(matches!(e, Error::Storage { .. }), "{e}");
}
