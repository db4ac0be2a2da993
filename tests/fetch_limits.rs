//! Bounded memory and time against lying and slow servers, through the
//! daemon: a POP3 mail that is far longer than LIST said never sits in
//! memory, a mail past `[fetch] max_message_size` is refused without
//! costing the others, an IMAP literal announced above the limit is
//! refused before it is buffered, and a server that drips or chatters is
//! cut off by the fetch's deadline. Scripted servers on loopback for the
//! lies; the run's real Dovecot for mails listed above the limit.
//!
//! Memory is the daemon's peak resident set (`VmHWM`), a behaviour with a
//! generous bound, not a timing: the mails are larger than the bound.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use zbus::{Connection, OwnedObjectPath};

use common::scripted::pop3::{Body, Mail};
use common::{fetch, scripted, Daemon, Env};
use fetch::{get, Proto};

/// The daemon's peak resident memory must stay below this while a mail of
/// 90 MB (or a literal of 500 MB) passes: a debug build starts at about
/// 20 MB.
const PEAK_KB: u64 = 64 * 1024;

/// Generous: a FetchNow that does not return within this hangs.
const HANG: Duration = Duration::from_secs(90);

struct Run {
    _state: tempfile::TempDir,
    daemon: Daemon,
    conn: Connection,
}

async fn daemon(config: &str) -> Run {
    let state = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(state.path(), config);
    let conn = fetch::bus(&daemon).await;
    Run {
        _state: state,
        daemon,
        conn,
    }
}

impl Run {
    async fn account(&self, kind: &str, port: u16, delete: bool) -> OwnedObjectPath {
        fetch::create(&self.conn, scripted::settings(kind, port, delete)).await
    }

    /// FetchNow, within [`HANG`]: Ok(new mails) or Err(D-Bus error text).
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

    fn peak_kb(&self) -> u64 {
        fetch::peak_rss_kb(self.daemon.pid())
    }

    /// Alive, on the bus, no panic in its log.
    fn assert_running(&self) {
        self.daemon.assert_running();
    }
}

