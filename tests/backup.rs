//! `Manager.Backup` against the real daemon, Dovecot and dbus-daemon: a
//! backup taken while a fetch runs is a consistent snapshot (every blob
//! row has its file's bytes, every section verifies), the last one holds
//! every mail byte for byte (big ones included), no backup holds a
//! password, and only admins may take one.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use common::fetch as fetchkit;

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use common::{Daemon, Env};
use fetchkit::Proto;
use postfach::backup::format;
use postfach::dbus::proxy::ManagerProxy;
use postfach::store::compress::dict;
use zbus::zvariant::Variant;
use zbus::Fd;

/// A mail of about `size` bytes with a unique Message-ID.
fn mail(n: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: a@example.test\r\nSubject: backup {n}\r\nMessage-ID: <b{n}.{}@example.test>\r\n\r\n",
        common::unique("m")
    )
    .into_bytes();
    while m.len() < size {
        m.extend_from_slice(format!("line {n} {}\r\n", m.len()).as_bytes());
    }
    m
}

/// Rows of a `table:` section: (key, value) bytes.
fn rows(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    let take = |at: &mut usize| {
        let len = u32::from_be_bytes(body[*at..*at + 4].try_into().unwrap()) as usize;
        let v = body[*at + 4..*at + 4 + len].to_vec();
        *at += 4 + len;
        v
    };
    while at < body.len() {
        let k = take(&mut at);
        let v = take(&mut at);
        out.push((k, v));
    }
    out
}

/// The mails a backup holds (small ones from `raw`, big ones from their
/// blob sections), after checking that every `blobs` row has its section
/// of that length.
fn mails_in(bytes: &[u8]) -> BTreeSet<Vec<u8>> {
    let staging = tempfile::tempdir().unwrap();
    let u = format::unpack(&mut &bytes[..], staging.path(), u64::MAX).expect("backup verifies");
    let body = |name: &str| -> Option<Vec<u8>> {
        u.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| std::fs::read(p).unwrap())
    };
    assert!(body("table:secrets").is_none(), "secrets table in a backup");
    let mut mails = BTreeSet::new();
    // A backup carries the rows as the store keeps them: packed since
    // schema 8 (`table:raw` holds only rows a start has not packed yet).
    for (_, v) in rows(&body("table:raw").expect("raw table")) {
        mails.insert(v);
    }
    // Rows of codec 2 name a dictionary the backup carries (schema 10).
    let dicts: HashMap<u32, Vec<u8>> =
        rows(&body("table:raw_dicts").expect("mail dictionary table"))
            .into_iter()
            .map(|(k, v)| (u32::from_le_bytes(k.try_into().unwrap()), v))
            .collect();
    let prepared = dict::Dicts::default();
    for (_, v) in rows(&body("table:raw_packed").expect("packed raw table")) {
        let raw = match v.split_first() {
            Some((&dict::ZSTD_DICT, payload)) => {
                let (id, frame) = dict::split(payload).unwrap();
                let bytes = dicts.get(&id).map(Vec::as_slice);
                dict::unpack_with(&prepared, id, bytes, frame).unwrap()
            }
            _ => postfach::store::compress::unpack(&v).unwrap(),
        };
        mails.insert(raw);
    }
    let blob_rows = rows(&body("table:blobs").expect("blobs table"));
    let sections = u
        .sections
        .iter()
        .filter(|(n, _)| n.starts_with("blob:"))
        .count();
    assert_eq!(
        blob_rows.len(),
        sections,
        "a blob row without its file or the other way round"
    );
    for (k, v) in blob_rows {
        let id = u64::from_le_bytes(k.try_into().unwrap());
        let len = u64::from_le_bytes(v.try_into().unwrap());
        let bytes = body(&format!("blob:{id}")).expect("blob section");
        assert_eq!(bytes.len() as u64, len);
        mails.insert(bytes);
    }
    let messages = rows(&body("table:messages").expect("messages table"));
    assert_eq!(
        messages.len(),
        mails.len(),
        "index and bytes of one snapshot"
    );
    mails
}

