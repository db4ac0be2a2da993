use redb::ReadableTable;

use super::*;
use crate::store::digest::MailKeys;
use crate::store::messages::tests::fixed_summary;
use crate::store::schema::CONTENT_KEYS;
use crate::store::tests::pop3;
use crate::store::{NewMail, Raw, Store, DB_FILE};

fn kept(n: usize) -> Vec<u8> {
    format!("Subject: mail {n}\r\nX-UID: {n}\r\nStatus: O\r\n\r\nbody {n}\r\n").into_bytes()
}

/// Turns the store back into one written before mail keys: no keys in
/// `content`, none in the summaries, no progress mark.
fn forget_keys(dir: &Path) {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut messages = tx.open_table(MESSAGES).unwrap();
        let rows: Vec<(u64, Vec<u8>)> = messages
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value(), v.value().to_vec())
            })
            .collect();
        let labels = crate::store::summary::Labels::write(&tx);
        let mut content = tx.open_table(CONTENT_KEYS).unwrap();
        let mut forgotten = 0;
        for (id, json) in rows {
            let mut m = crate::store::summary::decode(&labels, id, &json).unwrap();
            // Its header key's row, which a store from before keys lacks:
            // the row of this mail under the summary's tag.
            let tag = m.keys.header.unwrap();
            let keys: Vec<[u8; 32]> = content
                .iter()
                .unwrap()
                .map(|r| r.unwrap())
                .filter(|(k, v)| {
                    let (a, key) = k.value();
                    a == m.account && key[..4] == tag && v.value() == id
                })
                .map(|(k, _)| *k.value().1)
                .collect();
            assert_eq!(keys.len(), 1);
            content.remove((m.account.as_str(), &keys[0])).unwrap();
            forgotten += 1;
            (m.keys.mail, m.keys.header) = (None, None);
            let row = crate::store::summary::encode(&labels, &m).unwrap();
            messages.insert(id, row.as_slice()).unwrap();
        }
        assert!(forgotten > 0);
        tx.open_table(super::super::schema::META)
            .unwrap()
            .remove(KEY_REKEYED)
            .unwrap();
    }
    tx.commit().unwrap();
}

#[test]
fn mails_stored_before_keys_get_them_at_open_in_bounded_steps() {
    let dir = tempfile::tempdir().unwrap();
    let n = REKEY_ROWS * 2 + 7;
    let (account, ids, big) = {
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        let mails = (0..n)
            .map(|i| NewMail {
                server_id: format!("imap:INBOX:1:{i}"),
                raw: kept(i).into(),
                received: 1,
            })
            .collect();
        let ids = store
            .commit_batch(&a, mails, &fixed_summary(Some(1)))
            .unwrap();
        // A blob mail, whose keys come from its file.
        let mut big = kept(n);
        big.extend(std::iter::repeat_n(
            b'x',
            crate::store::BLOB_MIN as usize + 10,
        ));
        let mut w = store.blob_writer().unwrap();
        w.write(&big).unwrap();
        let blob = NewMail {
            server_id: "imap:INBOX:1:big".into(),
            raw: Raw::Blob(w.finish().unwrap()),
            received: 1,
        };
        let more = store
            .commit_batch(&a, vec![blob], &fixed_summary(Some(1)))
            .unwrap();
        (a.id, [ids, more].concat(), big)
    };
    assert_eq!(ids.len(), n + 1);
    forget_keys(dir.path());
    let store = Store::open(dir.path()).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let raw = if i == n { big.clone() } else { kept(i) };
        let keys = MailKeys::of(&raw);
        assert_eq!(store.has_content(&account, &keys.mail).unwrap(), Some(*id));
        assert_eq!(
            store.has_content(&account, &keys.header).unwrap(),
            Some(*id)
        );
        let m = store.message(*id).unwrap().unwrap();
        let tags = (tag_of(&keys.mail), tag_of(&keys.header));
        assert_eq!((m.keys.mail, m.keys.header), tags);
    }
    // A deletion now tombstones the keys the pass gave.
    store.delete_message(ids[3]).unwrap();
    let again = NewMail {
        server_id: "imap:INBOX:2:3".into(),
        raw: String::from_utf8(kept(3))
            .unwrap()
            .replace("X-UID: 3", "X-UID: 2003")
            .into_bytes()
            .into(),
        received: 1,
    };
    assert!(store
        .commit_batch(
            &store.account(&account).unwrap().unwrap(),
            vec![again],
            &fixed_summary(Some(1))
        )
        .unwrap()
        .is_empty());
}

