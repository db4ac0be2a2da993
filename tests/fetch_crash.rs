//! Interrupted fetches through the daemon: kill -9 and SIGTERM in the middle
//! of a delete-on-server fetch, and a connection kicked by the server. After
//! recovery every dropped mail must be in the store exactly once and gone
//! from the server (invariants 1, 2 and 7).

// Helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fetch as fetchkit;

use std::time::{Duration, Instant};

use rand::Rng;
use zbus::{Connection, OwnedObjectPath};

use common::{Daemon, Env, MailUser};
use fetchkit::Proto;

const MAILS: u32 = 300;

/// When to interrupt the fetch.
#[derive(Debug, Clone, Copy)]
enum At {
    /// Once `Progress` shows at least this many fetched.
    Fetched(u32),
    /// After a random delay of up to this many milliseconds.
    RandomMs(u64),
    /// Once all are fetched, after a random delay of up to this many
    /// milliseconds: aims at the delete on the server.
    AllThenMs(u64),
}

/// Starts `FetchNow` in the background; its result is not awaited (the
/// daemon is about to die), so it runs on its own connection.
fn fetch_in_background(
    conn: &Connection,
    path: &OwnedObjectPath,
) -> tokio::task::JoinHandle<zbus::Result<u32>> {
    let conn = conn.clone();
    let path = path.clone();
    tokio::spawn(async move { fetchkit::account(&conn, &path).await.fetch_now().await })
}

