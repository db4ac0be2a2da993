//! Helpers shared by the integration tests (`mod common;`).
//!
//! The servers are started by `scripts/testenv` (ARCHITECTURE.md "Testing"), which exports
//! the `POSTFACH_TEST_*` variables read here. Tests run in parallel threads,
//! so everything a test creates (mail users, buses, daemons) has a name
//! unique to the process and the call.
//!
//! Line endings, measured on Dovecot 2.3.19: mail written by [`drop_raw`] is
//! kept on disk byte for byte (`doveadm fetch text` returns it unchanged),
//! but the protocols send it with every bare LF turned into CRLF, and POP3
//! adds a final CRLF before its terminating dot. "Exactly as sent by the
//! server" (invariant 3) therefore means the bytes of the IMAP/POP3 answer,
//! not the file.
#![allow(dead_code)] // each test binary uses a different subset
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod abuse;
pub mod api;
pub mod corpus;
pub mod daemon;
pub mod dovecot;
pub mod eventually;
pub mod faultproxy;
pub mod fetch;
pub mod imapc;
pub mod migration;
pub mod noise;
pub mod outboxcheck;
pub mod restorekit;
pub mod resumption_breaker;
pub mod scripted;
pub mod servers;
pub mod settings;
pub mod smtpfeed;
pub mod sysbus;

#[allow(unused_imports)] // re-exports for the tests that need them
pub use daemon::{as_user, ctl, Daemon, TestBus};
#[allow(unused_imports)]
pub use eventually::{eventually, eventually_blocking};
#[allow(unused_imports)]
pub use settings::Settings;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{chown, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The test environment of this run, from the variables `scripts/testenv`
/// exports.
#[derive(Debug)]
pub struct Env {
    pub dir: PathBuf,
    pub dovecot_conf: PathBuf,
    /// Directory of passwd-files, one per mail user, named by address.
    pub users: PathBuf,
    pub maildir_root: PathBuf,
    pub mail_uid: u32,
    pub mail_gid: u32,
    pub domain: String,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub pop3_port: u16,
    pub pop3s_port: u16,
    /// A loopback address where Dovecot offers neither STARTTLS nor STLS.
    pub notls_host: String,
    pub notls_imap_port: u16,
    pub notls_pop3_port: u16,
    /// Postfix submission: STARTTLS, then AUTH (PLAIN, LOGIN).
    pub smtp_port: u16,
    /// Postfix submissions: implicit TLS.
    pub smtps_port: u16,
    /// PEM of the CA made for this run; the servers' certificate chains to it.
    pub ca: PathBuf,
    /// PEM of the servers' certificate (localhost, 127.0.0.1, 127.0.0.2, ::1).
    pub cert: PathBuf,
    /// base64 SHA-256 of the servers' SubjectPublicKeyInfo.
    pub pin: String,
    /// Address of the shared private bus of this run.
    pub bus: String,
    pub unix_admin: String,
    pub unix_frontend: String,
    pub unix_alice: String,
    pub unix_bob: String,
    pub unix_nobody: String,
    pub admin_group: String,
    pub frontend_group: String,
}

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with scripts/test"))
}

fn num<T: std::str::FromStr>(name: &str) -> T {
    var(name)
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number"))
}

