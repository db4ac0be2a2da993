//! IMAP servers that are not Dovecot, through the daemon, against a
//! scripted server that answers like GNU imap4d (tests/common/scripted/imap4d.rs):
//!
//! - a big mail whose length is an exact multiple of the partial-fetch
//!   piece is stored byte-exact, and no piece is ever asked for at or past
//!   its end (imap4d answers that with a reply no parser reads);
//! - one mail whose reply cannot be read costs that mail alone: the others
//!   are stored in the same FetchNow, the mail is named in LastError, stays
//!   on the server and is fetched once its reply is readable;
//! - an IDLE that never pushes still fetches new mail every poll interval,
//!   on the kept session.
//!
//! The real Dovecot side of the first point (a mail of exactly 2 MiB,
//! byte-exact) is `big_mail::mails_at_a_multiple_of_the_piece_size_end_right`.
//! No test here asserts how fast something happened: each limit only
//! bounds a test that would otherwise wait for a 29-minute IDLE re-issue.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use zbus::{Connection, OwnedObjectPath, Variant};

use common::scripted::imap4d::Imap4d;
use common::{eventually, fetch, scripted, Daemon};
use postfach::imap::partial::PIECE;

/// Generous: a FetchNow that does not return within this hangs.
const HANG: Duration = Duration::from_secs(90);

struct Run {
    _state: tempfile::TempDir,
    daemon: Daemon,
    conn: Connection,
}

async fn daemon() -> Run {
    let state = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(state.path(), "[fetch]\nread_timeout = 20\n");
    let conn = fetch::bus(&daemon).await;
    Run {
        _state: state,
        daemon,
        conn,
    }
}

impl Run {
    async fn account(&self, server: &Imap4d, poll_interval: u32) -> OwnedObjectPath {
        let mut s = scripted::settings("imap", server.port, false);
        s.insert("poll_interval", Variant::from(poll_interval));
        fetch::create(&self.conn, s).await
    }

    async fn fetch_now(&self, path: &OwnedObjectPath) -> Result<u32, String> {
        let acc = fetch::account(&self.conn, path).await;
        match tokio::time::timeout(HANG, acc.fetch_now()).await {
            Err(_) => panic!("FetchNow hung for {HANG:?}\n{}", self.daemon.log()),
            Ok(r) => r.map_err(|e| e.to_string()),
        }
    }

    async fn status(&self, path: &OwnedObjectPath) -> (String, String) {
        let acc = fetch::account(&self.conn, path).await;
        (acc.state().await.unwrap(), acc.last_error().await.unwrap())
    }

    /// Subject -> stored bytes, read back through GetRaw.
    async fn stored(&self, path: &OwnedObjectPath) -> BTreeMap<String, Vec<u8>> {
        let mb = fetch::mailbox(&self.conn).await;
        let mut out = BTreeMap::new();
        for m in fetch::list_all(&mb, path).await {
            let raw = fetch::raw(&mb, fetch::get::<u64>(&m, "id")).await;
            let subject: String = fetch::get(&m, "subject");
            assert!(out.insert(subject, raw).is_none(), "a mail stored twice");
        }
        out
    }
}

/// A mail of exactly `len` bytes with this subject.
fn mail(subject: &str, len: usize) -> Vec<u8> {
    let mut m = format!("Subject: {subject}\r\n\r\n").into_bytes();
    // generated() starts with a header of 22 bytes, then CRLF lines.
    let body = scripted::generated(len + 22 - m.len(), b'x');
    m.extend_from_slice(&body[22..]);
    assert_eq!(m.len(), len);
    m
}

/// The origins of every partial fetch of mail `uid` the server was asked.
fn origins(server: &Imap4d, uid: u32) -> Vec<usize> {
    server
        .commands()
        .iter()
        .filter(|l| l.contains(&format!("UID FETCH {uid} ")))
        .filter_map(|l| l.split_once("BODY.PEEK[]<"))
        .filter_map(|(_, r)| r.split_once('.'))
        .map(|(o, _)| o.parse().unwrap())
        .collect()
}

