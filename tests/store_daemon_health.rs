//! A store failure inside one D-Bus call never takes the daemon down
//! (issue 10 item 10, the daemon's side): pages of the store file are
//! zeroed behind the running daemon's back. Every call then answers with
//! the right bytes or a Storage error, the same process keeps its bus
//! name, the damaged file is refused at the store's next check instead of
//! being served or written, and once a good file is put back (the way a
//! restore would put it), the same process serves it again.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postfach::account::{Account, SettingValue};
use postfach::dbus::proxy::{MailboxProxy, ManagerProxy};
use postfach::store::{NewMail, Store, DB_FILE};
use zbus::Variant;

use common::daemon::BUS_NAME;
use common::noise::Xorshift;
use common::TestBus;

const STORAGE: &str = "org.postfach.Postfach1.Error.Storage";

/// One account and more mail than redb's page cache holds (32 MB), so that
/// GetRaw after the damage reaches the file. Returns id -> raw bytes.
fn build(dir: &Path) -> BTreeMap<u64, Vec<u8>> {
    let store = Store::open(dir).unwrap();
    let settings = [
        ("kind", "pop3"),
        ("host", "127.0.0.1"),
        ("address", "health@example.org"),
        ("tenant", "t1"),
    ]
    .map(|(k, v)| (k.to_string(), SettingValue::Str(v.into())));
    // No polling: nothing but the test's calls touches the store.
    let mut settings = settings.to_vec();
    settings.push(("poll_interval".into(), SettingValue::U32(0)));
    let a = store
        .create_account(|id| Account::create(id, &settings))
        .unwrap();
    // Letters at random: stored mails are compressed, and a repeated
    // string would shrink the store to a few pages that all stay cached.
    let mut noise = Xorshift::new(0x9e37_79b9_7f4a_7c15);
    let body: String = (0..120_000)
        .map(|_| char::from(b'a' + (noise.next_u64() % 26) as u8))
        .collect();
    let mut mails = BTreeMap::new();
    for chunk in (0..320u32).collect::<Vec<_>>().chunks(40) {
        let raws: Vec<Vec<u8>> = chunk
            .iter()
            .map(|i| format!("Subject: {i}\r\nMessage-ID: <{i}@health.test>\r\n\r\n{i} {body}\r\n"))
            .map(String::into_bytes)
            .collect();
        let batch = chunk
            .iter()
            .zip(&raws)
            .map(|(i, raw)| NewMail {
                server_id: format!("pop3:{i}"),
                raw: raw.clone().into(),
                received: 1_700_000_000,
            })
            .collect();
        let ids = store
            .commit_batch(&a, batch, &postfach::mime::summarize)
            .unwrap();
        mails.extend(ids.into_iter().zip(raws));
    }
    mails
}

/// GetRaw as the admin: the bytes, or the D-Bus error (name, message).
async fn get_raw(mb: &MailboxProxy<'_>, id: u64) -> Result<Vec<u8>, (String, String)> {
    let fd = mb.get_raw("", id).await.map_err(common::api::error_parts)?;
    let fd: std::os::fd::OwnedFd = fd.into();
    let mut bytes = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut bytes).unwrap();
    Ok(bytes)
}

/// ListMessages over everything: the total, or the D-Bus error.
async fn total(mb: &MailboxProxy<'_>) -> Result<u32, (String, String)> {
    mb.list_messages("", HashMap::new(), 0, 10)
        .await
        .map(|(_, total)| total)
        .map_err(common::api::error_parts)
}

/// The pid that owns the daemon's bus name: the same process throughout.
async fn owner_pid(conn: &zbus::Connection) -> u32 {
    let dbus = zbus::fdo::DBusProxy::new(conn).await.unwrap();
    let name = zbus::names::BusName::try_from(BUS_NAME).unwrap();
    dbus.get_connection_unix_process_id(name).await.unwrap()
}

async fn create_account(m: &ManagerProxy<'_>) -> Result<(), (String, String)> {
    let mut s = HashMap::new();
    s.insert("kind", Variant::from("pop3"));
    s.insert("host", Variant::from("127.0.0.1"));
    s.insert(
        "address",
        Variant::from(common::unique("new") + "@example.org"),
    );
    s.insert("tenant", Variant::from("t1"));
    s.insert("poll_interval", Variant::from(0u32));
    m.create_account(s)
        .await
        .map(|_| ())
        .map_err(common::api::error_parts)
}

