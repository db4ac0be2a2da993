//! One owner per account: its task does all of its IMAP work, answers a
//! FetchNow when the work is done (LOGOUT after the answer, bounded), and
//! nothing an account's server does — swallowing LOGOUT — delays a call for
//! another account, not even while that account is updated or deleted.
//! DeleteMessage's Trash move runs on the account's kept connection.
//!
//! No test here asserts how fast something was: each bound below is a
//! fraction of a timeout the old behaviour had to sit out in full (the 60 s
//! read timeout, the 8 s stop grace), so only that behaviour can miss it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use common::fetch as fetchkit;

use std::collections::HashMap;
use std::time::Duration;

use common::scripted::fake_imap::{FakeImap, Options};
use common::{eventually, Env, Settings};
use fetchkit::Proto;
use zbus::Variant;

/// The daemon's read timeout here, which a swallowed LOGOUT used to cost.
const READ_TIMEOUT_S: u64 = 60;
/// A FetchNow must answer well inside a third of it.
const ANSWER_BOUND: Duration = Duration::from_secs(READ_TIMEOUT_S / 3);
/// The daemon waits up to 8 s for a stopping task (STOP_GRACE); a call for
/// another account must not wait for that: half of it is the bound.
const OTHER_ACCOUNT_BOUND: Duration = Duration::from_secs(4);

fn config(env: &Env) -> String {
    format!(
        "{}[fetch]\nread_timeout = {READ_TIMEOUT_S}\n",
        fetchkit::config(env)
    )
}

/// An on-demand IMAP account (poll interval 0) on the fake server.
fn on_fake(fake: &FakeImap) -> HashMap<&'static str, Variant<'static>> {
    Settings::new()
        .with("kind", "imap")
        .with("host", "127.0.0.1")
        .with("port", fake.port())
        .with("encryption", "none")
        .with("address", "hung@example.test")
        .with("password", "secret-Pw-1")
        .with("poll_interval", 0u32)
        .dbus()
}

fn swallowing() -> Options {
    Options {
        swallow_logout: true,
        ..Options::default()
    }
}

/// Regression: an on-demand account whose server never answers LOGOUT
/// answered every FetchNow only after the read timeout, although its fetch
/// was done within milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_now_answers_before_a_swallowed_logout() {
    let env = Env::get();
    let fake = FakeImap::start(swallowing()).await;
    let state = tempfile::tempdir().unwrap();
    let daemon = common::Daemon::start(state.path(), &config(env));
    let conn = fetchkit::bus(&daemon).await;
    let path = fetchkit::create(&conn, on_fake(&fake)).await;
    let acc = fetchkit::account(&conn, &path).await;

    // Twice: the first one's LOGOUT must not delay the next request either.
    for round in 1..=2 {
        let answered = tokio::time::timeout(ANSWER_BOUND, acc.fetch_now()).await;
        let n = answered
            .unwrap_or_else(|_| panic!("FetchNow {round} waited for the swallowed LOGOUT"))
            .expect("FetchNow");
        assert_eq!(n, 0);
    }
    // LOGOUT is still said, after the answer, and the connection is closed
    // by the daemon (bounded), not held for the read timeout.
    eventually("both LOGOUTs", Duration::from_secs(10), || async {
        fake.count("LOGOUT") == 2
    })
    .await;
    eventually(
        "the connections closed",
        Duration::from_secs(10),
        || async { fake.open_connections() == 0 },
    )
    .await;
    let commands = fake.commands();
    let logout = commands.iter().position(|c| c == "LOGOUT");
    let examine = commands.iter().position(|c| c.starts_with("EXAMINE"));
    assert!(
        examine < logout,
        "LOGOUT only after the fetch: {commands:?}"
    );
}