/// Regression: the fetch asked for the empty piece after the last full
/// one, imap4d answered `* 2 FETCH (UID 2 BODY[])`, and the whole batch —
/// the small mails beside it too — failed on every try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_of_exactly_two_pieces_is_stored_byte_exact() {
    let size = 2 * PIECE as usize;
    let big = mail("big", size);
    let server = Imap4d::start(vec![
        mail("small 1", 300),
        big.clone(),
        mail("small 3", 400),
    ]);
    let run = daemon().await;
    let path = run.account(&server, 0).await;
    assert_eq!(run.fetch_now(&path).await, Ok(3), "{}", run.daemon.log());
    let stored = run.stored(&path).await;
    assert_eq!(stored.len(), 3, "{:?}", stored.keys());
    let got = &stored["big"];
    assert_eq!(got.len(), size);
    assert!(*got == big, "the big mail's bytes differ");
    let asked = origins(&server, 2);
    assert!(asked.len() >= 2, "fetched in pieces: {asked:?}");
    assert!(
        asked.iter().all(|o| *o < size),
        "a piece was asked at or past the end ({size}): {asked:?}"
    );
    let (state, last_error) = run.status(&path).await;
    assert_eq!((state.as_str(), last_error.as_str()), ("idle", ""));
    assert_eq!(run.fetch_now(&path).await, Ok(0));
}

/// Regression: one reply the parser cannot read discarded the whole batch
/// on every try, so no mail of the account was ever stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unreadable_reply_costs_that_mail_alone() {
    let mails: Vec<Vec<u8>> = (1..=4).map(|i| mail(&format!("m{i}"), 200 + i)).collect();
    let server = Imap4d::start(mails.clone());
    server.break_uid(2, true);
    let run = daemon().await;
    let path = run.account(&server, 0).await;

    // The others, in the same FetchNow; the one is named, the account idle.
    assert_eq!(run.fetch_now(&path).await, Ok(3), "{}", run.daemon.log());
    let stored = run.stored(&path).await;
    assert_eq!(stored.keys().collect::<Vec<_>>(), ["m1", "m3", "m4"]);
    let (state, last_error) = run.status(&path).await;
    assert_eq!(state, "idle");
    assert!(last_error.contains("mail UID 2"), "{last_error}");
    assert!(last_error.contains("UID 2 BODY[]"), "{last_error}");
    assert!(
        run.daemon.log().contains("mail UID 2"),
        "not in the journal"
    );

    // Tried again, alone, at every fetch; still reported, nothing doubled.
    let alone_before = server.count("UID FETCH 2 (");
    assert_eq!(run.fetch_now(&path).await, Ok(0));
    assert!(server.count("UID FETCH 2 (") > alone_before);
    assert!(run.status(&path).await.1.contains("mail UID 2"));

    // Not lost: once its reply is readable it is stored, and all is well.
    server.break_uid(2, false);
    assert_eq!(run.fetch_now(&path).await, Ok(1));
    let stored = run.stored(&path).await;
    assert_eq!(stored.len(), 4);
    assert!(stored["m2"] == mails[1]);
    assert_eq!(run.status(&path).await, ("idle".into(), String::new()));
    assert_eq!(run.fetch_now(&path).await, Ok(0));
}

/// Regression: with IDLE, the account fetched only when the server pushed
/// or every 29 minutes (the IDLE re-issue), whatever its poll interval; a
/// server that never pushes left new mail unfetched that long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_that_never_pushes_still_fetches_every_poll_interval() {
    let server = Imap4d::start(vec![mail("first", 100)]);
    let run = daemon().await;
    let path = run.account(&server, 2).await;
    let limit = Duration::from_secs(60);
    eventually("the first mail", limit, || async {
        run.stored(&path).await.len() == 1
    })
    .await;
    eventually("an IDLE", limit, || async { server.count(" IDLE") > 0 }).await;

    server.deliver(mail("second", 120));
    eventually("the mail that arrived during IDLE", limit, || async {
        run.stored(&path).await.len() == 2
    })
    .await;
    // On the kept session: one login, and IDLE again afterwards.
    assert_eq!(server.count(" LOGIN "), 1, "{:?}", server.commands());
    let idles = server.count(" IDLE");
    eventually("IDLE again", limit, || async {
        server.count(" IDLE") > idles
    })
    .await;
    assert_eq!(run.status(&path).await, ("idle".into(), String::new()));
}
