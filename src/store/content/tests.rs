use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTableMetadata};
use sha2::{Digest, Sha256, Sha512_256};

use super::pack::move_some;
use super::*;
use crate::store::digest::MailKeys;
use crate::store::messages::tests::{fixed_summary, inbox, mail};
use crate::store::schema::{KEY_VERSION, META};
use crate::store::tests::pop3;
use crate::store::{sha256_hex, write_txn, NewMail, Store, DB_FILE};

#[test]
fn hex_keys_are_their_bytes_and_other_texts_a_hash_of_another_function() {
    let raw = b"Subject: x\r\n\r\nx\r\n";
    let hex = sha256_hex(raw);
    let bytes: [u8; 32] = Sha256::digest(raw).into();
    assert_eq!(stored_key(&hex), bytes);
    // Not lower-case hex: hashed, and with SHA-512/256, not SHA-256, so a
    // mail whose bytes are a header key's text is not that header key.
    for text in [
        hex.to_uppercase(),
        format!("{hex}0"),
        hex[1..].to_string(),
        format!("header:{hex}:17"),
        String::new(),
        "g".repeat(64),
    ] {
        let key = stored_key(&text);
        assert_ne!(key, bytes, "{text}");
        let sha256: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        assert_ne!(key, sha256, "{text}");
        assert_eq!(key, <[u8; 32]>::from(Sha512_256::digest(text.as_bytes())));
    }
    assert_ne!(stored_key("header:a:1"), stored_key("header:a:2"));
}

/// Mail from a server that rewrites bookkeeping fields: it has a mail key
/// and a header key of its own besides the raw hash.
fn kept(n: usize, uid: usize) -> NewMail {
    NewMail {
        server_id: format!("imap:INBOX:{uid}:{n}"),
        raw: format!("Subject: mail {n}\r\nX-UID: {uid}\r\n\r\nbody {n}\r\n")
            .into_bytes()
            .into(),
        received: 1,
    }
}

fn texts_of(raw: &[u8]) -> Vec<String> {
    let keys = MailKeys::of(raw);
    vec![sha256_hex(raw), keys.mail, keys.header]
}

/// Rewrites the keys `texts` of `acct` back into the text-keyed table of
/// schema 14 (each where the keyed table has it; other accounts' keys stay
/// where they are), and the version with them; returns how many rows went
/// back.
fn as_schema_14(dir: &Path, acct: &str, texts: &[String]) -> u64 {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    let mut n = 0;
    {
        let mut keys = tx.open_table(CONTENT_KEYS).unwrap();
        let mut old = tx.open_table(CONTENT).unwrap();
        for t in texts {
            if let Some(v) = keys.remove((acct, &stored_key(t))).unwrap() {
                old.insert((acct, t.as_str()), v.value()).unwrap();
                n += 1;
            }
        }
        tx.open_table(META)
            .unwrap()
            .insert(KEY_VERSION, 14u64.to_be_bytes().as_slice())
            .unwrap();
    }
    tx.commit().unwrap();
    n
}

/// (rows in the keyed table, rows in the old one if it exists).
fn places(dir: &Path) -> (u64, Option<u64>) {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_read().unwrap();
    let keyed = tx.open_table(CONTENT_KEYS).unwrap().len().unwrap();
    let old = match tx.open_table(CONTENT) {
        Ok(t) => Some(t.len().unwrap()),
        Err(TableError::TableDoesNotExist(_)) => None,
        Err(e) => panic!("{e}"),
    };
    (keyed, old)
}

/// Moves at most `max` rows of the pending move, as one open would.
fn move_rows(dir: &Path, max: usize) {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = write_txn(&db).unwrap();
    move_some(&tx, max).unwrap().unwrap();
    tx.commit().unwrap();
}