async fn backup(
    conn: &zbus::Connection,
    file: &std::path::Path,
    options: HashMap<&str, Variant<'_>>,
) -> zbus::Result<()> {
    let out = std::fs::File::create(file).unwrap();
    let mgr = ManagerProxy::new(conn).await.unwrap();
    mgr.backup(Fd::from(&out), options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_during_a_fetch_are_consistent_and_hold_every_mail_but_no_secret() {
    let env = Env::get();
    let user = common::create_user(env, "backup");
    let mut sent = BTreeSet::new();
    for i in 0..40 {
        let size = if i % 8 == 0 {
            1_500_000 + i * 1000
        } else {
            3000
        };
        let m = mail(i, size);
        common::drop_raw(env, &user, &m);
        sent.insert(m);
    }
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let path = fetchkit::account_for(&conn, Proto::Imap, &user, false, 0).await;
    let fetch = {
        let (conn, path) = (conn.clone(), path.clone());
        tokio::spawn(async move { fetchkit::account(&conn, &path).await.fetch_now().await })
    };
    let out = tempfile::tempdir().unwrap();
    let mut during = Vec::new();
    for n in 0..6 {
        let f = out.path().join(format!("during{n}"));
        backup(&conn, &f, HashMap::new())
            .await
            .expect("Backup during a fetch");
        during.push(std::fs::read(&f).unwrap());
        if fetch.is_finished() {
            break;
        }
    }
    assert_eq!(fetch.await.unwrap().unwrap(), 40);
    let last = out.path().join("last");
    backup(&conn, &last, HashMap::new()).await.unwrap();
    let last = std::fs::read(&last).unwrap();
    for b in &during {
        let got = mails_in(b);
        assert!(
            got.is_subset(&sent),
            "a backup holds bytes that were never sent"
        );
    }
    assert!(
        mails_in(&last) == sent,
        "the last backup differs from the sent mails"
    );
    for b in during.iter().chain([&last]) {
        let pw = user.password.as_bytes();
        assert!(
            !b.windows(pw.len()).any(|w| w == pw),
            "password in clear in a backup"
        );
    }
    assert!(!state.path().read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".backup-part")));

    // A passphrase carries the secrets sealed, never in clear.
    let mut opts = HashMap::new();
    opts.insert("passphrase", Variant::from("geheim"));
    let pp = out.path().join("pp");
    backup(&conn, &pp, opts).await.unwrap();
    let pw = user.password.as_bytes();
    assert!(!std::fs::read(&pp)
        .unwrap()
        .windows(pw.len())
        .any(|w| w == pw));
    let mut opts = HashMap::new();
    opts.insert("compression", Variant::from("zstd"));
    let err = backup(&conn, &out.path().join("x"), opts)
        .await
        .unwrap_err();
    assert!(
        fetchkit::error_name(&err).ends_with("InvalidArgument"),
        "{err:?}"
    );
}

/// Not a test of its own: `only_admins_take_backups` runs this test binary
/// as another Unix user with `POSTFACH_BACKUP_CLIENT` set to the bus
/// address; it calls Backup with its stdout as the fd and prints the error
/// name to stderr.
#[tokio::test]
#[ignore = "run by only_admins_take_backups as another user"]
async fn backup_client() {
    let Ok(address) = std::env::var("POSTFACH_BACKUP_CLIENT") else {
        return;
    };
    let conn = zbus::connection::Builder::address(address.as_str())
        .build()
        .await
        .unwrap();
    let stdout = std::io::stdout();
    let mgr = ManagerProxy::new(&conn).await.unwrap();
    if let Err(e) = mgr.backup(Fd::from(&stdout), HashMap::new()).await {
        eprintln!("BACKUP-ERROR {}", fetchkit::error_name(&e));
        std::process::exit(3);
    }
}

#[test]
fn only_admins_take_backups() {
    let env = Env::get();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[access]\nadmin_groups = [\"{}\"]\nfrontend_groups = [\"{}\"]\n[access.users]\n{} = \"alice\"\n",
        env.admin_group, env.frontend_group, env.unix_alice
    );
    let d = Daemon::start(dir.path(), &config);
    let call = |user: &str| {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--ignored", "--exact", "backup_client", "--nocapture", "-q"])
            .env("POSTFACH_BACKUP_CLIENT", d.bus().address());
        common::as_user(user, &cmd).output().unwrap()
    };
    for user in [&env.unix_frontend, &env.unix_alice, &env.unix_nobody] {
        let out = call(user);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("BACKUP-ERROR org.postfach.Postfach1.Error.AccessDenied"),
            "{user}: {err}"
        );
        assert!(
            !out.stdout.windows(8).any(|w| w == format::MAGIC),
            "{user} got backup bytes"
        );
    }
    let out = call(&env.unix_admin);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.windows(8).any(|w| w == format::MAGIC));
}
