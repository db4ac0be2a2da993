//! The daemon's life: sd_notify READY=1 only once the store is open and the
//! bus name owned; SIGHUP reloads the config (a bad file is reported and
//! the old one kept); SIGTERM stops cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::TestBus;
use common::Env;

fn spawn(bus: &TestBus, state: &Path, config: &Path, notify: Option<&Path>, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postfachd"));
    cmd.arg("--session")
        .arg("--state-dir")
        .arg(state)
        .arg("--config")
        .arg(config)
        .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stderr(log);
    if let Some(n) = notify {
        cmd.env("NOTIFY_SOCKET", n);
    }
    cmd.spawn().unwrap()
}

/// How long a start or a reload may take to show.
const SHOWS: Duration = Duration::from_secs(10);

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

fn stop(mut child: Child) -> std::process::ExitStatus {
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "no stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ready_is_notified_after_the_name_is_owned_and_stopping_on_sigterm() {
    let bus = TestBus::start();
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "").unwrap();
    let child = spawn(
        &bus,
        &dir.path().join("state"),
        &config,
        Some(&sock_path),
        &dir.path().join("log"),
    );
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("a notification");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(msg.contains("READY=1"), "{msg}");
    assert!(
        bus.has_owner("org.postfach.Postfach1"),
        "READY=1 only once the name is owned"
    );
    assert!(
        dir.path().join("state/postfach.redb").exists(),
        "and the store is open"
    );
    let status = stop(child);
    assert!(status.success(), "{status:?}");
    let n = sock.recv(&mut buf).expect("STOPPING=1");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
}

/// ListMessages as the Unix user `user` acting as CRM user `crm`.
fn list_as(bus: &TestBus, user: &str, crm: &str) -> std::process::Output {
    let mut cmd = Command::new("busctl");
    cmd.arg(format!("--address={}", bus.address())).args([
        "call",
        "org.postfach.Postfach1",
        "/org/postfach/Postfach1",
        "org.postfach.Postfach1.Mailbox",
        "ListMessages",
        "sa{sv}uu",
        crm,
        "0",
        "0",
        "10",
    ]);
    common::as_user(user, &cmd).output().unwrap()
}

#[test]
fn sighup_reloads_access_rules_and_keeps_the_old_config_when_the_new_one_is_bad() {
    let env = Env::get();
    let bus = TestBus::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let log = dir.path().join("log");
    std::fs::write(&config, "[access]\nadmin_groups = []\n").unwrap();
    let child = spawn(&bus, &dir.path().join("state"), &config, None, &log);
    common::eventually_blocking("the bus name", SHOWS, || {
        bus.has_owner("org.postfach.Postfach1")
    });

    let denied = list_as(&bus, &env.unix_alice, "alice");
    assert!(!denied.status.success(), "alice is not mapped yet");
    assert!(String::from_utf8_lossy(&denied.stderr).contains("not allowed"));

    let mapped = format!(
        "[access]\nadmin_groups = []\n[access.users]\n{} = \"alice\"\n",
        env.unix_alice
    );
    std::fs::write(&config, &mapped).unwrap();
    signal(&child, nix::sys::signal::Signal::SIGHUP);
    common::eventually_blocking("alice to be admitted", SHOWS, || {
        list_as(&bus, &env.unix_alice, "alice").status.success()
    });
    let as_bob = list_as(&bus, &env.unix_alice, "bob");
    assert!(
        !as_bob.status.success(),
        "a mapped user acts only as itself"
    );

    std::fs::write(&config, "[access\nthis is not toml").unwrap();
    signal(&child, nix::sys::signal::Signal::SIGHUP);
    common::eventually_blocking("the reload error in the log", SHOWS, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("config not reloaded")
    });
    assert!(
        list_as(&bus, &env.unix_alice, "alice").status.success(),
        "the old config is kept"
    );
    assert!(stop(child).success());
}
