//! Big mails against the real Dovecot (`scripts/test`), streamed into blob
//! files (src/store/blobs.rs): over IMAP in partial pieces
//! (src/imap/partial.rs), stored byte-exact next to small mails, the end
//! found at an exact multiple of the piece size, the fetch invariants (each
//! mail once, deleted on the server only after its commit) kept through
//! kill -9; over POP3 RETR'd piece by piece with dot-unstuffing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use common::fetch as fetchkit;
use common::noise::Xorshift;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Env, MailUser, Settings};
use postfach::account::Account;
use postfach::fetch::FetchReport;
use postfach::imap::partial::{self, PIECE};
use postfach::net::{Timeouts, TlsContext};
use postfach::store::{Store, BLOB_MIN};
use rand::Rng;

/// A mail of exactly `size` bytes: headers with `subject` and a unique
/// Message-ID, then random base64 in CRLF lines of at most 78 bytes, with
/// a line starting with a dot now and then (POP3 stuffs those).
fn big_mail(subject: &str, size: usize) -> Vec<u8> {
    let tag: u64 = rand::thread_rng().gen();
    let mut m = format!(
        "From: a@example.test\r\nTo: b@example.test\r\nSubject: {subject}\r\n\
         Message-ID: <{tag:x}@big.example.test>\r\nContent-Type: application/octet-stream\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    let mut noise = Xorshift::new(tag);
    assert!(size > m.len() + 2);
    let mut lines = 0;
    while m.len() < size {
        let room = size - m.len();
        lines += 1;
        if lines % 50 == 0 && room >= 78 + 3 + 12 {
            m.extend_from_slice(b".dot line.\r\n");
            continue;
        }
        // A full line, or the last one exactly filling `size` (never a
        // remainder too short for its CRLF).
        let line = if room >= 78 + 3 { 76 } else { room - 2 };
        m.extend((0..line).map(|_| noise.base64()));
        m.extend_from_slice(b"\r\n");
    }
    assert_eq!(m.len(), size);
    m
}

fn small_mail(n: usize) -> Vec<u8> {
    format!(
        "From: a@example.test\r\nSubject: small {n}\r\nMessage-ID: <s{n}.{}@example.test>\r\n\r\n\
         body {n}\r\n",
        rand::thread_rng().gen::<u64>()
    )
    .into_bytes()
}

struct Fixture {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    account: Account,
    password: String,
}

fn fixture(user: &MailUser, delete: bool) -> Fixture {
    fixture_of("imap", Env::get().imaps_port, user, delete)
}

fn fixture_of(kind: &str, port: u16, user: &MailUser, delete: bool) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    let account = Settings::on_dovecot(kind, user)
        .with("port", port)
        .with("username", &user.name)
        .with("delete_on_server", delete)
        .create_in(&store);
    Fixture {
        dir,
        store,
        account,
        password: user.password.clone(),
    }
}

impl Fixture {
    async fn fetch(&self) -> FetchReport {
        let t = Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
            ..Timeouts::default()
        };
        let tls = TlsContext::new(Some(&Env::get().ca)).expect("tls context");
        let (a, p, s) = (&self.account, &self.password, &self.store);
        if a.kind.as_str() == "pop3" {
            postfach::pop3::fetch::fetch(a, p, s, &tls, &t, &|_, _| {}).await
        } else {
            postfach::imap::fetch::fetch(a, p, s, &tls, &t, &|_, _| {}).await
        }
        .expect("fetch")
    }

    /// Subject -> stored bytes of every new mail of `report`.
    fn stored(&self, report: &FetchReport) -> BTreeMap<String, Vec<u8>> {
        report
            .new_ids
            .iter()
            .map(|id| {
                let m = self.store.message(*id).expect("message").expect("listed");
                let raw = self.store.raw(*id).expect("raw").expect("stored");
                assert_eq!(m.size, raw.len() as u64);
                (m.subject, raw)
            })
            .collect()
    }
}

/// Files in `dir`, sorted (empty if it does not exist).
fn files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The maildir files of the user whose size is `len` (what the server holds).
fn server_file(env: &Env, user: &MailUser, len: usize) -> Vec<u8> {
    let md = user.maildir(env);
    let mut found: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .flat_map(|d| std::fs::read_dir(md.join(d)).into_iter().flatten())
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            std::fs::metadata(p)
                .map(|m| m.len() as usize == len)
                .unwrap_or(false)
        })
        .collect();
    assert_eq!(found.len(), 1, "one file of {len} bytes on the server");
    std::fs::read(found.remove(0)).expect("read the maildir file")
}

