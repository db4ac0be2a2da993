use std::collections::HashSet;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::moves::{move_some, pending, start};
use super::*;
use crate::store::schema::create_tables;
use crate::store::write_txn;

fn db() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("t.redb")).unwrap();
    let tx = write_txn(&db).unwrap();
    create_tables(&tx).unwrap();
    tx.commit().unwrap();
    (dir, db)
}

/// Apply `f` to a ServerIds in one committed transaction.
fn write<T>(db: &Database, f: impl FnOnce(&mut ServerIds) -> T) -> T {
    let tx = write_txn(db).unwrap();
    let mut ids = ServerIds::open(&tx).unwrap();
    let out = f(&mut ids);
    ids.finish().unwrap();
    tx.commit().unwrap();
    out
}

fn get(db: &Database, account: &str, sid: &str) -> Option<u64> {
    write(db, |ids| ids.get(account, sid).unwrap())
}

fn known_ids(db: &Database, account: &str, prefix: &str) -> HashSet<String> {
    known(&db.begin_read().unwrap(), account, prefix).unwrap()
}

/// (rows, chunks) in the two tables.
fn counts(db: &Database) -> (u64, u64) {
    let tx = db.begin_read().unwrap();
    let rows = tx.open_table(SERVER_IDS).unwrap().len().unwrap();
    let chunks = tx.open_table(SERVER_UIDS).unwrap().len().unwrap();
    (rows, chunks)
}

#[test]
fn odd_ids_stay_rows_and_round_trip() {
    let (_d, db) = db();
    let odd = ["imap:INBOX:1:007", "pop3:x", "imap:7", "imap:INBOX:1:-1"];
    write(&db, |ids| {
        for (i, sid) in odd.iter().enumerate() {
            ids.insert("a1", sid, i as u64 + 10).unwrap();
        }
        ids.insert("a1", "imap:INBOX:1:7", 0).unwrap();
    });
    assert_eq!(counts(&db), (4, 1));
    for (i, sid) in odd.iter().enumerate() {
        assert_eq!(get(&db, "a1", sid), Some(i as u64 + 10), "{sid}");
    }
    assert_eq!(get(&db, "a1", "imap:INBOX:1:7"), Some(0), "the tombstone");
    assert_eq!(get(&db, "a1", "imap:INBOX:1:07"), None);
    assert_eq!(get(&db, "a2", "pop3:x"), None);
    let all = known_ids(&db, "a1", "");
    assert_eq!(all.len(), 5);
    assert!(all.contains("imap:INBOX:1:007") && all.contains("imap:INBOX:1:7"));
    let gen1 = known_ids(&db, "a1", "imap:INBOX:1:");
    assert_eq!(gen1.len(), 3, "{gen1:?}");
    assert_eq!(
        known_ids(&db, "a1", "pop3:"),
        HashSet::from(["pop3:x".into()])
    );
    write(&db, |ids| {
        assert_eq!(ids.remove("a1", "imap:INBOX:1:007").unwrap(), Some(10));
        assert_eq!(ids.remove("a1", "imap:INBOX:1:7").unwrap(), Some(0));
        assert_eq!(ids.remove("a1", "imap:INBOX:1:7").unwrap(), None);
    });
    assert_eq!(counts(&db), (3, 0), "an emptied chunk goes");
}

