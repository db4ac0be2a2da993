//! Schema 11 packs raw mails with a zstd dictionary trained on the store's
//! own mail. A store of schema 10 trains it at start and repacks its rows in
//! bounded transactions: a kill -9 during the training and one during the
//! repacking leave every mail readable and no row naming a dictionary the
//! store lacks; the next start finishes the job byte-exact. A store whose
//! daemon trained the dictionary while fetching backs up and restores
//! with it (issue 16, footprint).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, ReadableTable};

use common::fetch as fetchkit;
use common::restorekit::{all_mails, backup, restore};
use common::{migration, Env, TestBus};
use fetchkit::Proto;
use postfach::store::compress::{self, Dicts, ZSTD_DICT};
use postfach::store::schema::{KEY_DICT_PACKED, KEY_VERSION, META, RAW_DICTS, RAW_PACKED};
use postfach::store::{NewMail, Store, DB_FILE};

const MAILS: usize = 5_000;

fn mail(i: usize) -> Vec<u8> {
    format!(
        "Received: from mx{r}.example.org by mail.example.com (Postfix) id {i:X}\r\n\
         From: \"Vertrieb {r}\" <vertrieb{r}@example.org>\r\nTo: kunde@example.com\r\n\
         Subject: Angebot {i}\r\nMessage-ID: <{i}@dict.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
        format!("Position {i} kostet {} Euro. ", i * 7919 % 10007).repeat(30),
        r = i % 13,
    )
    .into_bytes()
}

/// A store of `MAILS` mails (and the fixtures) in the schema 10 layout:
/// every row packed without a dictionary, no dictionary table.
fn schema_10_store(dir: &Path) -> BTreeMap<u64, Vec<u8>> {
    let mut want = BTreeMap::new();
    {
        let store = Store::open(dir).unwrap();
        let a = migration::quiet_account(&store, "dict@example.org", &[]);
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut raws: Vec<Vec<u8>> = std::fs::read_dir(fixtures)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        raws.extend((0..MAILS).map(mail));
        for (n, chunk) in raws.chunks(1000).enumerate() {
            let batch = chunk
                .iter()
                .enumerate()
                .map(|(i, raw)| NewMail {
                    server_id: format!("pop3:{n}-{i}"),
                    raw: raw.clone().into(),
                    received: 1_700_000_000,
                })
                .collect();
            let ids = store
                .commit_batch(&a, batch, &postfach::mime::summarize)
                .unwrap();
            assert_eq!(ids.len(), chunk.len());
            want.extend(ids.into_iter().zip(chunk.iter().cloned()));
        }
    }
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let dicts = Dicts::default();
        let dict_rows = tx.open_table(RAW_DICTS).unwrap();
        let mut packed = tx.open_table(RAW_PACKED).unwrap();
        let all: Vec<(u64, Vec<u8>)> = packed
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                let raw = compress::unpack_stored(v.value(), &dict_rows, &dicts).unwrap();
                (k.value(), raw)
            })
            .collect();
        for (id, raw) in all {
            let row = compress::pack(&raw).unwrap();
            packed.insert(id, row.as_slice()).unwrap();
        }
        let mut meta = tx.open_table(META).unwrap();
        meta.insert(KEY_VERSION, 10u64.to_be_bytes().as_slice())
            .unwrap();
        meta.remove(KEY_DICT_PACKED).unwrap();
    }
    tx.delete_table(RAW_DICTS).unwrap();
    tx.commit().unwrap();
    want
}

/// Every mail read straight from the file, the way the store reads it;
/// and how many rows are packed with a dictionary. Panics on a row that
/// names a dictionary the file lacks.
fn read_file(dir: &Path) -> (BTreeMap<u64, Vec<u8>>, usize, usize) {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_write().unwrap();
    let dicts = Dicts::default();
    let (mut out, mut with) = (BTreeMap::new(), 0);
    let stored_dicts;
    {
        let dict_rows = tx.open_table(RAW_DICTS).unwrap();
        stored_dicts = dict_rows.iter().unwrap().count();
        let packed = tx.open_table(RAW_PACKED).unwrap();
        for r in packed.iter().unwrap() {
            let (k, v) = r.unwrap();
            with += usize::from(v.value()[0] == ZSTD_DICT);
            let raw = compress::unpack_stored(v.value(), &dict_rows, &dicts)
                .unwrap_or_else(|e| panic!("mail {}: {e}", k.value()));
            out.insert(k.value(), raw);
        }
    }
    tx.abort().unwrap();
    (out, with, stored_dicts)
}

#[test]
fn kills_during_training_and_repacking_leave_every_mail_readable() {
    let dir = tempfile::tempdir().unwrap();
    let want = schema_10_store(dir.path());
    let bus = TestBus::start();

    // Killed while training: nothing or the dictionary with its first rows.
    migration::kill_at(
        dir.path(),
        &bus,
        "first-start.log",
        "training the store's mail dictionary",
    );
    let (got, with, dicts) = read_file(dir.path());
    assert!(got == want, "a mail differs after the first kill");
    assert!(
        dicts <= 1 && (with == 0 || dicts == 1),
        "{with} rows, {dicts} dictionaries"
    );

    // Killed after a repacking transaction: some rows with the dictionary,
    // others not yet, all readable.
    migration::kill_at(
        dir.path(),
        &bus,
        "second-start.log",
        "packing stored mails with the store's dictionary",
    );
    let (got, with, dicts) = read_file(dir.path());
    assert!(got == want, "a mail differs after the second kill");
    assert_eq!(dicts, 1);
    assert!(
        with > 0 && with < MAILS,
        "not killed in the middle: {with} of {} rows repacked",
        want.len()
    );

    // Third start: finishes, serves, and every mail is byte-exact.
    migration::serve_once(dir.path(), &bus, "third-start.log");
    let (got, with, dicts) = read_file(dir.path());
    assert!(got == want, "a mail differs after the last start");
    assert_eq!(dicts, 1);
    assert!(with >= MAILS, "only {with} rows repacked");
    let store = Store::open(dir.path()).unwrap();
    for (id, raw) in &want {
        assert!(
            store.raw(*id).unwrap().unwrap() == *raw,
            "mail {id} differs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_trains_the_dictionary_and_a_backup_carries_it() {
    let env = Env::get();
    let user = common::create_user(env, "dict");
    let n = 260;
    common::drop_messages(env, &user, n);
    let state = tempfile::tempdir().unwrap();
    let mut d = fetchkit::start(state.path());
    let conn = fetchkit::bus(&d).await;
    let path = fetchkit::account_for(&conn, Proto::Imap, &user, true, 0).await;
    let acc = fetchkit::account(&conn, &path).await;
    assert_eq!(acc.fetch_now().await.unwrap(), n);
    let mails = all_mails(&conn).await;
    assert_eq!(mails.len(), n as usize);
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("backup");
    backup(&conn, &file).await.unwrap();
    drop(conn);
    d.stop();
    let (got, with, dicts) = read_file(state.path());
    assert_eq!((got.len(), with, dicts), (n as usize, n as usize, 1));

    let fresh = tempfile::tempdir().unwrap();
    let mut b = fetchkit::start(fresh.path());
    let conn_b = fetchkit::bus(&b).await;
    restore(&conn_b, &file).await.unwrap();
    assert_eq!(all_mails(&conn_b).await, mails);
    drop(conn_b);
    b.stop();
    let (restored, with, dicts) = read_file(fresh.path());
    assert_eq!((with, dicts), (n as usize, 1));
    assert!(restored.values().eq(got.values()), "restored raws differ");
}
