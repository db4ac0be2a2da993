use super::*;
use crate::store::tests::pop3;
use crate::store::ListQuery;

pub(crate) fn mail(server_id: &str, body: &str) -> NewMail {
    NewMail {
        server_id: server_id.into(),
        raw: format!("Subject: {body}\r\n\r\n{body}\r\n")
            .into_bytes()
            .into(),
        received: 1_700_000_000,
    }
}

/// A summariser that gives every mail the same Date.
pub(crate) fn fixed_summary(date: Option<i64>) -> impl Fn(&[u8], i64) -> Summary {
    move |_, _| Summary {
        subject: "s".into(),
        date,
        ..Summary::default()
    }
}

pub(crate) fn inbox() -> ListQuery {
    ListQuery {
        folder: INBOX.into(),
        limit: 100,
        ..ListQuery::default()
    }
}

#[test]
fn stores_exact_bytes_durably() {
    let dir = tempfile::tempdir().unwrap();
    // Leading dots, bare LF, CR without LF, 8-bit and NUL bytes stay as they are.
    let odd = b"From: a@b\r\n\r\n..dot\n.\r\nbare\rcr \xff\xfe\x00 end".to_vec();
    let big: Vec<u8> = (0..25 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let (a, ids) = {
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        let batch = vec![
            NewMail {
                server_id: "pop3:odd".into(),
                raw: odd.clone().into(),
                received: 5,
            },
            NewMail {
                server_id: "pop3:big".into(),
                raw: big.clone().into(),
                received: 6,
            },
        ];
        let ids = store.commit_batch(&a, batch, &fixed_summary(None)).unwrap();
        (a, ids)
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(store.raw(ids[0]).unwrap().unwrap(), odd);
    assert!(store.raw(ids[1]).unwrap().unwrap() == big);
    let m = store.message(ids[1]).unwrap().unwrap();
    assert_eq!(m.size, big.len() as u64);
    assert_eq!((m.date, m.received), (6, 6), "no Date header: received");
    assert_eq!(m.account, a.id);
    assert_eq!(m.account_address, "info@example.org");
    let tag = crate::store::keytags::tag_of(&sha256_hex(&big));
    assert_eq!(m.keys.raw, tag);
    assert!(store.raw(999).unwrap().is_none());
    assert!(store.message(999).unwrap().is_none());
}

#[test]
fn a_panicking_summary_still_stores_the_mail() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_account(|id| pop3(id, None)).unwrap();
    let boom = |_: &[u8], _: i64| -> Summary { panic!("hostile mail") };
    let ids = store
        .commit_batch(&a, vec![mail("pop3:1", "x")], &boom)
        .unwrap();
    let m = store.message(ids[0]).unwrap().unwrap();
    assert_eq!((m.subject.as_str(), m.date), ("", 1_700_000_000));
}

#[test]
fn nothing_is_stored_for_a_deleted_account() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_account(|id| pop3(id, None)).unwrap();
    store.delete_account(&a.id).unwrap();
    let err = store
        .commit_batch(&a, vec![mail("pop3:1", "x")], &fixed_summary(None))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)));
    assert!(store.raw(1).unwrap().is_none());
    assert!(store.known_server_ids(&a.id, "").unwrap().is_empty());
}
