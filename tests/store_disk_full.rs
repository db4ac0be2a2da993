//! A full disk under the store (ARCHITECTURE.md "Invariants", 1; issue 10 item
//! 8): a small tmpfs holds the state directory and a ballast fills it.
//! While it is full every write fails with a clear Storage error and
//! nothing stored is lost; once space returns, writing goes on without a
//! restart (redb refuses every write of a handle after an I/O error, so
//! the store must reopen it). First against the store itself, then through
//! the daemon fetching from the real Dovecot with delete-on-server on.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

#[path = "common/tmpfs.rs"]
mod tmpfs;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use postfach::account::{Account, SettingValue};
use postfach::dbus::proxy::ManagerProxy;
use postfach::error::Error;
use postfach::store::{NewMail, Raw, Store};

use common::fetch as fetchkit;
use common::noise::Xorshift;
use common::Env;
use fetchkit::Proto;
use tmpfs::Tmpfs;
use zbus::Variant;

fn account(store: &Store) -> Account {
    let settings = [
        ("kind", "pop3"),
        ("host", "127.0.0.1"),
        ("address", "full@example.org"),
        ("tenant", "t1"),
    ]
    .map(|(k, v)| (k.to_string(), SettingValue::Str(v.into())));
    store
        .create_account(|id| Account::create(id, &settings))
        .unwrap()
}

/// Appends 76-character lines of base64 noise seeded by `seed` until `m`
/// holds `size` bytes: padding that repeats would compress to nothing and
/// never fill the disk; noise keeps about three quarters of its size.
fn pad_with_noise(m: &mut Vec<u8>, seed: u64, size: usize) {
    let mut noise = Xorshift::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    while m.len() < size {
        m.extend((0..76).map(|_| noise.base64()));
        m.extend_from_slice(b"\r\n");
    }
}

/// Mail `i` of about `size` bytes (distinct content per `i`).
fn mail_bytes(i: u32, size: usize) -> Vec<u8> {
    let mut m = format!("Subject: mail {i}\r\nMessage-ID: <{i}@full.test>\r\n\r\n").into_bytes();
    pad_with_noise(&mut m, u64::from(i), size);
    m
}

fn new_mail(store: &Store, i: u32, bytes: &[u8]) -> postfach::error::Result<NewMail> {
    let raw = if bytes.len() as u64 > postfach::store::BLOB_MIN {
        let mut w = store.blob_writer()?;
        w.write(bytes)?;
        Raw::Blob(w.finish()?)
    } else {
        Raw::Bytes(bytes.to_vec())
    };
    Ok(NewMail {
        server_id: format!("pop3:{i}"),
        raw,
        received: 1_700_000_000,
    })
}

fn commit(
    store: &Store,
    a: &Account,
    mails: &[(u32, Vec<u8>)],
) -> postfach::error::Result<Vec<u64>> {
    let batch = mails
        .iter()
        .map(|(i, b)| new_mail(store, *i, b))
        .collect::<postfach::error::Result<Vec<_>>>()?;
    store.commit_batch(a, batch, &postfach::mime::summarize)
}

fn says_disk_full(e: &Error) -> bool {
    matches!(e, Error::Storage { message, .. } if message.contains("no space left for the store"))
}

/// Every stored mail of the account: server id -> bytes (each message
/// with exactly one server id, each server id known to the fetch
/// bookkeeping); and how many messages the store counts.
fn stored(store: &Store, a: &Account) -> (BTreeMap<String, Vec<u8>>, u64) {
    let query = postfach::store::ListQuery {
        limit: 10_000,
        ..postfach::store::ListQuery::new(postfach::store::Visibility::All, "inbox")
    };
    let (page, _) = store.list_messages(&query).unwrap();
    let mut out = BTreeMap::new();
    for m in page {
        let sids = store.server_ids(m.id).unwrap();
        assert_eq!(sids.len(), 1, "message {} has server ids {sids:?}", m.id);
        let bytes = store.raw(m.id).unwrap().expect("raw bytes");
        assert!(
            out.insert(sids[0].clone(), bytes).is_none(),
            "{} twice",
            sids[0]
        );
    }
    let known = store.known_server_ids(&a.id, "pop3:").unwrap();
    assert_eq!(known.len(), out.len());
    (out, store.count_messages(&a.id).unwrap())
}

