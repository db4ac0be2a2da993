//! Network faults between postfachd and Dovecot/Postfix, made by the
//! fault proxy (tests/common/faultproxy.rs): connections cut at a random
//! byte offset either way, reset (also in the TLS handshake), stalled,
//! dripped, half-closed. The accounts (IMAP and POP3 over implicit TLS,
//! delete on server on; SMTP in clear to Postfix) fetch and send through
//! them round after round. Afterwards:
//! - every dropped mail is stored exactly once and gone from the server;
//! - each outbox mail reached Postfix at most once;
//! - no task is wedged: every FetchNow answered, and once the network is
//!   healthy again each account fetches a new mail;
//! - no CPU spin on a dead socket: the daemon is near idle while quiet.
//!
//! `NET_FAULT_ROUNDS` sets the rounds (20 by default; docs/TESTING.md has
//! the full run of at least 500 cut connections).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use rand::Rng;
use zbus::OwnedObjectPath;

use common::faultproxy::{Dir, Fault, FaultProxy};
use common::fetch::{self as fetchkit, Proto};
use common::{create_user, outboxcheck, Daemon, Env, MailUser, Settings};

/// Short timeouts, so a stalled connection costs seconds, not minutes.
fn config(env: &Env) -> String {
    format!(
        "{}[fetch]\nread_timeout = 2\nconnect_timeout = 2\n",
        fetchkit::config(env)
    )
}

