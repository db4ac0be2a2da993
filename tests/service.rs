//! postfachd as systemd runs it: the journal and the notify socket.
//!
//! The daemon runs in its own mount namespace (`unshare --mount`) where
//! /run/systemd/journal is a directory of this test, so what it sends "to
//! journald" arrives on a datagram socket the test reads, in journald's
//! native protocol. `JOURNAL_STREAM` names its stderr, as systemd sets it
//! (systemd.exec(5)). `NOTIFY_SOCKET` and `WATCHDOG_USEC` are the test's
//! too: READY=1 and then watchdog pings must arrive there.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fetch as fetchkit;
use common::{Env, TestBus};
use fetchkit::Proto;
use postfach::dbus::proxy::AccountProxy;

/// Mounts the test's journal directory where journald's socket lives, sets
/// JOURNAL_STREAM to stderr's device:inode, then runs the daemon.
const NAMESPACE_SCRIPT: &str = r#"set -e
mkdir -p /run/systemd
mount -t tmpfs -o size=1m,mode=0755 postfach-test /run/systemd
mkdir /run/systemd/journal
mount --bind "$TEST_JOURNAL_DIR" /run/systemd/journal
JOURNAL_STREAM="$(stat -L -c %d:%i /proc/self/fd/2)"
export JOURNAL_STREAM
# systemd names the watched process; exec keeps this pid.
WATCHDOG_PID=$$
export WATCHDOG_PID
exec "$@"
"#;