/// `postfachd --session` on its own bus. Not `common::Daemon`: the check
/// of a 38 MB store at start takes longer than its start timeout in a
/// debug build on a loaded machine.
struct Running {
    child: Child,
    bus: Arc<TestBus>,
    log: PathBuf,
}

impl Running {
    fn start(state: &Path, dir: &Path) -> Running {
        let bus = TestBus::start();
        let config = dir.join("postfachd.toml");
        std::fs::write(&config, "").unwrap();
        let log = dir.join("postfachd.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_postfachd"))
            .arg("--session")
            .arg("--state-dir")
            .arg(state)
            .arg("--config")
            .arg(&config)
            .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut me = Running { child, bus, log };
        let deadline = Instant::now() + Duration::from_secs(300);
        while !me.bus.has_owner(BUS_NAME) {
            let exited = me.child.try_wait().unwrap();
            assert!(exited.is_none(), "postfachd exited: {}", me.log());
            assert!(Instant::now() < deadline, "no start: {}", me.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        me
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_pages_under_the_running_daemon_fail_calls_not_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mails = build(&state);
    let good = dir.path().join("good.redb");
    std::fs::copy(state.join(DB_FILE), &good).unwrap();

    let started = Instant::now();
    let daemon = Running::start(&state, dir.path());
    eprintln!(
        "start with a {} MB store: {:?}",
        std::fs::metadata(&good).unwrap().len() >> 20,
        started.elapsed()
    );
    let conn = zbus::connection::Builder::address(daemon.bus.address())
        .build()
        .await
        .unwrap();
    let pid = daemon.child.id();
    assert_eq!(owner_pid(&conn).await, pid);
    let mb = MailboxProxy::new(&conn).await.unwrap();
    let manager = ManagerProxy::new(&conn).await.unwrap();
    assert_eq!(total(&mb).await, Ok(mails.len() as u32));

    // Behind the daemon's back: every page but the header becomes zeros.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(state.join(DB_FILE))
        .unwrap();
    let zeros = vec![0u8; 4096];
    for page in 1..file.metadata().unwrap().len() / 4096 {
        file.write_all_at(&zeros, page * 4096).unwrap();
    }
    file.sync_all().unwrap();
    drop(file);

    // Each call: the stored bytes or a Storage error; never other bytes,
    // another error, or a daemon gone from the bus.
    let (mut failed, mut served) = (0, 0);
    for (id, want) in &mails {
        match get_raw(&mb, *id).await {
            Ok(got) => {
                assert!(&got == want, "GetRaw({id}) returned other bytes");
                served += 1;
            }
            Err((name, msg)) => {
                assert_eq!(name, STORAGE, "GetRaw({id}): {msg}");
                failed += 1;
            }
        }
    }
    for result in [total(&mb).await.map(|_| ()), create_account(&manager).await] {
        if let Err((name, msg)) = result {
            assert_eq!(name, STORAGE, "{msg}");
        }
    }
    eprintln!("after the damage: {served} served, {failed} failed");
    assert!(failed > 0, "no call saw the damage");
    assert_eq!(owner_pid(&conn).await, pid, "the daemon left the bus");

    // The store checks the file again and refuses it: no more reads from
    // or writes into the damaged file.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match total(&mb).await {
            Err((name, msg)) if msg.contains("not a usable postfach store") => {
                assert_eq!(name, STORAGE);
                break;
            }
            other => assert!(
                Instant::now() < deadline,
                "the damaged store is still used: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A good file moved into place (atomically, as a restore would) is
    // served by the same process once the store's next check admits it.
    let staged = state.join("postfach.redb.restore");
    std::fs::copy(&good, &staged).unwrap();
    std::fs::rename(&staged, state.join(DB_FILE)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while total(&mb).await != Ok(mails.len() as u32) {
        assert!(Instant::now() < deadline, "the good store is not served");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (id, want) in &mails {
        assert!(&get_raw(&mb, *id).await.unwrap() == want, "mail {id}");
    }
    create_account(&manager).await.unwrap();
    assert_eq!(owner_pid(&conn).await, pid, "the daemon was restarted");
    let log = daemon.log();
    assert!(daemon.stop().success(), "log:\n{log}");
}