#[test]
fn a_half_moved_index_recognises_and_buries_mail_in_either_table() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, ids, texts) = {
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        let b = store.create_account(|id| pop3(id, None)).unwrap();
        let mails: Vec<NewMail> = (0..6).map(|n| kept(n, 1)).collect();
        let texts: Vec<String> = mails
            .iter()
            .flat_map(|m| texts_of(m.raw.summary_bytes()))
            .collect();
        let ids = store
            .commit_batch(&a, mails, &fixed_summary(Some(1)))
            .unwrap();
        store
            .commit_batch(&b, vec![mail("pop3:1", "b")], &fixed_summary(Some(1)))
            .unwrap();
        // Deleted before the move: a tombstone to carry over.
        store.delete_message(ids[5]).unwrap();
        (a, b, ids, texts)
    };
    assert_eq!(as_schema_14(dir.path(), &a.id, &texts), 18);
    // Reopening would finish the move: do a part of it by hand.
    move_rows(dir.path(), 7);
    assert_eq!(places(dir.path()), (7 + 1, Some(11)));
    {
        // The store as it is between two transactions of the move, read
        // and written without the open that would finish it.
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        let tx = write_txn(&db).unwrap();
        let mut c = Content::open(&tx).unwrap();
        for (n, id) in ids.iter().enumerate() {
            let want = if n == 5 { TOMBSTONE } else { *id };
            for t in &texts[n * 3..n * 3 + 3] {
                assert_eq!(c.get(&a.id, t).unwrap(), Some(want), "{n} {t}");
            }
        }
        // A key in the old table is written to the new one only.
        let first = texts[0].clone();
        let last = texts[14].clone();
        c.bury(&a.id, tag_of(&last).unwrap(), ids[4]).unwrap();
        c.add(&a.id, &first, 999).unwrap();
        assert_eq!(c.get(&a.id, &last).unwrap(), Some(TOMBSTONE));
        assert_eq!(c.get(&a.id, &first).unwrap(), Some(ids[0]));
        drop(c);
        tx.commit().unwrap();
    }
    assert_eq!(
        places(dir.path()),
        (7 + 1 + 1, Some(10)),
        "moved, not copied"
    );
    {
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        let tx = db.begin_read().unwrap();
        assert_eq!(lookup(&tx, &a.id, &texts[17]).unwrap(), Some(TOMBSTONE));
        assert_eq!(lookup(&tx, &a.id, &texts[0]).unwrap(), Some(ids[0]));
        assert_eq!(lookup(&tx, &b.id, &texts[0]).unwrap(), None);
    }

    // The open finishes the move, and the old table is gone.
    drop(Store::open(dir.path()).unwrap());
    assert_eq!(places(dir.path()), (18 + 1, None));
    let store = Store::open(dir.path()).unwrap();
    // Seen again under a new UIDVALIDITY: every mail is known, the deleted
    // one stays deleted, none is stored again.
    let again: Vec<NewMail> = (0..6).map(|n| kept(n, 2)).collect();
    let account = store.account(&a.id).unwrap().unwrap();
    let new = store
        .commit_batch(&account, again, &fixed_summary(Some(1)))
        .unwrap();
    assert!(new.is_empty(), "{new:?}");
    assert_eq!(store.list_messages(&inbox()).unwrap().1, 5 + 1);
    assert_eq!(store.has_content(&a.id, &texts[0]).unwrap(), Some(ids[0]));
    assert_eq!(
        store.has_content(&a.id, &texts[15]).unwrap(),
        Some(TOMBSTONE)
    );
}

#[test]
fn deleting_an_account_midway_removes_its_keys_from_both_tables() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, texts) = {
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        let b = store.create_account(|id| pop3(id, None)).unwrap();
        let mails: Vec<NewMail> = (0..4).map(|n| kept(n, 1)).collect();
        let texts: Vec<String> = mails
            .iter()
            .flat_map(|m| texts_of(m.raw.summary_bytes()))
            .collect();
        store
            .commit_batch(&a, mails, &fixed_summary(Some(1)))
            .unwrap();
        let mails: Vec<NewMail> = (0..4).map(|n| kept(n, 1)).collect();
        store
            .commit_batch(&b, mails, &fixed_summary(Some(1)))
            .unwrap();
        (a, b, texts)
    };
    as_schema_14(dir.path(), &a.id, &texts);
    move_rows(dir.path(), 5);
    {
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        let tx = write_txn(&db).unwrap();
        Content::open(&tx).unwrap().remove_account(&a.id).unwrap();
        tx.commit().unwrap();
    }
    assert_eq!(places(dir.path()), (12, Some(0)), "b's keys only");
    let db = Database::open(dir.path().join(DB_FILE)).unwrap();
    let tx = db.begin_read().unwrap();
    for t in &texts {
        assert_eq!(lookup(&tx, &a.id, t).unwrap(), None);
        assert!(lookup(&tx, &b.id, t).unwrap().is_some());
    }
}