impl Env {
    /// The environment; panics with a hint when not run by `scripts/test`.
    pub fn get() -> &'static Env {
        static ENV: OnceLock<Env> = OnceLock::new();
        ENV.get_or_init(|| Env {
            dir: var("POSTFACH_TEST_DIR").into(),
            dovecot_conf: var("POSTFACH_TEST_DOVECOT_CONF").into(),
            users: var("POSTFACH_TEST_USERS").into(),
            maildir_root: var("POSTFACH_TEST_MAILDIR_ROOT").into(),
            mail_uid: num("POSTFACH_TEST_MAIL_UID"),
            mail_gid: num("POSTFACH_TEST_MAIL_GID"),
            domain: var("POSTFACH_TEST_DOMAIN"),
            imap_port: num("POSTFACH_TEST_IMAP_PORT"),
            imaps_port: num("POSTFACH_TEST_IMAPS_PORT"),
            pop3_port: num("POSTFACH_TEST_POP3_PORT"),
            pop3s_port: num("POSTFACH_TEST_POP3S_PORT"),
            notls_host: var("POSTFACH_TEST_NOTLS_HOST"),
            notls_imap_port: num("POSTFACH_TEST_NOTLS_IMAP_PORT"),
            notls_pop3_port: num("POSTFACH_TEST_NOTLS_POP3_PORT"),
            smtp_port: num("POSTFACH_TEST_SMTP_PORT"),
            smtps_port: num("POSTFACH_TEST_SMTPS_PORT"),
            ca: var("POSTFACH_TEST_CA").into(),
            cert: var("POSTFACH_TEST_CERT").into(),
            pin: var("POSTFACH_TEST_PIN"),
            bus: var("POSTFACH_TEST_BUS"),
            unix_admin: var("POSTFACH_TEST_UNIX_ADMIN"),
            unix_frontend: var("POSTFACH_TEST_UNIX_FRONTEND"),
            unix_alice: var("POSTFACH_TEST_UNIX_ALICE"),
            unix_bob: var("POSTFACH_TEST_UNIX_BOB"),
            unix_nobody: var("POSTFACH_TEST_UNIX_NOBODY"),
            admin_group: var("POSTFACH_TEST_ADMIN_GROUP"),
            frontend_group: var("POSTFACH_TEST_FRONTEND_GROUP"),
        })
    }
}

/// `prefix` + pid + a per-process counter: unique across parallel tests and
/// across test binaries of one run.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let clean: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    format!("{clean}{}x{n}", std::process::id())
}

/// A Dovecot mail user. `name` and `address` both log in (Dovecot adds the
/// test domain to bare names).
#[derive(Debug, Clone)]
pub struct MailUser {
    pub name: String,
    pub address: String,
    pub password: String,
}

impl MailUser {
    /// The user's maildir (it exists once Dovecot or a drop created it).
    pub fn maildir(&self, env: &Env) -> PathBuf {
        env.maildir_root
            .join(&env.domain)
            .join(&self.name)
            .join("Maildir")
    }
}

/// Adds a mail user: one passwd-file per user in `POSTFACH_TEST_USERS/`
/// (Dovecot reads a new file on its first lookup, so the user can log in at
/// once; a shared file would be re-read at most once a second).
pub fn create_user(env: &Env, prefix: &str) -> MailUser {
    use rand::distributions::{Alphanumeric, DistString};
    let name = unique(prefix);
    let user = MailUser {
        address: format!("{name}@{}", env.domain),
        password: Alphanumeric.sample_string(&mut rand::thread_rng(), 20),
        name,
    };
    write_passwd(env, &user);
    user
}

/// Changes a user's password. Dovecot may answer from the old file for up
/// to a second (it stats each passwd-file at most once a second).
pub fn set_password(env: &Env, user: &mut MailUser, password: &str) {
    user.password = password.to_string();
    write_passwd(env, user);
}

/// Writes the user's passwd-file atomically (write, then rename), readable
/// by Dovecot's auth process (group dovecot, inherited from the dir).
fn write_passwd(env: &Env, user: &MailUser) {
    let line = format!("{}:{{PLAIN}}{}::::::\n", user.address, user.password);
    let tmp = env.users.join(format!(".{}.tmp", user.address));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(&tmp)
        .expect("create a passwd-file");
    file.write_all(line.as_bytes())
        .expect("write a passwd-file");
    fs::rename(&tmp, env.users.join(&user.address)).expect("install a passwd-file");
}

