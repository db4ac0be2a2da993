use crate::store::digest::MailKeys;
use crate::store::messages::tests::{fixed_summary, inbox};
use crate::store::tests::pop3;
use crate::store::{NewMail, Store};

/// Mail `n` as an mbox server hands it out in session `session`.
fn kept(n: u32, session: u32) -> Vec<u8> {
    format!(
        "Subject: mail {n}\r\nStatus: {}\r\nX-UID: {}\r\n\r\nbody {n}\r\n",
        if session % 2 == 0 { "RO" } else { "O" },
        session * 100 + n
    )
    .into_bytes()
}

fn new(session: u32, n: u32) -> NewMail {
    NewMail {
        server_id: format!("imap:INBOX:{session}:{n}"),
        raw: kept(n, session).into(),
        received: 1,
    }
}

#[test]
fn rewritten_bookkeeping_neither_stores_twice_nor_brings_back_a_deleted_mail() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_account(|id| pop3(id, None)).unwrap();
    let sum = fixed_summary(Some(1));
    let ids = store
        .commit_batch(&a, vec![new(1, 1), new(1, 2)], &sum)
        .unwrap();
    assert_eq!(ids.len(), 2);
    // Stored as sent.
    assert_eq!(store.raw(ids[0]).unwrap().unwrap(), kept(1, 1));
    store.delete_message(ids[1]).unwrap();
    // Session 2: other bytes, same mails.
    assert!(store
        .commit_batch(&a, vec![new(2, 1), new(2, 2)], &sum)
        .unwrap()
        .is_empty());
    assert_eq!(store.list_messages(&inbox()).unwrap().1, 1);
    assert_eq!(store.server_ids(ids[0]).unwrap().len(), 2);
}

#[test]
fn header_keys_map_known_and_deleted_mails_and_leave_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_account(|id| pop3(id, None)).unwrap();
    let sum = fixed_summary(Some(1));
    let ids = store
        .commit_batch(&a, vec![new(1, 1), new(1, 2)], &sum)
        .unwrap();
    store.delete_message(ids[1]).unwrap();
    let key = |n: u32| MailKeys::of(&kept(n, 3)).header;
    let pairs = vec![
        ("imap:INBOX:3:1".to_string(), key(1)),
        ("imap:INBOX:3:2".to_string(), key(2)),
        ("imap:INBOX:3:3".to_string(), key(3)),
    ];
    let unknown = store.adopt_by_header(&a.id, &pairs).unwrap();
    assert_eq!(unknown, ["imap:INBOX:3:3"]);
    let known = store.known_server_ids(&a.id, "imap:INBOX:3:").unwrap();
    assert_eq!(known.len(), 2);
    assert!(store
        .server_ids(ids[0])
        .unwrap()
        .contains(&"imap:INBOX:3:1".to_string()));
    assert!(store.adopt_by_header("a99", &pairs).is_err());
}

#[test]
fn a_header_key_of_two_mails_recognises_neither() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_account(|id| pop3(id, None)).unwrap();
    let sum = fixed_summary(Some(1));
    // Same header, bodies of the same length: two mails, one header key.
    let twin = |sid: &str, body: &str| NewMail {
        server_id: sid.into(),
        raw: format!("Subject: same\r\nX-UID: {sid}\r\n\r\n{body}")
            .into_bytes()
            .into(),
        received: 1,
    };
    let ids = store
        .commit_batch(&a, vec![twin("p1", "aaaa"), twin("p2", "bbbb")], &sum)
        .unwrap();
    assert_eq!(ids.len(), 2);
    let key = MailKeys::of(b"Subject: same\r\n\r\naaaa").header;
    let pairs = vec![("imap:INBOX:9:1".to_string(), key)];
    assert_eq!(store.adopt_by_header(&a.id, &pairs).unwrap().len(), 1);
}

#[test]
fn mail_without_bookkeeping_fields_gets_a_header_key_once_seen_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_account(|id| pop3(id, None)).unwrap();
    let sum = fixed_summary(Some(1));
    let plain = |sid: &str| NewMail {
        server_id: sid.into(),
        raw: b"Subject: plain\r\n\r\nbody\r\n".to_vec().into(),
        received: 1,
    };
    let keys = MailKeys::of(b"Subject: plain\r\n\r\nbody\r\n");
    let ids = store
        .commit_batch(&a, vec![plain("imap:INBOX:1:1")], &sum)
        .unwrap();
    // Only the raw hash: it is the mail key.
    assert_eq!(store.has_content(&a.id, &keys.mail).unwrap(), Some(ids[0]));
    assert_eq!(store.has_content(&a.id, &keys.header).unwrap(), None);
    // Seen again after a UIDVALIDITY change: now it has a header key, and
    // its deletion tombstones that too.
    assert!(store
        .commit_batch(&a, vec![plain("imap:INBOX:2:1")], &sum)
        .unwrap()
        .is_empty());
    assert_eq!(
        store.has_content(&a.id, &keys.header).unwrap(),
        Some(ids[0])
    );
    store.delete_message(ids[0]).unwrap();
    assert_eq!(
        store.has_content(&a.id, &keys.header).unwrap(),
        Some(crate::store::meta::TOMBSTONE)
    );
}