#[test]
fn the_store_fills_up_and_writes_again_once_space_returns() {
    let fs = Tmpfs::mount(12 * 1024 * 1024);
    let state = fs.path().join("state");
    let store = Store::open(&state).unwrap();
    let a = account(&store);
    let ballast = fs.fill_leaving(1024 * 1024);

    // Batches of small mails until the disk is full.
    let mut sent: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut next = 0u32;
    let failed = loop {
        let batch: Vec<(u32, Vec<u8>)> = (next..next + 10)
            .map(|i| (i, mail_bytes(i, 16_000)))
            .collect();
        next += 10;
        match commit(&store, &a, &batch) {
            Ok(ids) => {
                assert_eq!(ids.len(), 10);
                sent.extend(batch);
            }
            Err(e) => {
                assert!(says_disk_full(&e), "{e:?}");
                break batch;
            }
        }
        assert!(next < 2_000, "the disk never filled up");
    };
    assert!(!sent.is_empty(), "not even one batch fitted");

    // While it is full: what was stored reads back, writes fail clearly.
    let (got, count) = stored(&store, &a);
    assert_eq!(count, sent.len() as u64);
    for (i, bytes) in &sent {
        assert_eq!(&got[&format!("pop3:{i}")], bytes, "mail {i}");
    }
    let big = vec![(5_000, mail_bytes(5_000, 1_300_000))];
    let err = commit(&store, &a, &big).unwrap_err();
    assert!(says_disk_full(&err), "{err:?}");
    let err = commit(&store, &a, &failed).unwrap_err();
    assert!(says_disk_full(&err), "{err:?}");

    // Space returns: the same store writes again (after its reopen backoff).
    std::fs::remove_file(ballast).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match commit(&store, &a, &failed) {
            Ok(ids) => {
                assert_eq!(ids.len(), 10, "the failed batch was partly stored");
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "still failing: {e:?}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    sent.extend(failed);
    commit(&store, &a, &big).unwrap();
    sent.extend(big);

    // Every mail once, byte for byte, and no file of a failed batch left.
    let check = |store: &Store| {
        let (got, count) = stored(store, &a);
        assert_eq!(count, sent.len() as u64);
        assert_eq!(got.len(), sent.len());
        for (i, bytes) in &sent {
            assert!(&got[&format!("pop3:{i}")] == bytes, "mail {i} differs");
        }
        let blobs: Vec<_> = std::fs::read_dir(state.join("blobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "tmp")
            .collect();
        assert_eq!(blobs.len(), 1, "{blobs:?}");
    };
    check(&store);
    drop(store);
    check(&Store::open(&state).unwrap());
}

#[test]
fn a_store_that_cannot_be_reopened_for_writing_still_serves_its_mail() {
    let fs = Tmpfs::mount(8 * 1024 * 1024);
    let state = fs.path().join("state");
    let store = Store::open(&state).unwrap();
    let a = account(&store);
    let first: Vec<(u32, Vec<u8>)> = (0..10).map(|i| (i, mail_bytes(i, 5_000))).collect();
    commit(&store, &a, &first).unwrap();

    // The disk fills up, and the state directory turns read-only for new
    // opens (a read-only bind mount over it; the open file stays writable
    // through the old mount), so the reopen for writing fails.
    let ballast = fs.fill_leaving(0);
    let big: Vec<(u32, Vec<u8>)> = (10..20).map(|i| (i, mail_bytes(i, 100_000))).collect();
    let err = commit(&store, &a, &big).unwrap_err();
    assert!(says_disk_full(&err), "{err:?}");
    let read_only = fs.bind_read_only(&state);
    let (got, _) = stored(&store, &a);
    assert_eq!(got.len(), 10, "the mail is not readable");
    for (i, bytes) in &first {
        assert_eq!(&got[&format!("pop3:{i}")], bytes, "mail {i}");
    }
    let err = store.set_sync_state(&a.id, "k", "v").unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");

    drop(read_only);
    std::fs::remove_file(ballast).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while let Err(e) = commit(&store, &a, &big) {
        assert!(Instant::now() < deadline, "still failing: {e:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (got, count) = stored(&store, &a);
    assert_eq!((got.len(), count), (20, 20));
    for (i, bytes) in first.iter().chain(&big) {
        assert_eq!(&got[&format!("pop3:{i}")], bytes, "mail {i}");
    }
}

/// The server's INBOX as Message-IDs (the mails of this test carry one).
fn server_ids(env: &Env, user: &common::MailUser) -> Vec<String> {
    let out = common::doveadm(
        env,
        &[
            "fetch",
            "-u",
            &user.address,
            "hdr.message-id",
            "mailbox",
            "INBOX",
            "all",
        ],
    );
    out.lines()
        .filter_map(|l| l.split_once(':').map(|(_, v)| v.trim().to_string()))
        .filter(|v| v.starts_with('<'))
        .collect()
}

async fn fetch_through_a_full_disk(proto: Proto) {
    let env = Env::get();
    let user = common::create_user(env, "full");
    let tag = common::unique("t");
    let n = 120u32;
    for i in 0..n {
        // The small mails fill the disk inside the store file (redb's I/O
        // error); the last few go the blob-file way once there is room.
        let size = if i >= n - 4 { 1_200_000 } else { 20_000 };
        let mut m = format!(
            "From: a@example.test\r\nSubject: {tag} {i}\r\nMessage-ID: <{i}.{tag}@postfach.test>\r\n\r\n"
        )
        .into_bytes();
        pad_with_noise(&mut m, u64::from(i), size);
        common::drop_raw(env, &user, &m);
    }
    let fs = Tmpfs::mount(24 * 1024 * 1024);
    let state = fs.path().join("state");
    let mut daemon = fetchkit::start(&state);
    let pid = daemon.pid();
    let conn = fetchkit::bus(&daemon).await;
    let path = fetchkit::account_for(&conn, proto, &user, true, 0).await;
    let acc = fetchkit::account(&conn, &path).await;
    let mb = fetchkit::mailbox(&conn).await;
    let ballast = fs.fill_leaving(1024 * 1024);

    let err = acc
        .fetch_now()
        .await
        .expect_err("a fetch into a full disk fails");
    assert_eq!(
        fetchkit::error_name(&err),
        "org.postfach.Postfach1.Error.Storage",
        "{proto:?}: {err}"
    );
    assert_eq!(acc.state().await.unwrap(), "error");
    let last = acc.last_error().await.unwrap();
    assert!(
        last.contains("no space left for the store"),
        "{proto:?}: LastError {last:?}"
    );
    // Nothing left the server that is not stored; reads still work.
    let listed = fetchkit::list_all(&mb, &path).await;
    let stored = listed.len();
    let on_server = server_ids(env, &user).len();
    assert!(stored < n as usize, "{proto:?}: everything fitted");
    assert!(
        stored + on_server >= n as usize,
        "{proto:?}: {stored} stored + {on_server} on the server < {n}"
    );

    // What a CRM sees meanwhile: stored mail is listed and read back, and
    // a write fails with the same clear Storage error (unless it fits in
    // the pages the failed batch left free).
    if let Some(first) = listed.first() {
        let bytes = fetchkit::raw(&mb, fetchkit::get::<u64>(first, "id")).await;
        assert!(bytes.starts_with(b"From: a@example.test"), "{proto:?}");
    }
    let mut s = HashMap::new();
    s.insert("kind", Variant::from("pop3"));
    s.insert("host", Variant::from("127.0.0.1"));
    s.insert("address", Variant::from("other@example.org"));
    s.insert("tenant", Variant::from("mandant1"));
    let manager = ManagerProxy::new(&conn).await.unwrap();
    let created = manager.create_account(s).await;
    eprintln!("{proto:?}: CreateAccount while full: {created:?}");
    if let Err(e) = created {
        assert_eq!(
            fetchkit::error_name(&e),
            "org.postfach.Postfach1.Error.Storage",
            "{proto:?}: {e}"
        );
        assert!(
            e.to_string().contains("no space left for the store"),
            "{proto:?}: {e}"
        );
    }

    std::fs::remove_file(ballast).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match acc.fetch_now().await {
            Ok(_) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "{proto:?}: still failing: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    // Every mail once, byte for byte (GetRaw), none left on the server,
    // and the same daemon process throughout.
    let counts = fetchkit::stored_ids(&mb, &path).await;
    let want: BTreeMap<String, u32> = (0..n)
        .map(|i| (format!("<{i}.{tag}@postfach.test>"), 1))
        .collect();
    assert_eq!(counts, want, "{proto:?}: stored mails");
    assert!(
        server_ids(env, &user).is_empty(),
        "{proto:?}: left on the server"
    );
    assert_eq!(acc.state().await.unwrap(), "idle");
    assert_eq!(acc.last_error().await.unwrap(), "");
    assert_eq!(daemon.pid(), pid, "the daemon was restarted");
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop3_fetch_goes_on_after_the_disk_was_full() {
    fetch_through_a_full_disk(Proto::Pop3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imap_fetch_goes_on_after_the_disk_was_full() {
    fetch_through_a_full_disk(Proto::Imap).await;
}