#[tokio::test]
async fn a_big_mail_next_to_small_ones_is_stored_byte_exact_from_a_blob_file() {
    let env = Env::get();
    let user = common::create_user(env, "imapbig");
    let big = big_mail("the big one", 3 * 1024 * 1024 + 4321);
    common::drop_raw(env, &user, &small_mail(1));
    common::drop_raw(env, &user, &big);
    common::drop_raw(env, &user, &small_mail(2));
    let f = fixture(&user, false);
    let report = f.fetch().await;
    assert_eq!(report.new_ids.len(), 3, "{report:?}");
    let stored = f.stored(&report);
    let got = stored
        .get("the big one")
        .expect("big mail stored with its subject");
    assert!(
        *got == server_file(env, &user, big.len()),
        "big mail bytes differ from the server's"
    );
    assert!(*got == big);
    assert!(stored.contains_key("small 1") && stored.contains_key("small 2"));

    // It went to a blob file, the small ones did not; nothing left staged.
    let blobs = f.dir.path().join("blobs");
    let big_id = report
        .new_ids
        .iter()
        .find(|id| f.store.message(**id).unwrap().unwrap().subject == "the big one")
        .unwrap();
    assert_eq!(files(&blobs), vec![big_id.to_string(), "tmp".into()]);
    let on_disk = std::fs::metadata(blobs.join(big_id.to_string()))
        .unwrap()
        .len();
    assert_eq!(on_disk, big.len() as u64);
    assert!(files(&blobs.join("tmp")).is_empty());
    assert!(f.fetch().await.new_ids.is_empty());
}

/// The end is a piece shorter than asked: a mail of exactly two pieces
/// ends with an empty third one; one byte more ends with a 1-byte piece.
#[tokio::test]
async fn mails_at_a_multiple_of_the_piece_size_end_right() {
    let env = Env::get();
    let user = common::create_user(env, "imappiece");
    let piece = PIECE as usize;
    assert!(2 * piece as u64 > BLOB_MIN);
    let sizes = [2 * piece, 2 * piece + 1, 2 * piece - 1];
    let mails: Vec<Vec<u8>> = sizes
        .iter()
        .map(|s| big_mail(&format!("size {s}"), *s))
        .collect();
    for m in &mails {
        common::drop_raw(env, &user, m);
    }
    let f = fixture(&user, false);
    let report = f.fetch().await;
    let stored = f.stored(&report);
    assert_eq!(stored.len(), 3, "{report:?}");
    for (s, m) in sizes.iter().zip(&mails) {
        let got = stored.get(&format!("size {s}")).expect("stored");
        assert_eq!(got.len(), *s);
        assert!(got == m, "size {s}: bytes differ");
    }
}

#[tokio::test]
async fn delete_on_server_removes_big_mails_once_stored() {
    let env = Env::get();
    let user = common::create_user(env, "imapbigdel");
    let bigs: Vec<Vec<u8>> = (0..2)
        .map(|i| big_mail(&format!("big {i}"), 1_500_000 + i))
        .collect();
    for m in &bigs {
        common::drop_raw(env, &user, m);
    }
    common::drop_raw(env, &user, &small_mail(0));
    let f = fixture(&user, true);
    let report = f.fetch().await;
    assert_eq!(report.new_ids.len(), 3);
    assert_eq!(report.deleted_on_server, 3);
    assert_eq!(common::message_count(env, &user), 0);
    let stored = f.stored(&report);
    for (i, m) in bigs.iter().enumerate() {
        assert!(
            stored.get(&format!("big {i}")) == Some(m),
            "big {i} differs"
        );
    }
    assert!(f.fetch().await.new_ids.is_empty());
}

/// Mails of the kill -9 test: half big, half small.
const MAILS: usize = 20;

