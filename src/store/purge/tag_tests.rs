//! Deletion finds a mail's content keys by the tags its summary keeps
//! (super::super::keytags): every key of the deleted mail is tombstoned,
//! whatever form its summary row has, and no row of another mail is.

use redb::{Database, ReadableTable};

use crate::store::content::{stored_key, Content};
use crate::store::digest::{MailKeys, AMBIGUOUS};
use crate::store::keytags::{tag_of, KeyTexts};
use crate::store::messages::tests::fixed_summary;
use crate::store::meta::TOMBSTONE;
use crate::store::schema::{CONTENT_KEYS, MESSAGES};
use crate::store::summary::{self, Labels, LABELLED};
use crate::store::tests::pop3;
use crate::store::{sha256_hex, write_txn, NewMail, Store, DB_FILE};

/// A mail from a server that keeps bookkeeping fields in it: a raw hash,
/// a mail key and a header key of its own.
fn kept(uid: u32) -> Vec<u8> {
    format!("Subject: kept\r\nX-UID: {uid}\r\nStatus: O\r\n\r\nbody\r\n").into_bytes()
}

fn texts(raw: &[u8]) -> KeyTexts {
    let keys = MailKeys::of(raw);
    assert!(keys.bookkeeping);
    KeyTexts {
        raw: sha256_hex(raw),
        mail: keys.mail,
        header: keys.header,
    }
}

fn new_mail(sid: &str, raw: &[u8]) -> NewMail {
    NewMail {
        server_id: sid.into(),
        raw: raw.to_vec().into(),
        received: 1,
    }
}

/// Deletes `id` and checks that each key text is a tombstone and that the
/// mail under rewritten bookkeeping fields and a new server id stays
/// deleted.
fn delete_and_check(store: &Store, acct: &str, id: u64, keys: &KeyTexts) {
    store.delete_message(id).unwrap().unwrap();
    for text in keys.all() {
        assert_eq!(
            store.has_content(acct, text).unwrap(),
            Some(TOMBSTONE),
            "{text}"
        );
    }
    let account = store.account(acct).unwrap().unwrap();
    let back = store
        .commit_batch(
            &account,
            vec![new_mail("imap:INBOX:2:1", &kept(77))],
            &fixed_summary(Some(1)),
        )
        .unwrap();
    assert!(back.is_empty(), "fetched again: {back:?}");
}

#[test]
fn a_deleted_mail_is_not_fetched_again_by_any_of_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_account(|id| pop3(id, None)).unwrap();
    let raw = kept(1);
    let ids = store
        .commit_batch(
            &a,
            vec![new_mail("imap:INBOX:1:1", &raw)],
            &fixed_summary(Some(1)),
        )
        .unwrap();
    let keys = texts(&raw);
    let m = store.message(ids[0]).unwrap().unwrap();
    assert_eq!(m.keys, keys.tags());
    delete_and_check(&store, &a.id, ids[0], &keys);
}

#[test]
fn older_rows_with_the_key_texts_bury_every_key() {
    for form in [LABELLED, summary::JSON] {
        let dir = tempfile::tempdir().unwrap();
        let (acct, id, keys) = {
            let store = Store::open(dir.path()).unwrap();
            let a = store.create_account(|id| pop3(id, None)).unwrap();
            let raw = kept(1);
            let ids = store
                .commit_batch(
                    &a,
                    vec![new_mail("imap:INBOX:1:1", &raw)],
                    &fixed_summary(Some(1)),
                )
                .unwrap();
            (a.id, ids[0], texts(&raw))
        };
        {
            // The row as schema 17 (or 11) wrote it: the three texts.
            let db = Database::open(dir.path().join(DB_FILE)).unwrap();
            let tx = write_txn(&db).unwrap();
            {
                let labels = Labels::write(&tx);
                let mut t = tx.open_table(MESSAGES).unwrap();
                let now = t.get(id).unwrap().unwrap().value().to_vec();
                let m = summary::decode(&labels, id, &now).unwrap();
                let old = if form == LABELLED {
                    summary::encode_labelled(&labels, &m, &keys).unwrap()
                } else {
                    summary::encode_json(&m, &keys).unwrap()
                };
                assert_eq!(old[0], form);
                assert!(old.len() > now.len() + 100, "the texts are in the row");
                t.insert(id, old.as_slice()).unwrap();
            }
            tx.commit().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.message(id).unwrap().unwrap().keys, keys.tags());
        delete_and_check(&store, &acct, id, &keys);
    }
}

