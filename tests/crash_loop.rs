//! The crash loop: postfachd with an IMAP and a POP3 account (delete on
//! server on) is killed with SIGKILL again and again while new mail keeps
//! arriving through Postfix and outbox mail goes out: at random moments and
//! at chosen points of the protocols, seen by a proxy between daemon and
//! server (after `UID FETCH`, `RETR`, `+FLAGS (\Deleted)`, `UID EXPUNGE`,
//! `DELE`, `QUIT`, mid-`APPEND` of the Sent copy, mid-SMTP `DATA`).
//!
//! Afterwards every mail Postfix accepted is in the store exactly once
//! (invariants 1, 2), and every outbox mail reached Postfix at most once
//! (`sent` exactly once). `CRASH_RUNS` sets the number of runs (30 by
//! default; docs/TESTING.md has the full run).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::Rng;
use zbus::{Connection, OwnedObjectPath};

use common::faultproxy::FaultProxy;
use common::fetch::{self as fetchkit, Proto};
use common::outboxcheck;
use common::smtpfeed::Feeder;
use common::{create_user, Daemon, Env, MailUser, Settings};

/// Where a run kills the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Point {
    /// After a random delay of up to 1.5 s.
    Random,
    /// Once the client's bytes passed through a proxy; then a random
    /// delay of up to `max_ms`.
    Seen(Via, &'static str, u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Via {
    Imap,
    Pop3,
    Smtp,
}

const POINTS: [Point; 10] = [
    Point::Random,
    Point::Seen(Via::Imap, "UID FETCH", 40),
    Point::Seen(Via::Imap, "+FLAGS", 5),
    Point::Seen(Via::Imap, "UID EXPUNGE", 5),
    Point::Seen(Via::Imap, "APPEND", 3),
    Point::Seen(Via::Pop3, "RETR ", 40),
    Point::Seen(Via::Pop3, "DELE ", 5),
    Point::Seen(Via::Pop3, "QUIT", 2),
    Point::Seen(Via::Smtp, "DATA\r\n", 3),
    Point::Random,
];

fn runs() -> u32 {
    std::env::var("CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

/// SIGKILL to `pid` after `ms` milliseconds, from its own thread (the
/// caller may be a proxy task that must not sleep).
fn kill_later(pid: u32, ms: u64) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    });
}

/// Whether the process has ended (gone or a zombie not yet reaped).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

struct World {
    daemon: Daemon,
    conn: Connection,
    imap: OwnedObjectPath,
    pop3: OwnedObjectPath,
    imap_user: MailUser,
    pop3_user: MailUser,
    sink: MailUser,
    proxies: BTreeMap<Via, FaultProxy>,
    _state: tempfile::TempDir,
}

/// An account of `user` over `proxy` in clear text (the proxy must read
/// the commands), delete on server on, no polling: the test asks.
fn settings(proto: Proto, user: &MailUser, proxy: &FaultProxy) -> Settings {
    Settings::on_dovecot(proto.kind(), user)
        .with("port", proxy.port)
        .with("encryption", "none")
        .with("password", &user.password)
        .with("tenant", "mandant1")
        .with("delete_on_server", true)
        .with("poll_interval", 0u32)
}

async fn world() -> World {
    let env = Env::get();
    let imap_user = create_user(env, "climap");
    let pop3_user = create_user(env, "clpop");
    let sink = create_user(env, "clsink");
    // The Sent copy goes here (APPEND is one of the kill points).
    common::doveadm(
        env,
        &["mailbox", "create", "-u", &imap_user.address, "Sent"],
    );
    let mut proxies = BTreeMap::new();
    proxies.insert(
        Via::Imap,
        FaultProxy::start("127.0.0.1", env.imap_port).await,
    );
    proxies.insert(
        Via::Pop3,
        FaultProxy::start("127.0.0.1", env.pop3_port).await,
    );
    let smtp_port = std::env::var("POSTFACH_TEST_SMTP_PLAIN_PORT")
        .unwrap()
        .parse()
        .unwrap();
    proxies.insert(Via::Smtp, FaultProxy::start("127.0.0.1", smtp_port).await);
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let imap = settings(Proto::Imap, &imap_user, &proxies[&Via::Imap])
        .with("smtp_host", "127.0.0.1")
        .with("smtp_port", proxies[&Via::Smtp].port)
        .with("smtp_encryption", "none")
        .with("smtp_login", false)
        .with("sent_folder", "Sent")
        .with("save_sent_copy", true);
    let imap = fetchkit::create(&conn, imap.dbus()).await;
    let pop3 = settings(Proto::Pop3, &pop3_user, &proxies[&Via::Pop3]);
    let pop3 = fetchkit::create(&conn, pop3.dbus()).await;
    World {
        daemon,
        conn,
        imap,
        pop3,
        imap_user,
        pop3_user,
        sink,
        proxies,
        _state: state,
    }
}

/// FetchNow on both accounts in the background; the answers do not
/// matter (the daemon is about to die).
fn fetch_both(w: &World) {
    for path in [w.imap.clone(), w.pop3.clone()] {
        let conn = w.conn.clone();
        tokio::spawn(async move {
            let _ = fetchkit::account(&conn, &path).await.fetch_now().await;
        });
    }
}