struct Run {
    child: Child,
    journal: UnixDatagram,
    notify: UnixDatagram,
    bus: std::sync::Arc<TestBus>,
    log: std::path::PathBuf,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Run {
    let env = Env::get();
    let jdir = dir.join("j");
    fs::create_dir(&jdir).unwrap();
    let journal = UnixDatagram::bind(jdir.join("socket")).unwrap();
    let notify = UnixDatagram::bind(dir.join("notify")).unwrap();
    for s in [&journal, &notify] {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    let config = dir.join("postfachd.toml");
    fs::write(&config, fetchkit::config(env)).unwrap();
    let state = dir.join("state");
    let log = dir.join("stderr.log");
    let bus = TestBus::start();
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(NAMESPACE_SCRIPT)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_postfachd"))
        .arg("--session")
        .arg("--state-dir")
        .arg(&state)
        .arg("--config")
        .arg(&config)
        .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
        .env("TEST_JOURNAL_DIR", &jdir)
        .env("NOTIFY_SOCKET", dir.join("notify"))
        .env("WATCHDOG_USEC", "2000000")
        .env_remove("WATCHDOG_PID")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .expect("start postfachd under unshare");
    Run {
        child,
        journal,
        notify,
        bus,
        log,
    }
}

/// One journal entry in the native protocol: `KEY=value\n`, or `KEY\n`, a
/// little-endian u64 length, the value and `\n` for values with newlines.
fn parse_entry(mut d: &[u8]) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    while !d.is_empty() {
        let end = d.iter().position(|&b| b == b'\n').unwrap_or(d.len());
        let line = &d[..end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let key = String::from_utf8_lossy(&line[..eq]).into_owned();
            fields.insert(key, String::from_utf8_lossy(&line[eq + 1..]).into_owned());
            d = &d[(end + 1).min(d.len())..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let rest = &d[end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let value = &rest[8..8 + len];
            fields.insert(key, String::from_utf8_lossy(value).into_owned());
            d = &rest[(8 + len + 1).min(rest.len())..];
        }
    }
    fields
}

/// Reads datagrams until `until` holds for the collected list or `limit`.
fn collect(
    sock: &UnixDatagram,
    into: &mut Vec<Vec<u8>>,
    limit: Duration,
    until: impl Fn(&[Vec<u8>]) -> bool,
) {
    let deadline = Instant::now() + limit;
    let mut buf = vec![0u8; 256 * 1024];
    while !until(into) && Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            into.push(buf[..n].to_vec());
        }
    }
}

fn is_ready(d: &[Vec<u8>]) -> bool {
    d.iter()
        .any(|m| String::from_utf8_lossy(m).contains("READY=1"))
}

fn pings(d: &[Vec<u8>]) -> usize {
    d.iter()
        .filter(|m| String::from_utf8_lossy(m).contains("WATCHDOG=1"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_fields_and_watchdog_pings() {
    let env = Env::get();
    let dir = tempfile::Builder::new()
        .prefix("svc")
        .tempdir_in(&env.dir)
        .unwrap();
    let run = start(dir.path());

    let mut notes = Vec::new();
    collect(&run.notify, &mut notes, Duration::from_secs(20), is_ready);
    assert!(
        is_ready(&notes),
        "no READY=1; stderr:\n{}",
        fs::read_to_string(&run.log).unwrap_or_default()
    );

    let user = common::create_user(env, "jr");
    common::drop_messages(env, &user, 2);
    let conn = zbus::connection::Builder::address(run.bus.address())
        .build()
        .await
        .unwrap();
    let good = fetchkit::account_for(&conn, Proto::Imap, &user, false, 0).await;
    let good = fetchkit::account(&conn, &good).await;
    assert_eq!(good.fetch_now().await.unwrap(), 2);
    let good_id = good.id().await.unwrap();

    let secret = format!("wrong-{}", common::unique("pw"));
    let bad = fetchkit::create(
        &conn,
        fetchkit::settings(Proto::Imap, &user, &secret, false, 0),
    )
    .await;
    let bad: AccountProxy = fetchkit::account(&conn, &bad).await;
    assert!(bad.fetch_now().await.is_err(), "a wrong password fails");
    let bad_id = bad.id().await.unwrap();

    // Pings keep coming while the daemon works: 2 s watchdog, one per 1 s.
    let before = pings(&notes);
    collect(&run.notify, &mut notes, Duration::from_secs(20), |d| {
        pings(d) >= before + 2
    });
    assert!(pings(&notes) >= before + 2, "watchdog pings stopped");

    let mut raw = Vec::new();
    let found = |d: &[Vec<u8>], id: &str, key: &str| {
        d.iter()
            .map(|m| parse_entry(m))
            .find(|e| e.get("ACCOUNT_ID").map(String::as_str) == Some(id) && e.contains_key(key))
    };
    collect(&run.journal, &mut raw, Duration::from_secs(20), |d| {
        found(d, &good_id, "MESSAGE_COUNT").is_some() && found(d, &bad_id, "ERROR_KIND").is_some()
    });
    let done = found(&raw, &good_id, "MESSAGE_COUNT").expect("a fetch entry with ACCOUNT_ID");
    assert_eq!(
        done.get("MESSAGE_COUNT").map(String::as_str),
        Some("2"),
        "{done:?}"
    );
    assert_eq!(
        done.get("TENANT").map(String::as_str),
        Some("mandant1"),
        "{done:?}"
    );
    assert_eq!(
        done.get("PRIORITY").map(String::as_str),
        Some("5"),
        "tracing-journald maps INFO to notice (5): {done:?}"
    );
    let failed = found(&raw, &bad_id, "ERROR_KIND").expect("a failed fetch entry");
    assert_eq!(
        failed.get("ERROR_KIND").map(String::as_str),
        Some("Authentication"),
        "{failed:?}"
    );
    assert_eq!(
        failed.get("PRIORITY").map(String::as_str),
        Some("4"),
        "warning: {failed:?}"
    );

    let all: Vec<u8> = raw.concat();
    assert!(
        !String::from_utf8_lossy(&all).contains(&secret),
        "the password reached the journal"
    );
    let stderr = fs::read_to_string(&run.log).unwrap_or_default();
    assert!(
        !stderr.contains("fetch done"),
        "with JOURNAL_STREAM on stderr the lines go to the journal only:\n{stderr}"
    );
}