/// Runs `doveadm -c <conf> ARGS`; panics with its stderr when it fails.
pub fn doveadm_bytes(env: &Env, args: &[&str]) -> Vec<u8> {
    let out = Command::new("doveadm")
        .arg("-c")
        .arg(&env.dovecot_conf)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run doveadm");
    assert!(
        out.status.success(),
        "doveadm {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// [`doveadm_bytes`] as text (lossy for non-UTF-8 mail bytes).
pub fn doveadm(env: &Env, args: &[&str]) -> String {
    String::from_utf8_lossy(&doveadm_bytes(env, args)).into_owned()
}

/// Makes Dovecot create the user's maildir (opening INBOX does), so mail can
/// be dropped in directly.
fn ensure_maildir(env: &Env, user: &MailUser) -> PathBuf {
    let dir = user.maildir(env);
    if !dir.join("new").is_dir() {
        message_count(env, user);
    }
    dir
}

/// Delivers one file the maildir way (write in `tmp/`, rename into `new/`)
/// with the mail user's ownership, so Dovecot finds it on its next sync.
fn deliver_file(env: &Env, dir: &Path, bytes: &[u8]) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let base = format!(
        "{}.M{}P{}Q{}.pftest",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        unique("")
    );
    let tmp = dir.join("tmp").join(&base);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .expect("create a maildir file");
    file.write_all(bytes).expect("write a maildir file");
    chown(&tmp, Some(env.mail_uid), Some(env.mail_gid)).expect("chown a maildir file");
    fs::rename(&tmp, dir.join("new").join(&base)).expect("move a mail into new/");
}

/// Puts exactly `bytes` into the user's INBOX. Written straight into the
/// maildir because `doveadm save` rewrites CRLF to LF.
pub fn drop_raw(env: &Env, user: &MailUser, bytes: &[u8]) {
    let dir = ensure_maildir(env, user);
    deliver_file(env, &dir, bytes);
}

/// Puts `n` distinct mails of about 4 KiB into the user's INBOX, fast
/// (1,000 take well under a second): subject `Test message <i>`,
/// Message-ID `<i.<unique>@postfach.test>`.
pub fn drop_messages(env: &Env, user: &MailUser, n: u32) {
    let dir = ensure_maildir(env, user);
    let tag = unique("m");
    let filler = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n".repeat(60);
    for i in 0..n {
        let mail = format!(
            "From: Sender <sender@{domain}>\r\nTo: {to}\r\nSubject: Test message {i}\r\n\
             Date: Thu, 26 Nov 2026 10:{min:02}:{sec:02} +0000\r\n\
             Message-ID: <{i}.{tag}@postfach.test>\r\n\r\nMessage {i} of {n}.\r\n{filler}",
            domain = env.domain,
            to = user.address,
            min = (i / 60) % 60,
            sec = i % 60,
        );
        deliver_file(env, &dir, mail.as_bytes());
    }
}

/// The stored bytes of the INBOX mail with this UID (`doveadm fetch text`).
pub fn stored_bytes(env: &Env, user: &MailUser, uid: u32) -> Vec<u8> {
    let uid = uid.to_string();
    let out = doveadm_bytes(
        env,
        &[
            "fetch",
            "-u",
            &user.address,
            "text",
            "mailbox",
            "INBOX",
            "uid",
            &uid,
        ],
    );
    out.strip_prefix(b"text:\n".as_slice())
        .unwrap_or_else(|| panic!("no mail with UID {uid}"))
        .to_vec()
}

/// A field of `doveadm mailbox status` for INBOX, e.g. `messages`.
pub fn mailbox_status(env: &Env, user: &MailUser, field: &str) -> u64 {
    let out = doveadm(
        env,
        &["mailbox", "status", "-u", &user.address, field, "INBOX"],
    );
    let key = format!("{field}=");
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(&key))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unexpected doveadm status output: {out}"))
}

/// Number of mails in the user's INBOX, as Dovecot sees it.
pub fn message_count(env: &Env, user: &MailUser) -> u32 {
    mailbox_status(env, user, "messages") as u32
}

/// Disconnects every IMAP/POP3 session of the user (dropped-connection tests).
pub fn kick(env: &Env, user: &MailUser) {
    let out = Command::new("doveadm")
        .arg("-c")
        .arg(&env.dovecot_conf)
        .args(["kick", &user.address])
        .output()
        .expect("run doveadm kick");
    // 68 (EX_NOUSER): nobody was connected, which is fine.
    assert!(
        out.status.success() || out.status.code() == Some(68),
        "doveadm kick failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Forces a new UIDVALIDITY on the user's INBOX (RFC 3501 §2.3.1.1).
pub fn set_uidvalidity(env: &Env, user: &MailUser, value: u32) {
    let v = value.to_string();
    doveadm(
        env,
        &[
            "mailbox",
            "update",
            "-u",
            &user.address,
            "--uid-validity",
            &v,
            "INBOX",
        ],
    );
}
