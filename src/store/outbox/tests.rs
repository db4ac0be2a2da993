use redb::{Database, ReadableTableMetadata};

use super::*;
use crate::store::list::tests::account;
use crate::store::schema::{get_u64, put_u64, KEY_VERSION, SCHEMA_VERSION};
use crate::store::{write_txn, ListQuery, Visibility, DB_FILE};

const T0: i64 = 1_700_000_000;

fn raw(subject: &str, filler: usize) -> Vec<u8> {
    format!(
        "From: Info <info@example.org>\r\nTo: kunde@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.org>\r\n\r\n{}\r\n",
        "x".repeat(filler)
    )
    .into_bytes()
}

fn summary(subject: &str) -> Summary {
    Summary {
        from: "Info <info@example.org>".into(),
        to: vec!["kunde@example.com".into()],
        subject: subject.into(),
        date: Some(T0),
        message_id: format!("{subject}@example.org"),
        ..Summary::default()
    }
}

fn queued(at: i64) -> OutboxRecord {
    OutboxRecord {
        user: "mm".into(),
        from: "info@example.org".into(),
        rcpt: vec!["kunde@example.com".into(), "geheim@example.com".into()],
        queued_at: at,
        next_at: at,
        ..OutboxRecord::default()
    }
}

fn listed(store: &Store, viewer: Visibility, folder: &str) -> Vec<u64> {
    let (page, _) = store
        .list_messages(&ListQuery::new(viewer, folder))
        .unwrap();
    page.into_iter().map(|m| m.id).collect()
}

#[test]
fn queued_mail_is_stored_whole_and_listed_in_the_outbox_only() {
    let dir = tempfile::tempdir().unwrap();
    let small = raw("small", 10);
    let big = raw("big", 2 * 1024 * 1024);
    let (a, ids) = {
        let store = Store::open(dir.path()).unwrap();
        let a = account(&store, "t1", "");
        let s = store
            .add_outbox(&a, small.clone(), summary("small"), queued(T0))
            .unwrap();
        let b = store
            .add_outbox(&a, big.clone(), summary("big"), queued(T0 + 1))
            .unwrap();
        (a, vec![s, b])
    };
    // Durable: everything is there after a reopen.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.raw(ids[0]).unwrap().unwrap(), small);
    assert!(
        store.raw(ids[1]).unwrap().unwrap() == big,
        "big mail differs"
    );
    assert!(dir.path().join("blobs").join(ids[1].to_string()).is_file());
    let m = store.message(ids[0]).unwrap().unwrap();
    assert_eq!(
        (m.folder.as_str(), m.subject.as_str(), m.read, m.size),
        (OUTBOX, "small", true, small.len() as u64)
    );
    assert_eq!(m.account, a.id);
    let rec = store.outbox_record(ids[0]).unwrap().unwrap();
    assert_eq!(rec.account, a.id, "the record's account is the store's");
    assert_eq!(rec.state, OutboxState::Queued);
    assert_eq!(rec.rcpt.len(), 2);
    assert_eq!(
        listed(&store, Visibility::All, OUTBOX),
        vec![ids[1], ids[0]]
    );
    assert!(listed(&store, Visibility::All, "inbox").is_empty());
    let pending = store.pending_outbox(OutboxState::Queued).unwrap();
    let due: Vec<(u64, i64)> = pending.iter().map(|p| (p.id, p.at)).collect();
    assert_eq!(due, vec![(ids[0], T0), (ids[1], T0 + 1)]);
    assert_eq!(pending[0].account, a.id);
}

#[test]
fn private_outbox_is_seen_by_its_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let private = account(&store, "t1", "alice");
    let public = account(&store, "t1", "");
    let p = store
        .add_outbox(&private, raw("p", 1), summary("p"), queued(T0))
        .unwrap();
    let q = store
        .add_outbox(&public, raw("q", 1), summary("q"), queued(T0 + 5))
        .unwrap();
    let alice = Visibility::User("alice".into());
    let bob = Visibility::User("bob".into());
    assert_eq!(listed(&store, alice.clone(), OUTBOX), vec![q, p]);
    assert_eq!(listed(&store, bob.clone(), OUTBOX), vec![q]);
    assert!(store.visible_message(p, &bob).unwrap().is_none());
    assert!(store.visible_message(p, &alice).unwrap().is_some());
}