/// kill -9 of the daemon at random points of a delete-on-server fetch of
/// big mails (mid-piece, between pieces, at a commit, during the delete):
/// after a restart every mail is stored exactly once and byte-exact, the
/// server is empty, and no staged or orphaned blob file is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_a_big_mail_fetch_loses_nothing() {
    let env = Env::get();
    for round in 0..3 {
        let user = common::create_user(env, "imapbigkill");
        let mut sent: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for i in 0..MAILS / 2 {
            let m = big_mail(&format!("big {i}"), 1_200_000 + i * 300_000);
            common::drop_raw(env, &user, &m);
            sent.insert(fetchkit::message_id(&m), m);
            let s = small_mail(i);
            common::drop_raw(env, &user, &s);
            sent.insert(fetchkit::message_id(&s), s);
        }
        let state = tempfile::tempdir().unwrap();
        let mut daemon = fetchkit::start(state.path());
        let conn = fetchkit::bus(&daemon).await;
        let path = fetchkit::account_for(&conn, fetchkit::Proto::Imap, &user, true, 0).await;
        let background = {
            let (conn, path) = (conn.clone(), path.clone());
            tokio::spawn(async move { fetchkit::account(&conn, &path).await.fetch_now().await })
        };
        // Right after the first commit (the next pieces are downloading),
        // once everything is stored (the delete on the server runs), and
        // at a random time.
        let acc = fetchkit::account(&conn, &path).await;
        let wait_for = [1, MAILS as u32, 0][round];
        let deadline = Instant::now() + Duration::from_secs(60);
        while acc.progress().await.map_or(0, |p| p.0) < wait_for {
            assert!(Instant::now() < deadline, "no progress to {wait_for}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let ms = rand::thread_rng().gen_range(0..=[20, 5, 1500][round]);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        daemon.kill9();
        let left = common::message_count(env, &user);
        eprintln!(
            "round {round}: killed {ms} ms after {wait_for} stored, {left} left on the server"
        );
        let _ = tokio::time::timeout(Duration::from_secs(10), background).await;

        daemon.restart();
        for _ in 0..5 {
            let _ = acc.fetch_now().await;
            if common::message_count(env, &user) == 0 {
                break;
            }
        }
        assert_eq!(common::message_count(env, &user), 0, "server not drained");
        let mb = fetchkit::mailbox(&conn).await;
        let mut got: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut blob_ids = Vec::new();
        for m in fetchkit::list_all(&mb, &path).await {
            let id: u64 = fetchkit::get(&m, "id");
            let raw = fetchkit::raw(&mb, id).await;
            if raw.len() as u64 > BLOB_MIN {
                blob_ids.push(id.to_string());
            }
            let mid = fetchkit::message_id(&raw);
            assert!(got.insert(mid.clone(), raw).is_none(), "{mid} stored twice");
        }
        assert_eq!(got.len(), sent.len(), "mails lost");
        assert!(got == sent, "stored bytes differ from the sent ones");
        // The restart removed what the kill left staged or orphaned.
        let blobs = daemon.state_dir().join("blobs");
        blob_ids.push("tmp".into());
        blob_ids.sort();
        assert_eq!(files(&blobs), blob_ids);
        assert!(files(&blobs.join("tmp")).is_empty());
        assert!(!daemon.log().contains("panicked"));
    }
}

/// POP3: a big mail (with lines the server dot-stuffs) next to small ones
/// is RETR'd into a blob file and stored exactly as the server's file;
/// delete on server removes all once stored.
#[tokio::test]
async fn pop3_streams_a_big_mail_into_a_blob_file() {
    let env = Env::get();
    let user = common::create_user(env, "pop3big");
    let big = big_mail("pop3 big", 2 * 1024 * 1024 + 99);
    assert!(big.windows(3).any(|w| w == b"\n.d"));
    common::drop_raw(env, &user, &small_mail(1));
    common::drop_raw(env, &user, &big);
    common::drop_raw(env, &user, &small_mail(2));
    let f = fixture_of("pop3", env.pop3s_port, &user, true);
    let report = f.fetch().await;
    assert_eq!(report.new_ids.len(), 3, "{report:?}");
    assert_eq!(report.deleted_on_server, 3);
    assert_eq!(common::message_count(env, &user), 0);
    let stored = f.stored(&report);
    let got = stored
        .get("pop3 big")
        .expect("big mail stored with its subject");
    assert!(
        *got == fetchkit::as_sent(fetchkit::Proto::Pop3, &big),
        "bytes differ"
    );
    assert!(*got == big);
    assert!(stored.contains_key("small 1") && stored.contains_key("small 2"));
    let blobs = f.dir.path().join("blobs");
    assert_eq!(files(&blobs).len(), 2, "one blob file and tmp/");
    assert!(files(&blobs.join("tmp")).is_empty());
}

/// A UID that is not (or no longer) on the server gives no piece: the mail
/// is skipped (None, nothing staged is left), and the session goes on to
/// fetch the next big mail.
#[tokio::test]
async fn a_vanished_uid_is_skipped_and_leaves_no_file() {
    let env = Env::get();
    let user = common::create_user(env, "imapgone");
    let big = big_mail("still here", 1_300_000);
    common::drop_raw(env, &user, &big);
    let f = fixture(&user, false);
    let t = Timeouts {
        connect: Duration::from_secs(10),
        read: Duration::from_secs(30),
        ..Timeouts::default()
    };
    let tls = TlsContext::new(Some(&env.ca)).expect("tls context");
    let mut session = postfach::imap::session::open(&f.account, &f.password, &tls, &t)
        .await
        .expect("login");
    let mailbox = session.examine("INBOX").await.expect("EXAMINE");
    let validity = mailbox.uid_validity.expect("UIDVALIDITY");
    let next = mailbox.uid_next.expect("UIDNEXT");
    let (store, host) = (&f.store, "127.0.0.1");
    let gone = partial::fetch(&mut session, store, &t, host, validity, next + 10, 5)
        .await
        .expect("no error for a missing UID");
    assert!(gone.is_none());
    assert!(files(&f.dir.path().join("blobs").join("tmp")).is_empty());
    let here = partial::fetch(&mut session, store, &t, host, validity, next - 1, 5)
        .await
        .expect("fetch")
        .expect("the mail");
    assert_eq!(here.raw.len(), big.len() as u64);
    let ids = f
        .store
        .commit_batch(&f.account, vec![here], &postfach::mime::summarize)
        .expect("commit");
    assert!(f.store.raw(ids[0]).expect("raw").expect("stored") == big);
    postfach::imap::session::logout(session, postfach::imap::LOGOUT_WAIT).await;
}