fn small(subject: &str) -> Body {
    Body::Bytes(format!("Subject: {subject}\r\n\r\nsmall\r\n").into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop3_mail_longer_than_listed_never_sits_in_memory() {
    let len = 90 * 1024 * 1024;
    let (port, _log) = scripted::pop3::start(
        false,
        vec![
            Mail {
                listed: 40,
                uidl: "a".into(),
                body: small("one"),
            },
            Mail {
                listed: 100,
                uidl: "liar".into(),
                body: Body::Generated(len),
            },
            Mail {
                listed: 40,
                uidl: "c".into(),
                body: small("three"),
            },
        ],
    );
    let run = daemon("").await;
    let path = run.account("pop3", port, false).await;
    assert_eq!(run.fetch_now(&path).await, Ok(3));
    let peak = run.peak_kb();
    eprintln!("postfachd peak RSS {peak} kB with a 90 MB mail listed as 100 bytes");
    assert!(peak < PEAK_KB, "postfachd peak RSS {peak} kB");
    let mb = fetch::mailbox(&run.conn).await;
    let listed = fetch::list_all(&mb, &path).await;
    let big = listed
        .iter()
        .find(|m| get::<u64>(m, "size") == len as u64)
        .expect("the long mail");
    let raw = fetch::raw(&mb, get::<u64>(big, "id")).await;
    assert!(
        raw == scripted::generated(len, b'g'),
        "the long mail changed"
    );
    run.assert_running();
}

/// Listed as 100 bytes, 1.5 MiB long, the limit 1 MiB: refused, left on
/// the server (no DELE), the others stored and deleted; `LastError` names
/// it by number, UIDL and size, and shows none of its content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop3_mail_past_the_limit_is_refused_and_the_others_stored() {
    let (port, log) = scripted::pop3::start(
        false,
        vec![
            Mail {
                listed: 40,
                uidl: "a".into(),
                body: small("one"),
            },
            Mail {
                listed: 100,
                uidl: "liar".into(),
                body: Body::Generated(1536 * 1024),
            },
            Mail {
                listed: 40,
                uidl: "c".into(),
                body: small("three"),
            },
        ],
    );
    let run = daemon("[fetch]\nmax_message_size = 1048576\n").await;
    let path = run.account("pop3", port, true).await;
    assert_eq!(run.fetch_now(&path).await, Ok(2));
    let (state, last_error) = run.status(&path).await;
    assert_eq!(state, "idle");
    assert!(
        last_error.contains("message 2 (pop3:liar, listed as 100 bytes), 1572864 bytes"),
        "{last_error}"
    );
    assert!(
        last_error.contains("max_message_size (1048576 bytes)"),
        "{last_error}"
    );
    assert!(
        !last_error.contains("ggg"),
        "content in LastError: {last_error}"
    );
    let log = log.lock().unwrap().clone();
    assert!(
        log.contains(&"DELE 1".into()) && log.contains(&"DELE 3".into()),
        "{log:?}"
    );
    assert!(
        !log.contains(&"DELE 2".into()),
        "the refused mail was deleted: {log:?}"
    );
    let blobs = run.daemon.state_dir().join("blobs/tmp");
    let staged = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(staged, 0, "a staging file was left in {}", blobs.display());
    run.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dripping_pop3_greeting_ends_at_the_deadline() {
    let (port, _log) = scripted::pop3::start(true, vec![]);
    let run = daemon("[fetch]\ndeadline_floor = 2\n").await;
    let path = run.account("pop3", port, false).await;
    let e = run.fetch_now(&path).await.unwrap_err();
    assert!(
        e.contains("POP3 server too slow: the fetch did not finish within"),
        "{e}"
    );
    let (state, last_error) = run.status(&path).await;
    assert_eq!(state, "error");
    assert!(
        last_error.contains("[fetch] deadline_floor"),
        "{last_error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dripping_pop3_retr_ends_at_the_deadline_and_deletes_nothing() {
    let (port, log) = scripted::pop3::start(
        false,
        vec![
            Mail {
                listed: 40,
                uidl: "a".into(),
                body: small("one"),
            },
            Mail {
                listed: 40,
                uidl: "slow".into(),
                body: Body::Drip,
            },
        ],
    );
    let run = daemon("[fetch]\ndeadline_floor = 2\n").await;
    let path = run.account("pop3", port, true).await;
    let e = run.fetch_now(&path).await.unwrap_err();
    assert!(e.contains("POP3 server too slow"), "{e}");
    let log = log.lock().unwrap().clone();
    assert!(
        !log.iter().any(|l| l.starts_with("DELE") || l == "QUIT"),
        "{log:?}"
    );
    run.assert_running();
}

/// A literal announced as 500 MB: refused before async-imap's reader
/// allocates for it; the error says why, the daemon stays small and up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imap_literal_above_the_limit_is_refused_before_it_is_buffered() {
    let (port, _log) = scripted::imap::start(100, scripted::imap::Body::HugeLiteral(500_000_000));
    // A short read timeout ends the fetch soon should the guard fail.
    let run = daemon("[fetch]\nread_timeout = 5\n").await;
    let path = run.account("imap", port, false).await;
    let e = run.fetch_now(&path).await.unwrap_err();
    assert!(e.contains("announced 500000000 bytes"), "{e}");
    assert!(e.contains("[fetch] max_message_size"), "{e}");
    let peak = run.peak_kb();
    eprintln!("postfachd peak RSS {peak} kB after a literal of 500 MB was announced");
    assert!(peak < PEAK_KB, "postfachd peak RSS {peak} kB");
    run.assert_running();
}

/// A harmless untagged FETCH a second and never the tagged reply: every
/// line resets the read timeout, so only the deadline ends the fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imap_server_that_chatters_is_cut_off_by_the_deadline() {
    let (port, _log) = scripted::imap::start(100, scripted::imap::Body::UntaggedDrip);
    let run = daemon("[fetch]\ndeadline_floor = 2\ndeadline_min_rate = 1048576\n").await;
    let path = run.account("imap", port, false).await;
    let e = run.fetch_now(&path).await.unwrap_err();
    assert!(e.contains("the fetch did not finish within"), "{e}");
    let (state, last_error) = run.status(&path).await;
    assert_eq!(state, "error");
    assert!(last_error.contains("deadline_floor"), "{last_error}");
    run.assert_running();
}

/// Real Dovecot, the limit 1 MiB, a 2 MiB mail and a small one, delete on
/// server: the small one is fetched and deleted, the big one never
/// fetched and never deleted, and every fetch says so, over IMAP and POP3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mails_listed_above_the_limit_stay_on_the_server() {
    let env = Env::get();
    let config = format!(
        "{}[fetch]\nmax_message_size = 1048576\n",
        fetch::config(env)
    );
    let run = daemon(&config).await;
    for proto in [Proto::Imap, Proto::Pop3] {
        let user = common::create_user(env, "limit");
        common::drop_raw(env, &user, &scripted::generated(2 * 1024 * 1024, b'b'));
        common::drop_messages(env, &user, 1);
        let path = fetch::account_for(&run.conn, proto, &user, true, 0).await;
        for round in 0..2 {
            let want = if round == 0 { 1 } else { 0 };
            assert_eq!(
                run.fetch_now(&path).await,
                Ok(want),
                "{proto:?} round {round}"
            );
            let (state, last_error) = run.status(&path).await;
            assert_eq!(state, "idle", "{proto:?}");
            assert!(
                last_error.contains("1 mail(s) larger than [fetch] max_message_size"),
                "{proto:?}: {last_error}"
            );
            assert_eq!(
                common::message_count(env, &user),
                1,
                "{proto:?}: the big mail was deleted"
            );
        }
        let mb = fetch::mailbox(&run.conn).await;
        let stored = fetch::list_all(&mb, &path).await;
        assert_eq!(stored.len(), 1, "{proto:?}");
        assert!(get::<u64>(&stored[0], "size") < 1024 * 1024, "{proto:?}");
    }
    run.assert_running();
}