/// One run: arm the kill, make the daemon work, wait for its death,
/// restart it. Whether the chosen point was reached (else killed late).
async fn one_run(w: &mut World, point: Point, n: u32) -> bool {
    let pid = w.daemon.pid();
    let mut rng = rand::thread_rng();
    match point {
        Point::Random => kill_later(pid, rng.gen_range(0..=1500)),
        Point::Seen(via, pattern, max_ms) => {
            let ms = rng.gen_range(0..=max_ms);
            w.proxies[&via].watch(pattern.as_bytes(), move || kill_later(pid, ms));
        }
    }
    if matches!(
        point,
        Point::Seen(Via::Smtp | Via::Imap, "DATA\r\n" | "APPEND", _)
    ) || n % 3 == 0
    {
        outboxcheck::queue(&w.conn, &w.imap, &w.sink.address, &format!("outbox {n}")).await;
    }
    fetch_both(w);
    let deadline = Instant::now() + Duration::from_secs(8);
    while !dead(pid) && Instant::now() < deadline {
        // Fetch again while the point has not come (new mail arrives).
        tokio::time::sleep(Duration::from_millis(300)).await;
        fetch_both(w);
    }
    let reached = dead(pid);
    for p in w.proxies.values() {
        p.unwatch();
    }
    w.daemon.kill9();
    w.daemon.restart();
    reached
}

/// Every stored mail's Message-ID and how often it is stored.
async fn stored(w: &World, path: &OwnedObjectPath) -> BTreeMap<String, u32> {
    let mb = fetchkit::mailbox(&w.conn).await;
    fetchkit::stored_ids(&mb, path).await
}

/// Fetches until every accepted mail of each account is stored (Postfix
/// may still be delivering), at most 2 minutes.
async fn drain(w: &World, sent: &[(String, String)]) {
    let start = Instant::now();
    for (path, user) in [(&w.imap, &w.imap_user), (&w.pop3, &w.pop3_user)] {
        let want: Vec<&String> = sent
            .iter()
            .filter(|(to, _)| *to == user.address)
            .map(|(_, id)| id)
            .collect();
        let acc = fetchkit::account(&w.conn, path).await;
        loop {
            let _ = acc.fetch_now().await;
            let have = stored(w, path).await;
            if want.iter().all(|id| have.contains_key(*id)) {
                break;
            }
            if start.elapsed() > Duration::from_secs(120) {
                break; // the assertions below name what is missing
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loop_loses_and_doubles_nothing() {
    let env = Env::get();
    let mut w = world().await;
    let feeder = Feeder::start(
        vec![w.imap_user.address.clone(), w.pop3_user.address.clone()],
        Duration::from_millis(50),
    );
    let mut kills: BTreeMap<Point, (u32, u32)> = BTreeMap::new();
    let total = runs();
    for n in 0..total {
        let point = POINTS[n as usize % POINTS.len()];
        let reached = one_run(&mut w, point, n).await;
        let e = kills.entry(point).or_insert((0, 0));
        e.0 += 1;
        e.1 += u32::from(reached);
    }
    let sent = feeder.stop();
    drain(&w, &sent).await;

    let (mut report, mut problems) = (Vec::new(), Vec::<String>::new());
    let (mut lost, mut doubled, mut stored_total) = (0usize, 0usize, 0usize);
    for (path, user) in [(&w.imap, &w.imap_user), (&w.pop3, &w.pop3_user)] {
        let have = stored(&w, path).await;
        let want: Vec<&String> = sent
            .iter()
            .filter(|(to, _)| *to == user.address)
            .map(|(_, id)| id)
            .collect();
        let missing: Vec<&&String> = want.iter().filter(|id| !have.contains_key(**id)).collect();
        let on_server = common::message_count(env, user);
        let dups: Vec<_> = have.iter().filter(|(_, c)| **c > 1).collect();
        report.push(format!(
            "{}: {} delivered, {} stored, {} missing, {} on the server, {} doubled",
            user.address,
            want.len(),
            have.len(),
            missing.len(),
            on_server,
            dups.len()
        ));
        if !dups.is_empty() {
            problems.push(format!("stored twice: {dups:?}"));
        }
        lost += missing.len();
        doubled += dups.len();
        stored_total += have.len();
        if !missing.is_empty() {
            problems.push(format!(
                "{} of {} accepted mails not stored ({} on the server), e.g. {:?}",
                missing.len(),
                want.len(),
                on_server,
                &missing[..missing.len().min(5)]
            ));
        }
    }
    let kill_lines: Vec<String> = kills
        .iter()
        .map(|(p, (runs, hit))| format!("{p:?}: {runs} runs, {hit} killed there"))
        .collect();
    eprintln!(
        "crash loop: {total} runs, {} mails delivered, {stored_total} stored, {lost} lost, \
         {doubled} doubled\n{}\n{}",
        sent.len(),
        kill_lines.join("\n"),
        report.join("\n")
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let out = outboxcheck::check(&w.conn, env, &w.sink).await;
    eprintln!("outbox: {out:?}");
    let log = w.daemon.log();
    assert!(!log.contains("panicked"), "a panic in the daemon log");
}