/// Runs `f` in a write transaction of `store` and commits it.
fn with_write<T>(
    store: &Store,
    f: impl FnOnce(&redb::WriteTransaction) -> crate::error::Result<T>,
) -> crate::error::Result<T> {
    let tx = store.write()?;
    let out = f(&tx)?;
    tx.commit().unwrap();
    Ok(out)
}

/// The 32 bytes that start with `tag`'s bytes and go on with `fill`.
fn under(tag: [u8; 4], fill: u8) -> [u8; 32] {
    let mut k = [fill; 32];
    k[..4].copy_from_slice(&tag);
    k
}

#[test]
fn a_shared_tag_buries_only_the_deleted_mails_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create_account(|id| pop3(id, None)).unwrap();
    let b = store.create_account(|id| pop3(id, None)).unwrap();
    let (one, two) = (kept(1), b"Subject: two\r\n\r\ntwo\r\n".to_vec());
    let ids = store
        .commit_batch(
            &a,
            vec![new_mail("pop3:1", &one), new_mail("pop3:2", &two)],
            &fixed_summary(Some(1)),
        )
        .unwrap();
    let tag = tag_of(&sha256_hex(&one)).unwrap();
    let mine = stored_key(&sha256_hex(&one));
    // Mail two's raw hash row moved under a key with mail one's tag, on
    // either side of it: a collision of the first four bytes.
    let (low, high) = (under(tag, 0), under(tag, 0xff));
    assert!(low < mine && mine < high);
    with_write(&store, |tx| {
        let mut t = tx.open_table(CONTENT_KEYS).unwrap();
        let acct = a.id.as_str();
        t.remove((acct, &stored_key(&sha256_hex(&two)))).unwrap();
        t.insert((acct, &low), ids[1]).unwrap();
        t.insert((acct, &high), AMBIGUOUS).unwrap();
        // Another account's row under the same key and id.
        t.insert((b.id.as_str(), &mine), ids[0]).unwrap();
        Ok(())
    })
    .unwrap();
    store.delete_message(ids[0]).unwrap().unwrap();
    let db_rows = with_write(&store, |tx| {
        let t = tx.open_table(CONTENT_KEYS).unwrap();
        let get = |acct: &str, k: &[u8; 32]| t.get((acct, k)).unwrap().map(|g| g.value());
        Ok([
            get(&a.id, &mine),
            get(&a.id, &low),
            get(&a.id, &high),
            get(&b.id, &mine),
        ])
    })
    .unwrap();
    assert_eq!(
        db_rows,
        [Some(TOMBSTONE), Some(ids[1]), Some(AMBIGUOUS), Some(ids[0])]
    );
    // Mail two's summary names its own raw hash's tag, whose row was
    // moved away: deleting it leaves the crafted row under mail one's tag.
    store.delete_message(ids[1]).unwrap().unwrap();
    let left = with_write(&store, |tx| {
        let t = tx.open_table(CONTENT_KEYS).unwrap();
        let v = t.get((a.id.as_str(), &low)).unwrap().map(|g| g.value());
        Ok(v)
    })
    .unwrap();
    assert_eq!(left, Some(ids[1]));
    // Content::names and bury directly: a row counts only with the id.
    with_write(&store, |tx| {
        let mut c = Content::open(tx)?;
        assert!(c.names(&a.id, tag, ids[1])?);
        assert!(!c.names(&a.id, tag, ids[1] + 100)?);
        c.bury(&a.id, tag, ids[1])?;
        assert!(!c.names(&a.id, tag, ids[1])?);
        Ok(())
    })
    .unwrap();
}