#[test]
fn state_changes_are_compare_and_set_and_move_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = account(&store, "t1", "");
    let id = store
        .add_outbox(&a, raw("m", 1), summary("m"), queued(T0))
        .unwrap();
    let mut sending = store.outbox_record(id).unwrap().unwrap();
    sending.state = OutboxState::Sending;
    sending.attempts = 1;
    sending.next_at = T0 + 10;
    sending.account = "somebody else".into();
    store
        .set_outbox_record(id, OutboxState::Queued, &sending)
        .unwrap();
    assert!(store
        .pending_outbox(OutboxState::Queued)
        .unwrap()
        .is_empty());
    let s = store.pending_outbox(OutboxState::Sending).unwrap();
    assert_eq!(
        s,
        vec![Pending {
            id,
            account: a.id.clone(),
            at: T0 + 10
        }]
    );
    // A second writer expecting `queued` loses and writes nothing.
    let mut other = sending.clone();
    other.state = OutboxState::Failed;
    let e = store
        .set_outbox_record(id, OutboxState::Queued, &other)
        .unwrap_err();
    assert!(
        matches!(&e, Error::Busy(m) if m == &format!("outbox mail {id} is sending, not queued")),
        "{e:?}"
    );
    let now = store.outbox_record(id).unwrap().unwrap();
    assert_eq!(now.state, OutboxState::Sending);
    assert_eq!(now.account, a.id, "the account of a record never changes");
    let mut sent = now.clone();
    sent.state = OutboxState::Sent;
    sent.done_at = T0 + 11;
    store
        .set_outbox_record(id, OutboxState::Sending, &sent)
        .unwrap();
    assert!(store
        .pending_outbox(OutboxState::Sending)
        .unwrap()
        .is_empty());
    assert_eq!(
        store.outbox_records(&[id, 999]).unwrap(),
        vec![Some(sent), None]
    );
    let e = store
        .set_outbox_record(999, OutboxState::Queued, &other)
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
}

#[test]
fn cancel_removes_everything_but_never_while_sending() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = account(&store, "t1", "");
    let id = store
        .add_outbox(&a, raw("big", 2 * 1024 * 1024), summary("big"), queued(T0))
        .unwrap();
    let blob = dir.path().join("blobs").join(id.to_string());
    assert!(blob.is_file());
    let mut sending = store.outbox_record(id).unwrap().unwrap();
    sending.state = OutboxState::Sending;
    store
        .set_outbox_record(id, OutboxState::Queued, &sending)
        .unwrap();
    let allowed = [OutboxState::Queued, OutboxState::Failed];
    let e = store.remove_outbox(id, &allowed).unwrap_err();
    assert!(matches!(e, Error::Busy(_)), "{e:?}");
    assert!(store.message(id).unwrap().is_some());
    let mut failed = sending.clone();
    failed.state = OutboxState::Failed;
    store
        .set_outbox_record(id, OutboxState::Sending, &failed)
        .unwrap();
    store.remove_outbox(id, &allowed).unwrap();
    assert!(store.message(id).unwrap().is_none());
    assert!(store.raw(id).unwrap().is_none());
    assert!(store.outbox_record(id).unwrap().is_none());
    assert!(!blob.exists(), "the blob file is removed");
    assert!(listed(&store, Visibility::All, OUTBOX).is_empty());
    let e = store.remove_outbox(id, &allowed).unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
}

#[test]
fn queueing_for_a_deleted_account_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = account(&store, "t1", "");
    store.delete_account(&a.id).unwrap();
    let e = store
        .add_outbox(&a, raw("big", 2 * 1024 * 1024), summary("m"), queued(T0))
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    assert!(store
        .pending_outbox(OutboxState::Queued)
        .unwrap()
        .is_empty());
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_file())
            .count(),
        0,
        "no blob file is left"
    );
    drop(store);
}

#[test]
fn schema_5_store_gets_the_outbox_tables() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        account(&store, "t1", "");
    }
    {
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        let tx = write_txn(&db).unwrap();
        tx.delete_table(RECORDS).unwrap();
        tx.delete_table(OUTBOX_ACTIVE).unwrap();
        put_u64(&tx, KEY_VERSION, 5).unwrap();
        tx.commit().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let a = store.accounts().unwrap().remove(0);
    let id = store
        .add_outbox(&a, raw("m", 1), summary("m"), queued(T0))
        .unwrap();
    assert_eq!(store.pending_outbox(OutboxState::Queued).unwrap()[0].id, id);
    drop(store);
    let db = Database::open(dir.path().join(DB_FILE)).unwrap();
    let tx = write_txn(&db).unwrap();
    assert_eq!(get_u64(&tx, KEY_VERSION).unwrap(), Some(SCHEMA_VERSION));
    assert_eq!(tx.open_table(RECORDS).unwrap().len().unwrap(), 1);
}