fn rounds() -> u32 {
    std::env::var("NET_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// A random fault; offsets within what a session of a few mails sends.
fn random_fault() -> Fault {
    let mut rng = rand::thread_rng();
    let dir = if rng.gen_bool(0.5) {
        Dir::Up
    } else {
        Dir::Down
    };
    let at = match dir {
        Dir::Up => rng.gen_range(0..800),
        Dir::Down => rng.gen_range(0..12_000),
    };
    match rng.gen_range(0..10) {
        0..=3 => Fault::Cut { dir, at },
        // From the server's first bytes: inside the TLS handshake.
        4 => Fault::Reset {
            dir: Dir::Down,
            at: rng.gen_range(0..3000),
        },
        5 => Fault::Reset { dir, at },
        6 => Fault::Stall { dir, at },
        7 => Fault::Drip {
            dir,
            chunk: rng.gen_range(16..512),
            every: Duration::from_millis(rng.gen_range(1..4)),
        },
        _ => Fault::HalfClose { dir, at },
    }
}

/// A random fault for SMTP. Not a stall or drip once the body may be on
/// its way: the reply to the final dot is waited for 10 minutes (RFC 5321
/// §4.5.3.2.6, src/send/smtp.rs), and a 50 KB body dripped slowly takes
/// minutes; both are a slow server, not a fault to recover from.
fn random_smtp_fault() -> Fault {
    let mut rng = rand::thread_rng();
    let dir = if rng.gen_bool(0.5) {
        Dir::Up
    } else {
        Dir::Down
    };
    let at = rng.gen_range(0..60_000);
    match rng.gen_range(0..6) {
        0 | 1 => Fault::Cut { dir, at },
        2 => Fault::Reset { dir, at },
        3 => Fault::HalfClose { dir, at },
        // Before the 354 to DATA (the greeting and EHLO reply are longer).
        4 => Fault::Stall {
            dir: Dir::Down,
            at: rng.gen_range(0..150),
        },
        _ => Fault::Drip {
            dir: Dir::Down,
            chunk: rng.gen_range(1..16),
            every: Duration::from_millis(rng.gen_range(1..4)),
        },
    }
}

/// `n` mails with unique Message-IDs straight into the user's maildir;
/// their ids.
fn drop_mails(env: &Env, user: &MailUser, round: u32, n: u32) -> Vec<String> {
    (0..n)
        .map(|i| {
            let id = format!("<{round}.{i}.{}@postfach.test>", user.name);
            let mail = format!(
                "From: <a@postfach.test>\r\nTo: <{}>\r\nSubject: round {round}\r\n\
                 Message-ID: {id}\r\n\r\n{}",
                user.address,
                "Network fault filler.\r\n".repeat(100)
            );
            common::drop_raw(env, user, mail.as_bytes());
            id
        })
        .collect()
}

/// user + system CPU ticks of a process (/proc/PID/stat fields 14, 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(") ").unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

struct Account {
    proto: Proto,
    user: MailUser,
    path: OwnedObjectPath,
    proxy: FaultProxy,
    ids: Vec<String>,
}

async fn account(conn: &zbus::Connection, proto: Proto, smtp: Option<u16>) -> Account {
    let env = Env::get();
    let user = create_user(env, &format!("nf{}", proto.kind()));
    let proxy = FaultProxy::start("127.0.0.1", proto.tls_port()).await;
    let mut s = Settings::on_dovecot(proto.kind(), &user)
        .with("port", proxy.port)
        .with("password", &user.password)
        .with("tenant", "mandant1")
        .with("delete_on_server", true)
        .with("poll_interval", 0u32);
    if let Some(port) = smtp {
        s = s
            .with("smtp_host", "127.0.0.1")
            .with("smtp_port", port)
            .with("smtp_encryption", "none")
            .with("smtp_login", false);
    }
    let path = fetchkit::create(conn, s.dbus()).await;
    Account {
        proto,
        user,
        path,
        proxy,
        ids: Vec::new(),
    }
}

/// FetchNow, which must answer (a fault may make it fail) within a bound
/// far above the daemon's own deadlines: no task may be wedged.
async fn fetch_answers(conn: &zbus::Connection, a: &Account) -> Result<u32, String> {
    let acc = fetchkit::account(conn, &a.path).await;
    match tokio::time::timeout(Duration::from_secs(90), acc.fetch_now()).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => panic!("{:?}: FetchNow got no answer in 90 s", a.proto),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_double_wedge_and_spin_nothing() {
    let env = Env::get();
    let state = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(state.path(), &config(env));
    let conn = fetchkit::bus(&daemon).await;
    let smtp_port: u16 = std::env::var("POSTFACH_TEST_SMTP_PLAIN_PORT")
        .unwrap()
        .parse()
        .unwrap();
    let smtp = FaultProxy::start("127.0.0.1", smtp_port).await;
    let sink = create_user(env, "nfsink");
    let mut accounts = [
        account(&conn, Proto::Imap, Some(smtp.port)).await,
        account(&conn, Proto::Pop3, None).await,
    ];

    let total = rounds();
    let mut failed_fetches = 0u32;
    for round in 0..total {
        let mut faults = Vec::new();
        for a in accounts.iter_mut() {
            a.ids.extend(drop_mails(env, &a.user, round, 2));
            let fault = random_fault();
            a.proxy.set_policy(move |_| fault);
            faults.push(fault);
        }
        let fault = random_smtp_fault();
        smtp.set_policy(move |_| fault);
        faults.push(fault);
        eprintln!("round {round}: IMAP, POP3, SMTP {faults:?}");
        if round % 2 == 0 {
            let subject = format!("nf outbox {round}");
            outboxcheck::queue(&conn, &accounts[0].path, &sink.address, &subject).await;
        }
        let (a, b) = tokio::join!(
            fetch_answers(&conn, &accounts[0]),
            fetch_answers(&conn, &accounts[1])
        );
        failed_fetches += u32::from(a.is_err()) + u32::from(b.is_err());
    }

    // The network heals: each account fetches everything, and a new mail.
    for a in accounts.iter_mut() {
        a.proxy.set_policy(|_| Fault::Pass);
    }
    smtp.set_policy(|_| Fault::Pass);
    // A new mail makes the task try its queue now, not when a retry timer
    // grown by the faults fires.
    outboxcheck::queue(&conn, &accounts[0].path, &sink.address, "nf outbox last").await;
    let mut report = Vec::new();
    for a in accounts.iter_mut() {
        let mut last = Err(String::new());
        for _ in 0..3 {
            last = fetch_answers(&conn, a).await;
            if last.is_ok() && common::message_count(env, &a.user) == 0 {
                break;
            }
        }
        assert!(
            last.is_ok(),
            "{:?}: no clean fetch after the faults: {last:?}",
            a.proto
        );
        a.ids.extend(drop_mails(env, &a.user, total, 1));
        let n = fetch_answers(&conn, a).await;
        assert_eq!(n, Ok(1), "{:?}: the new mail after the faults", a.proto);
        assert_eq!(common::message_count(env, &a.user), 0, "{:?}", a.proto);
        let mb = fetchkit::mailbox(&conn).await;
        let stored = fetchkit::stored_ids(&mb, &a.path).await;
        let dups: Vec<_> = stored.iter().filter(|(_, c)| **c > 1).collect();
        let lost: Vec<_> = a
            .ids
            .iter()
            .filter(|id| !stored.contains_key(*id))
            .collect();
        report.push(format!(
            "{:?}: {} connections, {} faulted; {} mails dropped, {} stored, {} lost, {} doubled",
            a.proto,
            a.proxy.connections(),
            a.proxy.faulted(),
            a.ids.len(),
            stored.len(),
            lost.len(),
            dups.len()
        ));
        assert!(dups.is_empty(), "{:?}: stored twice: {dups:?}", a.proto);
        assert!(lost.is_empty(), "{:?}: lost: {lost:?}", a.proto);
        assert_eq!(stored.len(), a.ids.len(), "{:?}: unexpected mails", a.proto);
    }
    let out = outboxcheck::check(&conn, env, &sink).await;

    // Quiet: nothing to fetch or send. A task spinning on a dead socket
    // would burn a core; allow a quarter of one.
    let pid = daemon.pid();
    let ticks_per_s = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .unwrap()
        .unwrap() as u64;
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (used, wall) = (cpu_ticks(pid) - c0, t0.elapsed().as_secs_f64());
    let cut: u64 = accounts.iter().map(|a| a.proxy.faulted()).sum::<u64>() + smtp.faulted();
    eprintln!(
        "net faults: {total} rounds, {cut} faulted connections ({} SMTP), {failed_fetches} \
         fetches failed\n{}\noutbox: {out:?}\nquiet: {used} CPU ticks in {wall:.1} s \
         ({ticks_per_s}/s)",
        smtp.faulted(),
        report.join("\n")
    );
    assert!(
        (used as f64) < wall * ticks_per_s as f64 / 4.0,
        "the daemon used {used} ticks in {wall:.1} s of quiet: a spin"
    );
    let log = daemon.log();
    assert!(!log.contains("panicked"), "a panic in the daemon log");
}

/// Found by the fault run: an account's task sent and fetched one after
/// the other, and it waits up to 10 minutes for the reply to the body's
/// final dot (RFC 5321 §4.5.3.2.6). An SMTP server that swallowed the body
/// therefore held up the account's fetching for those 10 minutes. The
/// delivery now runs beside the fetch loop (src/scheduler/sending.rs).
/// Then: the stop does not wait for the hung server, and the mail, whose
/// body had begun to go out, is not sent again after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_smtp_body_does_not_hold_up_fetching() {
    let env = Env::get();
    let state = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(state.path(), &config(env));
    let conn = fetchkit::bus(&daemon).await;
    let smtp_port: u16 = std::env::var("POSTFACH_TEST_SMTP_PLAIN_PORT")
        .unwrap()
        .parse()
        .unwrap();
    let smtp = FaultProxy::start("127.0.0.1", smtp_port).await;
    // Past the envelope (about 150 bytes), inside the 50 KB body.
    smtp.set_policy(|_| Fault::Stall {
        dir: Dir::Up,
        at: 2000,
    });
    let sink = create_user(env, "nfstallsink");
    let a = account(&conn, Proto::Imap, Some(smtp.port)).await;
    outboxcheck::queue(&conn, &a.path, &sink.address, "nf stalled body").await;
    common::eventually("the body stalled", Duration::from_secs(20), || {
        let smtp = &smtp;
        async move { smtp.faulted() > 0 }
    })
    .await;
    drop_mails(env, &a.user, 0, 1);
    let acc = fetchkit::account(&conn, &a.path).await;
    let answer = tokio::time::timeout(Duration::from_secs(30), acc.fetch_now()).await;
    assert!(
        matches!(answer, Ok(Ok(1))),
        "FetchNow while the SMTP body stalls: {answer:?}"
    );
    let outbox = outboxcheck::settled(&conn, Duration::ZERO).await;
    assert_eq!(outbox["nf stalled body"], "sending", "{outbox:?}");
    drop(acc);
    // Panics if the stop waits for the stalled session.
    daemon.stop();
    daemon.restart();
    let conn = fetchkit::bus(&daemon).await;
    let outbox = outboxcheck::settled(&conn, Duration::from_secs(30)).await;
    assert_eq!(outbox["nf stalled body"], "failed", "{outbox:?}");
    assert!(
        outboxcheck::sink_counts(env, &sink).is_empty(),
        "the stalled mail arrived"
    );
}