/// Waits for the interruption point; returns the progress seen then.
async fn wait_for(conn: &Connection, path: &OwnedObjectPath, at: At) -> (u32, u32) {
    let acc = fetchkit::account(conn, path).await;
    match at {
        At::Fetched(n) => {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let p = acc.progress().await.unwrap();
                if p.0 >= n {
                    return p;
                }
                assert!(
                    Instant::now() < deadline,
                    "no progress to {n} in 20 s: {p:?}"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        At::AllThenMs(max) => {
            Box::pin(wait_for(conn, path, At::Fetched(MAILS))).await;
            Box::pin(wait_for(conn, path, At::RandomMs(max))).await
        }
        At::RandomMs(max) => {
            let ms = rand::thread_rng().gen_range(0..=max);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            acc.progress().await.unwrap_or((0, 0))
        }
    }
}

/// FetchNow until the server is empty (at most 5 tries).
async fn drain(conn: &Connection, path: &OwnedObjectPath, env: &Env, user: &MailUser) {
    let acc = fetchkit::account(conn, path).await;
    for _ in 0..5 {
        // An earlier fetch may still be cut off; only the end state counts.
        let _ = acc.fetch_now().await;
        if common::message_count(env, user) == 0 {
            return;
        }
    }
    panic!(
        "the server still has {} mails after 5 fetches; LastError: {}",
        common::message_count(env, user),
        acc.last_error().await.unwrap_or_default()
    );
}

/// How the daemon is interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Kill9,
    Term,
}

async fn interrupted_fetch(proto: Proto, at: At, how: Stop) {
    let env = Env::get();
    let user = common::create_user(env, "fc");
    common::drop_messages(env, &user, MAILS);
    let state = tempfile::tempdir().unwrap();
    let mut daemon: Daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let path = fetchkit::account_for(&conn, proto, &user, true, 0).await;

    let background = fetch_in_background(&conn, &path);
    let seen = wait_for(&conn, &path, at).await;
    match how {
        Stop::Kill9 => daemon.kill9(),
        Stop::Term => {
            let t = Instant::now();
            let status = daemon.stop();
            assert!(status.success(), "{proto:?}: SIGTERM exit {status}");
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{proto:?}: stop took {:?}",
                t.elapsed()
            );
        }
    }
    let left = common::message_count(env, &user);
    eprintln!("{proto:?} {how:?} at {at:?}: progress {seen:?}, {left} left on the server");
    // The pending call ends with an error or a count; either is fine.
    let _ = tokio::time::timeout(Duration::from_secs(10), background).await;

    daemon.restart();
    drain(&conn, &path, env, &user).await;
    let mb = fetchkit::mailbox(&conn).await;
    fetchkit::assert_each_once(&mb, &path, MAILS).await;
    assert_eq!(common::message_count(env, &user), 0);
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// Kill points per protocol: after the first batch, in the middle, when all
/// are stored and the delete on the server begins, during that delete, and
/// at a random time.
async fn kill9_at_four_points(proto: Proto) {
    let points = [
        At::Fetched(1),
        At::Fetched(MAILS / 2),
        At::Fetched(MAILS),
        At::AllThenMs(300),
        At::RandomMs(400),
    ];
    for at in points {
        interrupted_fetch(proto, at, Stop::Kill9).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_imap_delete_on_server_fetch() {
    kill9_at_four_points(Proto::Imap).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_pop3_delete_on_server_fetch() {
    kill9_at_four_points(Proto::Pop3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_imap_fetch_loses_nothing() {
    interrupted_fetch(Proto::Imap, At::Fetched(MAILS / 3), Stop::Term).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_pop3_fetch_loses_nothing() {
    interrupted_fetch(Proto::Pop3, At::Fetched(MAILS / 3), Stop::Term).await;
}

/// The server drops the connection (doveadm kick) in the middle of a
/// 1,000-mail IMAP fetch: that fetch fails with a Connection error or ends
/// early; a retry gets the rest, and nothing is stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kicked_connection_mid_fetch() {
    const N: u32 = 1000;
    let env = Env::get();
    let user = common::create_user(env, "fckick");
    common::drop_messages(env, &user, N);
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let path = fetchkit::account_for(&conn, Proto::Imap, &user, false, 0).await;
    let acc = fetchkit::account(&conn, &path).await;

    let background = fetch_in_background(&conn, &path);
    let seen = wait_for(&conn, &path, At::Fetched(50)).await;
    common::kick(env, &user);
    let first = background.await.unwrap();
    eprintln!("kicked at {seen:?}: FetchNow gave {first:?}");
    match &first {
        Ok(n) => assert!(*n < N, "the kick came too late to test anything ({seen:?})"),
        Err(e) => assert_eq!(
            fetchkit::error_name(e),
            "org.postfach.Postfach1.Error.Connection",
            "{e}"
        ),
    }
    let mb = fetchkit::mailbox(&conn).await;
    let after_first = fetchkit::list_all(&mb, &path).await.len() as u32;
    if let Ok(n) = first {
        assert_eq!(n, after_first, "FetchNow counts what it stored");
    }
    let rest = acc.fetch_now().await.expect("the retry fetches");
    assert_eq!(after_first + rest, N, "the retry fetches exactly the rest");
    assert_eq!(acc.fetch_now().await.unwrap(), 0);
    assert_eq!(acc.state().await.unwrap(), "idle");
    fetchkit::assert_each_once(&mb, &path, N).await;
    assert_eq!(common::message_count(env, &user), N, "nothing deleted");
}

/// Invariant 7 with a fetch that cannot end by itself: the server accepted
/// the connection and never answers. SIGTERM must still stop the daemon
/// promptly, and the waiting FetchNow caller gets an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_a_server_hangs_stops_promptly() {
    let env = Env::get();
    let user = common::create_user(env, "fchang");
    let (silent, silent_port) = common::scripted::silent();
    let state = tempfile::tempdir().unwrap();
    let mut daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let mut s = fetchkit::settings(Proto::Imap, &user, &user.password, true, 0);
    s.insert("port", zbus::Variant::from(silent_port));
    let path = fetchkit::create(&conn, s).await;
    let acc = fetchkit::account(&conn, &path).await;
    let background = fetch_in_background(&conn, &path);
    common::eventually("the fetch hanging", Duration::from_secs(5), || {
        let acc = acc.clone();
        async move { acc.state().await.unwrap() == "fetching" }
    })
    .await;

    let t = Instant::now();
    let status = daemon.stop();
    let took = t.elapsed();
    assert!(status.success(), "SIGTERM exit {status}");
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    let answer = tokio::time::timeout(Duration::from_secs(5), background)
        .await
        .expect("the FetchNow caller got no answer after the stop")
        .unwrap();
    assert!(
        answer.is_err(),
        "a cut-off fetch reported success: {answer:?}"
    );
    let log = daemon.log();
    assert!(!log.contains("did not stop in time"), "{log}");
    drop(silent);
}