/// A kill between two transactions: the mark says how far the keys go,
/// and the next open goes on from there.
#[test]
fn an_interrupted_pass_resumes_from_its_mark() {
    let dir = tempfile::tempdir().unwrap();
    let n = REKEY_ROWS + 20;
    let (account, ids) = {
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        let mails = (0..n)
            .map(|i| NewMail {
                server_id: format!("imap:INBOX:1:{i}"),
                raw: kept(i).into(),
                received: 1,
            })
            .collect();
        let ids = store
            .commit_batch(&a, mails, &fixed_summary(Some(1)))
            .unwrap();
        (a.id, ids)
    };
    forget_keys(dir.path());
    {
        // One bounded transaction, then the process "dies".
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        let tx = write_txn(&db).unwrap();
        let (keyed, done) = rekey_some(&tx, &dir.path().join(BLOB_DIR), &Default::default())
            .unwrap()
            .expect("mails past the mark");
        tx.commit().unwrap();
        assert_eq!((keyed, done), (REKEY_ROWS as u64, false));
        let tx = write_txn(&db).unwrap();
        let mark = get_u64(&tx, KEY_REKEYED).unwrap();
        assert_eq!(mark, Some(ids[REKEY_ROWS - 1]));
    }
    let store = Store::open(dir.path()).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let keys = MailKeys::of(&kept(i));
        assert_eq!(store.has_content(&account, &keys.mail).unwrap(), Some(*id));
    }
    drop(store);
    // Keyed to the end: the next open has nothing to write.
    let db = Database::open(dir.path().join(DB_FILE)).unwrap();
    let tx = write_txn(&db).unwrap();
    assert_eq!(
        rekey_some(&tx, &dir.path().join(BLOB_DIR), &Default::default()).unwrap(),
        None,
        "nothing past the mark"
    );
}

/// Mails committed right after the mark move it along, so an open after
/// a day of fetching reads none of that day's summaries again.
#[test]
fn a_batch_right_after_the_mark_moves_it() {
    let dir = tempfile::tempdir().unwrap();
    let mark = |dir: &Path| {
        let db = Database::open(dir.join(DB_FILE)).unwrap();
        let tx = write_txn(&db).unwrap();
        get_u64(&tx, KEY_REKEYED).unwrap()
    };
    let batch = |store: &Store, a: &crate::account::Account, from: usize| {
        let mails = (from..from + 3)
            .map(|i| NewMail {
                server_id: format!("imap:INBOX:1:{i}"),
                raw: kept(i).into(),
                received: 1,
            })
            .collect();
        store
            .commit_batch(a, mails, &fixed_summary(Some(1)))
            .unwrap()
    };
    let first = {
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        let mut ids = batch(&store, &a, 0);
        ids.extend(batch(&store, &a, 3));
        ids
    };
    assert_eq!(mark(dir.path()), first.last().copied());
    // An older store: no mark. The open's pass keys it, and the batch
    // after that follows the mark again.
    forget_keys(dir.path());
    let later = {
        let store = Store::open(dir.path()).unwrap();
        let a = store.accounts().unwrap().remove(0);
        batch(&store, &a, 6)
    };
    assert_eq!(mark(dir.path()), later.last().copied());
}