#[test]
fn chunks_split_and_answer_every_query() {
    let (_d, db) = db();
    // One batch of ascending UIDs: full chunks.
    write(&db, |ids| {
        for uid in 1..=300u32 {
            ids.insert("a1", &format!("imap:INBOX:9:{uid}"), u64::from(uid) + 1000)
                .unwrap();
        }
    });
    assert_eq!(counts(&db), (0, 3));
    // Single inserts out of order, in other generations, other accounts,
    // each in its own transaction; a mail seen again maps to an older id.
    let mut extra = Vec::new();
    for i in 0..200u32 {
        let uid = (i * 7919) % 1000 + 1;
        let sid = format!("imap:INBOX:9:{uid}");
        let id = u64::from(i % 3) * 5;
        write(&db, |ids| ids.insert("a1", &sid, id).unwrap());
        extra.push((sid, id));
        let other = format!("imap:Sent:9:{uid}");
        write(&db, |ids| ids.insert("a1", &other, 1).unwrap());
        write(&db, |ids| {
            ids.insert("a0", &format!("imap:INBOX:9:{uid}"), 2).unwrap()
        });
    }
    let mut want: std::collections::HashMap<String, u64> = (1..=300u32)
        .map(|u| (format!("imap:INBOX:9:{u}"), u64::from(u) + 1000))
        .collect();
    want.extend(extra);
    for (sid, id) in &want {
        assert_eq!(get(&db, "a1", sid), Some(*id), "{sid}");
    }
    let inbox = known_ids(&db, "a1", "imap:INBOX:9:");
    assert_eq!(inbox, want.keys().cloned().collect());
    assert_eq!(known_ids(&db, "a1", "imap:INBOX:").len(), want.len());
    let sent = known_ids(&db, "a1", "imap:Sent:9:").len();
    assert_eq!(known_ids(&db, "a1", "").len(), want.len() + sent);
    let ones: HashSet<String> = want
        .keys()
        .filter(|s| s.starts_with("imap:INBOX:9:1"))
        .cloned()
        .collect();
    assert_eq!(known_ids(&db, "a1", "imap:INBOX:9:1"), ones);
    assert!(known_ids(&db, "a1", "pop3:").is_empty());
    {
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(SERVER_UIDS).unwrap();
        for row in t.iter().unwrap() {
            let (k, v) = row.unwrap();
            let n = chunk::decode(k.value().2, v.value()).unwrap().len();
            assert!((1..=chunk::CHUNK_MAX).contains(&n));
        }
    }
    write(&db, |ids| ids.remove_account("a1").unwrap());
    assert!(known_ids(&db, "a1", "").is_empty());
    assert_eq!(
        known_ids(&db, "a0", "").len(),
        200,
        "another account's stay"
    );
}

#[test]
fn a_damaged_chunk_is_a_storage_error() {
    let (_d, db) = db();
    let tx = write_txn(&db).unwrap();
    tx.open_table(SERVER_UIDS)
        .unwrap()
        .insert(("a1", "imap:INBOX:1:", 5), [1u8, 0x80].as_slice())
        .unwrap();
    tx.commit().unwrap();
    let tx = write_txn(&db).unwrap();
    let mut ids = ServerIds::open(&tx).unwrap();
    let e = ids.get("a1", "imap:INBOX:1:9").unwrap_err().to_string();
    assert!(e.contains("server id chunk is damaged"), "{e}");
    drop(ids);
    let r = db.begin_read().unwrap();
    assert!(known(&r, "a1", "").is_err());
}

/// Rows of schema 17, the mark of the step to 20, and the move in small
/// steps: after every commit each id is in exactly one place and reads
/// right; the odd ids stay rows.
#[test]
fn the_move_is_resumable_and_right_at_every_commit() {
    let (_d, db) = db();
    let mut want = Vec::new();
    let tx = write_txn(&db).unwrap();
    {
        let mut rows = tx.open_table(SERVER_IDS).unwrap();
        for acct in ["a1", "a2"] {
            for uid in 1..=120u32 {
                want.push((acct, format!("imap:INBOX:4:{uid}"), u64::from(uid)));
            }
            want.push((acct, "pop3:abc".to_string(), 7));
            want.push((acct, "imap:INBOX:4:0012".to_string(), 8));
        }
        for (a, s, id) in &want {
            rows.insert((*a, s.as_str()), *id).unwrap();
        }
    }
    start(&tx).unwrap();
    tx.commit().unwrap();
    let total = want.len() as u64;
    let mut steps = 0;
    loop {
        let tx = write_txn(&db).unwrap();
        let step = move_some(&tx, 50).unwrap();
        tx.commit().unwrap();
        steps += 1;
        for (a, s, id) in &want {
            assert_eq!(get(&db, a, s), Some(*id), "{a} {s} after step {steps}");
        }
        assert_eq!(known_ids(&db, "a1", "").len(), want.len() / 2);
        let Some((_, done)) = step else { break };
        if done {
            break;
        }
    }
    assert!(steps >= 5, "{steps}");
    assert_eq!(counts(&db).0, 4, "only the odd ids stay rows");
    let tx = write_txn(&db).unwrap();
    assert!(!pending(&tx).unwrap());
    assert!(move_some(&tx, 50).unwrap().is_none(), "nothing left");
    drop(tx);
    let tx = db.begin_read().unwrap();
    let mut pairs = 0;
    for row in tx.open_table(SERVER_UIDS).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        pairs += chunk::decode(k.value().2, v.value()).unwrap().len() as u64;
    }
    assert_eq!(pairs + 4, total);
}
