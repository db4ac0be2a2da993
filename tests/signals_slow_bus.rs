//! MessagesAdded is never lost when the bus is slow: every id a fetch
//! stored reaches a listener, however long the daemon's signals had to wait
//! (ARCHITECTURE.md "The D-Bus API"; the CRM learns of new mail only this way).
//!
//! The bus daemon is stopped (SIGSTOP) while sixty POP3 accounts poll every
//! second, so the daemon's signals fill its socket to the bus and then pile
//! up inside the daemon: first enough to block it, then the new mail, then
//! several times the 1,024 notices a bounded broadcast channel used to
//! hold (it dropped the oldest, the mail's ids among them).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use common::fetch as fetchkit;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::{eventually, Env, MailUser, Settings};

const ACCOUNTS: usize = 60;
const MAILS_EACH: u32 = 3;
/// Fetches (about four notices each) while the bus is stopped, before the
/// mail comes: enough to fill the daemon's socket to the bus.
const FILL_FETCHES: usize = 300;
/// Fetches after the mail was stored: 600 × about 4 notices, more than
/// twice what the old channel held.
const FLOOD_FETCHES: usize = 600;

/// "fetch done" lines in the daemon's log, and the sum of their
/// `message_count=` (the journal field MESSAGE_COUNT). A line without the
/// field fails at once: a renamed field must not look like "nothing new".
fn fetches(log: &str) -> (usize, u64) {
    let done: Vec<&str> = log.lines().filter(|l| l.contains("fetch done")).collect();
    let new = done
        .iter()
        .map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("message_count="))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no message_count in {l:?}"))
        })
        .sum();
    (done.len(), new)
}

/// Continues the bus daemon when the test ends, also on a failure.
struct Stopped(Pid);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGCONT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_added_reach_a_listener_after_the_bus_was_stopped() {
    let env = Env::get();
    let users: Vec<MailUser> = (0..ACCOUNTS)
        .map(|_| common::create_user(env, "slowbus"))
        .collect();
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let mb = fetchkit::mailbox(&conn).await;
    let mut added = mb.receive_messages_added().await.unwrap();
    let signalled = Arc::new(Mutex::new(Vec::<u64>::new()));
    let collector = {
        let signalled = signalled.clone();
        tokio::spawn(async move {
            while let Some(sig) = added.next().await {
                signalled.lock().unwrap().extend(sig.args().unwrap().ids);
            }
        })
    };
    // POP3 without TLS on loopback, polled every second: every poll is a
    // fetch with its notices, also when nothing is new.
    let mut paths = Vec::new();
    for u in &users {
        let s = Settings::on_dovecot("pop3", u)
            .with("port", env.pop3_port)
            .with("encryption", "none")
            .with("password", &u.password)
            .with("poll_interval", 1u32);
        paths.push(fetchkit::create(&conn, s.dbus()).await);
    }
    eventually("every account polled", Duration::from_secs(60), || async {
        fetches(&daemon.log()).0 >= ACCOUNTS
    })
    .await;

    let bus = Pid::from_raw(daemon.bus().pid() as i32);
    kill(bus, Signal::SIGSTOP).unwrap();
    let _continue = Stopped(bus);
    let start = fetches(&daemon.log()).0;
    eventually(
        "the daemon's socket to fill",
        Duration::from_secs(120),
        || async { fetches(&daemon.log()).0 >= start + FILL_FETCHES },
    )
    .await;
    let (before, stored_before) = fetches(&daemon.log());
    assert_eq!(stored_before, 0, "nothing new yet");
    for u in &users {
        common::drop_messages(env, u, MAILS_EACH);
    }
    let total = ACCOUNTS as u64 * u64::from(MAILS_EACH);
    eventually("every mail stored", Duration::from_secs(120), || async {
        fetches(&daemon.log()).1 == total
    })
    .await;
    eventually("the flood behind it", Duration::from_secs(120), || async {
        fetches(&daemon.log()).0 >= before + ACCOUNTS + FLOOD_FETCHES
    })
    .await;
    kill(bus, Signal::SIGCONT).unwrap();

    eventually("every id announced", Duration::from_secs(60), || async {
        signalled.lock().unwrap().len() as u64 >= total
    })
    .await;
    let mut stored = BTreeSet::new();
    for p in &paths {
        for m in fetchkit::list_all(&mb, p).await {
            stored.insert(fetchkit::get::<u64>(&m, "id"));
        }
    }
    let got = signalled.lock().unwrap().clone();
    assert_eq!(got.len() as u64, total, "each id once");
    assert_eq!(got.into_iter().collect::<BTreeSet<u64>>(), stored);
    collector.abort();
}