/// Regression: updating or deleting an account restarted its task in the
/// owner loop, which waited up to the stop grace for a task stuck in a
/// swallowed LOGOUT — and every other account's calls waited with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_a_hung_account_delays_no_other_account() {
    let env = Env::get();
    let fake = FakeImap::start(swallowing()).await;
    let good_user = common::create_user(env, "otgood");
    common::drop_messages(env, &good_user, 1);
    let state = tempfile::tempdir().unwrap();
    let daemon = common::Daemon::start(state.path(), &config(env));
    let conn = fetchkit::bus(&daemon).await;
    let hung_path = fetchkit::create(&conn, on_fake(&fake)).await;
    let good = fetchkit::account_for(&conn, Proto::Imap, &good_user, false, 0).await;
    let hung = fetchkit::account(&conn, &hung_path).await;
    let good = fetchkit::account(&conn, &good).await;

    // A FetchNow whose LOGOUT the server swallows, still in the air.
    let in_flight = {
        let (conn, path) = (conn.clone(), hung_path.clone());
        tokio::spawn(async move { fetchkit::account(&conn, &path).await.fetch_now().await })
    };
    eventually("the swallowed LOGOUT", Duration::from_secs(10), || async {
        fake.count("LOGOUT") >= 1
    })
    .await;

    // Update restarts the hung account's task; the other account's
    // FetchNow right behind it answers in its normal time.
    let mut change = HashMap::new();
    change.insert("name", Variant::from("renamed while hung"));
    hung.update(change).await.expect("Update");
    let answered = tokio::time::timeout(OTHER_ACCOUNT_BOUND, good.fetch_now()).await;
    let n = answered
        .expect("the good account's FetchNow waited for the hung account's restart")
        .expect("FetchNow");
    assert_eq!(n, 1);

    // The same for Delete.
    hung.fetch_now()
        .await
        .expect("FetchNow of the restarted account");
    hung.delete().await.expect("Delete");
    let answered = tokio::time::timeout(OTHER_ACCOUNT_BOUND, good.fetch_now()).await;
    assert_eq!(
        answered
            .expect("the good account's FetchNow waited for the hung account's removal")
            .expect("FetchNow"),
        0
    );
    let first = tokio::time::timeout(ANSWER_BOUND, in_flight).await;
    assert!(
        matches!(first, Ok(Ok(Ok(0)))),
        "the first FetchNow got its answer: {first:?}"
    );
}

/// DeleteMessage on an idling IMAP account: the Trash move is a request to
/// the account's task, done on the connection it keeps for IDLE — no second
/// login — and the fetches after it still run on that one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_move_runs_on_the_kept_connection() {
    let env = Env::get();
    let user = common::create_user(env, "ottrash");
    common::drop_messages(env, &user, 2);
    common::doveadm(env, &["mailbox", "create", "-u", &user.address, "Trash"]);
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let mut s = fetchkit::settings(Proto::Imap, &user, &user.password, false, 300);
    s.insert("trash_folder", Variant::from("Trash"));
    let path = fetchkit::create(&conn, s).await;
    let acc = fetchkit::account(&conn, &path).await;
    let mb = fetchkit::mailbox(&conn).await;
    eventually("the first fetch", Duration::from_secs(10), || async {
        fetchkit::list_all(&mb, &path).await.len() == 2
    })
    .await;
    let id = fetchkit::get::<u64>(&fetchkit::list_all(&mb, &path).await[0], "id");

    mb.delete_message("", id).await.expect("DeleteMessage");
    assert_eq!(common::message_count(env, &user), 1, "gone from INBOX");
    let trash = common::doveadm(
        env,
        &[
            "mailbox",
            "status",
            "-u",
            &user.address,
            "messages",
            "Trash",
        ],
    );
    assert!(trash.contains("messages=1"), "moved into Trash: {trash}");
    assert_eq!(acc.fetch_now().await.unwrap(), 0, "nothing comes back");
    // New mail still arrives (IDLE news or this FetchNow, whichever is first).
    common::drop_messages(env, &user, 1);
    acc.fetch_now().await.expect("FetchNow");
    eventually("the new mail", Duration::from_secs(10), || async {
        fetchkit::list_all(&mb, &path).await.len() == 2
    })
    .await;
    assert_eq!(
        common::dovecot::logins(env, &user.address),
        1,
        "the fetches, the IDLE and the Trash move ran on one connection"
    );
}
