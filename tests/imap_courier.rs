//! An IMAP server that sends no UIDNEXT (Courier-IMAP 5), through the
//! daemon, against a scripted server (tests/common/scripted/courier.rs) that
//! refuses a full UID listing when nothing arrived since the last one:
//! "nothing new" must be answered without listing INBOX, and new mail must
//! still be found and stored.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::scripted::courier::Courier;
use common::{fetch, scripted, Daemon};
use postfach::dbus::proxy::AccountProxy;

/// Generous: a FetchNow that does not return within this hangs.
const HANG: Duration = Duration::from_secs(90);

fn mail(subject: &str) -> Vec<u8> {
    format!("Subject: {subject}\r\nFrom: a@courier.test\r\n\r\nbody of {subject}\r\n").into_bytes()
}

async fn fetch_now(acc: &AccountProxy<'_>, daemon: &Daemon) -> Result<u32, String> {
    match tokio::time::timeout(HANG, acc.fetch_now()).await {
        Err(_) => panic!("FetchNow hung for {HANG:?}\n{}", daemon.log()),
        Ok(r) => r.map_err(|e| e.to_string()),
    }
}

/// Regression: without UIDNEXT every fetch listed all UIDs of INBOX, even
/// when nothing had arrived (here the server refuses that listing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_new_is_answered_without_listing_inbox() {
    let server = Courier::start(vec![mail("one"), mail("two"), mail("three")]);
    let state = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(state.path(), "[fetch]\nread_timeout = 20\n");
    let conn = fetch::bus(&daemon).await;
    // poll_interval 0: no kept connection, so every FetchNow logs in and
    // EXAMINEs anew, as a round over many accounts does.
    let path = fetch::create(&conn, scripted::settings("imap", server.port, false)).await;
    let acc = fetch::account(&conn, &path).await;
    let fetch_now = || fetch_now(&acc, &daemon);

    assert_eq!(fetch_now().await, Ok(3), "{}", daemon.log());
    assert_eq!(server.count("UID FETCH 1:*"), 1);

    // Nothing new, twice: a search, no listing (the server would say NO).
    assert_eq!(fetch_now().await, Ok(0), "{}", daemon.log());
    assert_eq!(fetch_now().await, Ok(0), "{}", daemon.log());
    assert_eq!(server.count("UID FETCH 1:*"), 1, "INBOX listed again");
    assert_eq!(server.count("UID SEARCH UID 4:*"), 2);

    // A new mail is found (its UID is at or above the remembered 4) and
    // stored; then nothing is new from UID 5 on.
    server.deliver(mail("four"));
    assert_eq!(fetch_now().await, Ok(1), "{}", daemon.log());
    assert_eq!(fetch_now().await, Ok(0), "{}", daemon.log());
    assert_eq!(server.count("UID FETCH 1:*"), 2);
    assert_eq!(server.count("UID SEARCH UID 5:*"), 1);
    assert_eq!(acc.last_error().await.unwrap(), "");

    let mb = fetch::mailbox(&conn).await;
    let mut subjects: Vec<String> = fetch::list_all(&mb, &path)
        .await
        .iter()
        .map(|m| fetch::get::<String>(m, "subject"))
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["four", "one", "three", "two"]);
}

/// Regression: `postfachctl fetch` printed "1 new message" and nothing
/// else when delete on server was skipped for lack of UIDPLUS; only
/// `account show` told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_fetch_shows_that_delete_on_server_was_skipped() {
    let server = Courier::with_caps(vec![mail("one")], "IMAP4rev1");
    let state = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(state.path(), "[fetch]\nread_timeout = 20\n");
    let conn = fetch::bus(&daemon).await;
    let path = fetch::create(&conn, scripted::settings("imap", server.port, true)).await;
    let id = path.as_str().rsplit('/').next().unwrap().to_string();

    let out = daemon.ctl(&["fetch", &id]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "1 new message");
    assert!(
        stderr.contains("warning: delete on server skipped: the server lacks UIDPLUS"),
        "{stderr}"
    );
    let out = daemon.ctl(&["--json", "fetch", &id]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["new_messages"], 0);
    assert!(
        json["warning"].as_str().unwrap().contains("lacks UIDPLUS"),
        "{json}"
    );
    assert_eq!(server.count("STORE"), 0);
}

/// Regression: a Trash move on a server without MOVE and UIDPLUS copies
/// the mail and leaves the original in INBOX, yet the journal said
/// "moved".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_only_trash_move_is_not_journaled_as_moved() {
    let server = Courier::with_caps(vec![mail("one")], "IMAP4rev1");
    let state = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(state.path(), "[fetch]\nread_timeout = 20\n");
    let conn = fetch::bus(&daemon).await;
    let mut s = scripted::settings("imap", server.port, false);
    s.insert("trash_folder", zbus::Variant::from("INBOX.Trash"));
    let path = fetch::create(&conn, s).await;
    let acc = fetch::account(&conn, &path).await;
    assert_eq!(fetch_now(&acc, &daemon).await, Ok(1), "{}", daemon.log());
    let mb = fetch::mailbox(&conn).await;
    let id = fetch::get::<u64>(&fetch::list_all(&mb, &path).await[0], "id");

    mb.delete_message("", id).await.expect("DeleteMessage");
    assert_eq!(server.count("UID COPY"), 1);
    assert_eq!(server.count("EXPUNGE"), 0);
    common::eventually("the journal line", Duration::from_secs(10), || async {
        daemon.log().contains("mail copied to the Trash folder")
    })
    .await;
    let log = daemon.log();
    assert!(!log.contains("mail moved to the Trash folder"), "{log}");
}

/// Regression: async-imap ends a `UID FETCH` answered NO like one answered
/// OK, so a refused listing read as an empty INBOX and the fetch as a
/// complete one that found nothing. A second account on the same server
/// has no sync state and must list INBOX; this server refuses (it listed
/// already and nothing arrived since).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_listing_is_an_error_not_an_empty_inbox() {
    let server = Courier::start(vec![mail("one"), mail("two")]);
    let state = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(state.path(), "[fetch]\nread_timeout = 20\n");
    let conn = fetch::bus(&daemon).await;
    let first = fetch::create(&conn, scripted::settings("imap", server.port, false)).await;
    let first = fetch::account(&conn, &first).await;
    assert_eq!(fetch_now(&first, &daemon).await, Ok(2), "{}", daemon.log());

    let second = fetch::create(&conn, scripted::settings("imap", server.port, false)).await;
    let second = fetch::account(&conn, &second).await;
    let answer = fetch_now(&second, &daemon).await;
    let err = answer.expect_err("a refused listing read as an empty INBOX");
    assert!(err.contains("refused the listing"), "{err}");
    assert!(
        second
            .last_error()
            .await
            .unwrap()
            .contains("refused the listing"),
        "LastError names the refusal"
    );
    assert_eq!(server.count("UID FETCH 1:*"), 2);
    daemon.assert_running();
}
