//! `Manager.Status` and `postfachctl status` on a real system bus with the
//! shipped policy file, postfachd running as its own unprivileged user and
//! callers that are real other Unix users (tests/common/sysbus.rs). Every
//! figure is checked against what the installation really holds: accounts
//! made to be idle, in error and waiting for an Office 365 sign-in, mail
//! that Postfix defers (queued) and refuses (failed), and the store's
//! files read here, beside the daemon, before and after a big mail arrives.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postfach::dbus::proxy::{Dict, ManagerProxy};
use zbus::{Connection, OwnedObjectPath, Variant};

use common::fetch::{self as fetchkit, get};
use common::restorekit::mail;
use common::sysbus::{daemon_user, give_to, open_dir, SysDaemon, SystemBus};
use common::{create_user, drop_raw, Env, Settings};

/// Postfix on loopback without required TLS; it answers RCPT TO
/// `deferred@` with 450 and `rejected@` with 550 (scripts/testenv).
fn smtp_plain_port() -> u16 {
    std::env::var("POSTFACH_TEST_SMTP_PLAIN_PORT")
        .expect("POSTFACH_TEST_SMTP_PLAIN_PORT: run the tests with scripts/test")
        .parse()
        .unwrap()
}

fn config(env: &Env) -> String {
    format!(
        "[tls]\nextra_ca_file = \"{}\"\n[access]\nadmin_groups = [\"{}\"]\nfrontend_groups = [\"{}\"]\n[access.users]\n{} = \"alice\"\n",
        env.ca.display(),
        env.admin_group,
        env.frontend_group,
        env.unix_alice,
    )
}

/// A system bus, postfachd on it with a state directory the test can
/// measure, and the test's own (root, so admin) connection.
struct World {
    daemon: SysDaemon,
    state: PathBuf,
    conn: Connection,
    _dir: PathBuf,
}

impl World {
    async fn start() -> World {
        let dir = open_dir("cst");
        let state = dir.join("state");
        std::fs::create_dir(&state).unwrap();
        give_to(&state, &daemon_user());
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        let bus: Arc<SystemBus> = SystemBus::start();
        let daemon = SysDaemon::start(
            bus.clone(),
            &config(Env::get()),
            Some(&state),
            Duration::from_secs(15),
        );
        let conn = bus.connect().await;
        World {
            daemon,
            state,
            conn,
            _dir: dir,
        }
    }

    /// `postfachctl ARGS` on the system bus as the Unix user `user`.
    fn ctl(&self, user: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_postfachctl"));
        cmd.args(args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", self.daemon.bus().address())
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        common::as_user(user, &cmd).output().unwrap()
    }

    /// `postfachctl status` as the admin user; its stdout.
    fn status_text(&self) -> String {
        ok(&self.ctl(&Env::get().unix_admin, &["status"]))
    }

    fn status_json(&self) -> serde_json::Value {
        let out = ok(&self.ctl(&Env::get().unix_admin, &["--json", "status"]));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// An account fetched on demand only (`poll_interval` 0), so that
    /// each FetchNow below is the fetch that brings the mail.
    async fn create(&self, s: &Settings) -> OwnedObjectPath {
        let s = s.clone().with("poll_interval", 0u32);
        fetchkit::create(&self.conn, s.dbus()).await
    }

    /// `store_bytes` of a status taken while nothing wrote to the state
    /// directory (the files measured here before and after the call agree),
    /// checked against that measure.
    fn settled_store_bytes(&self) -> u64 {
        let mut seen = Vec::new();
        loop {
            let before = disk_bytes(&self.state);
            let got = self.status_json()["store_bytes"].as_u64().unwrap();
            let after = disk_bytes(&self.state);
            if before == after {
                assert_eq!(got, before, "store_bytes is the files' size");
                return got;
            }
            seen.push((before, got, after));
            assert!(seen.len() < 20, "the store never stood still: {seen:?}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// Bytes of the store file plus every file under `blobs/`, read here
/// independently of the daemon.
fn disk_bytes(state: &Path) -> u64 {
    fn tree(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .map(|it| {
                it.flatten()
                    .map(|e| match e.metadata() {
                        Ok(m) if m.is_dir() => tree(&e.path()),
                        Ok(m) => m.len(),
                        Err(_) => 0,
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    std::fs::metadata(state.join("postfach.redb"))
        .unwrap()
        .len()
        + tree(&state.join("blobs"))
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn send_to(to: &str, subject: &str) -> HashMap<&'static str, Variant<'static>> {
    let mut m = HashMap::new();
    m.insert("to", Variant::from(vec![to.to_string()]));
    m.insert("subject", Variant::from(subject.to_string()));
    m.insert("text", Variant::from("Guten Tag".to_string()));
    m.insert("signature", Variant::from(false));
    m
}

fn counts(d: &Dict, key: &str) -> HashMap<String, u64> {
    get(d, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_accounts_outbox_and_store_bytes() {
    let env = Env::get();
    let w = World::start().await;

    // Empty installation: every state printed, all zeros.
    let empty = w.status_text();
    assert!(
        empty.contains(
            "\naccounts: 0 (idle 0, fetching 0, error 0, needs-authorization 0, disabled 0)\n\
             outbox: queued 0, sending 0, failed 0\n"
        ),
        "{empty}"
    );

    // idle: a POP3 account that fetched its two mails.
    let user = create_user(env, "cst");
    for i in 0..2 {
        drop_raw(env, &user, &mail(i, 2500));
    }
    let good = w
        .create(&Settings::on_dovecot("pop3", &user).with("password", &user.password))
        .await;
    let fetched = fetchkit::account(&w.conn, &good)
        .await
        .fetch_now()
        .await
        .unwrap();
    assert_eq!(fetched, 2);

    // error: nothing listens on port 1.
    let broken = w
        .create(
            &Settings::on_dovecot("pop3", &user)
                .with("password", &user.password)
                .with("port", 1u16)
                .with("name", "kaputt"),
        )
        .await;
    let refused = fetchkit::account(&w.conn, &broken).await.fetch_now().await;
    assert!(refused.is_err(), "{refused:?}");

    // needs-authorization: an Office 365 account nobody signed in.
    w.create(
        &Settings::on_dovecot("imap-office365", &user)
            .with("username", &user.address)
            .with("name", "o365"),
    )
    .await;

    // The outbox: one mail Postfix defers (450, queued again with backoff)
    // and one it refuses (550, failed for good), sent from a fourth,
    // idle account.
    let sender = create_user(env, "csts");
    let sending = w
        .create(
            &Settings::on_dovecot("imap", &sender)
                .with("password", &sender.password)
                .with("smtp_host", "127.0.0.1")
                .with("smtp_port", smtp_plain_port())
                .with("smtp_encryption", "none")
                .with("smtp_login", false)
                .with("save_sent_copy", false),
        )
        .await;
    let mb = fetchkit::mailbox(&w.conn).await;
    for to in ["deferred", "rejected"] {
        let to = format!("{to}@{}", env.domain);
        mb.send_message("", &sending, send_to(&to, "Status"))
            .await
            .unwrap();
    }

    let want_accounts =
        "\naccounts: 4 (idle 2, fetching 0, error 1, needs-authorization 1, disabled 0)\n";
    let want_outbox = "\noutbox: queued 1, sending 0, failed 1\n";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = w.status_text();
        if text.contains(want_accounts) && text.contains(want_outbox) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status never showed{want_accounts}and{want_outbox}but:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The D-Bus reply itself: every key, the same figures.
    let mgr = ManagerProxy::new(&w.conn).await.unwrap();
    let d = mgr.status().await.unwrap();
    assert_eq!(get::<String>(&d, "version"), env!("CARGO_PKG_VERSION"));
    let id = mgr.installation_id().await.unwrap();
    assert_eq!(get::<String>(&d, "installation_id"), id);
    let accounts = counts(&d, "accounts");
    assert_eq!(accounts.len(), 5, "{accounts:?}");
    assert_eq!(accounts["idle"], 2);
    assert_eq!(accounts["error"], 1);
    assert_eq!(accounts["needs-authorization"], 1);
    assert_eq!(accounts["disabled"], 0);
    let outbox = counts(&d, "outbox");
    assert_eq!(outbox.len(), 3, "sent mail is not counted: {outbox:?}");
    assert_eq!(outbox["failed"], 1);
    assert_eq!(outbox["queued"] + outbox["sending"], 1, "{outbox:?}");

    // The text for people: the header lines, then the size both exactly
    // and readably.
    let text = w.status_text();
    assert!(
        text.starts_with(&format!(
            "version: {}\ninstallation id: {id}\naccounts: 4 (",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    let store_line = text.lines().last().unwrap();
    assert!(
        store_line.starts_with("store: ")
            && (store_line.ends_with(" KiB)") || store_line.ends_with(" MiB)")),
        "{text}"
    );

    // store_bytes is the files' size, and grows by at least a big mail
    // (kept as a file under blobs/) once it has been fetched.
    let before = w.settled_store_bytes();
    assert!(before > 0);
    drop_raw(env, &user, &mail(9, 1_100_000));
    let fetched = fetchkit::account(&w.conn, &good)
        .await
        .fetch_now()
        .await
        .unwrap();
    assert_eq!(fetched, 1);
    let after = w.settled_store_bytes();
    assert!(
        after >= before + 1_100_000,
        "before {before}, after {after}"
    );
    let json = w.status_json();
    assert_eq!(json["accounts"]["idle"], 2, "{json}");
    assert_eq!(json["outbox"]["failed"], 1, "{json}");
}

/// The figures span every tenant: only admins get them. The callers are
/// real other Unix users, through the shipped bus policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_for_admins_only() {
    let env = Env::get();
    let w = World::start().await;
    assert!(w.status_text().contains("\naccounts: 0 ("));
    for user in [&env.unix_frontend, &env.unix_alice, &env.unix_nobody] {
        let out = w.ctl(user, &["status"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.starts_with("postfachctl: AccessDenied: "),
            "{user}: {err}"
        );
        assert!(out.stdout.is_empty(), "{user} sees nothing");
    }
    // The bare method as well, named by its D-Bus error.
    let mut cmd = Command::new("dbus-send");
    cmd.arg(format!("--bus={}", w.daemon.bus().address()))
        .args([
            "--print-reply",
            &format!("--dest={}", common::sysbus::NAME),
            "/org/postfach/Postfach1",
            "org.postfach.Postfach1.Manager.Status",
        ]);
    let out = common::as_user(&env.unix_frontend, &cmd).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.starts_with("Error org.postfach.Postfach1.Error.AccessDenied: "),
        "{err}"
    );
}
