//! `Manager.Restore` against the real daemon, Dovecot and dbus-daemon: a
//! backup taken during a fetch and one taken after it restore into a fresh
//! installation with every mail byte for byte (big ones included), the
//! restore safety reset applied and reported, and a fetch in the restored
//! installation leaves the server untouched; damaged backups are refused
//! with nothing changed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
use common::fetch as fetchkit;
use common::restorekit::{all_mails, backup, leftovers, mail, restore};

use std::collections::BTreeSet;

use common::Env;
use fetchkit::Proto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_into_a_fresh_installation_that_keeps_the_server_untouched() {
    let env = Env::get();
    let user = common::create_user(env, "restore");
    let mut sent = BTreeSet::new();
    for i in 0..16 {
        let size = if i % 5 == 0 {
            1_300_000 + i * 1000
        } else {
            3000
        };
        let m = mail(i, size);
        common::drop_raw(env, &user, &m);
        sent.insert(m);
    }
    // The original: deletes on the server once a mail is stored.
    let state_a = tempfile::tempdir().unwrap();
    let a = fetchkit::start(state_a.path());
    let conn_a = fetchkit::bus(&a).await;
    let path_a = fetchkit::account_for(&conn_a, Proto::Imap, &user, true, 0).await;
    let fetch = {
        let (conn, path) = (conn_a.clone(), path_a.clone());
        tokio::spawn(async move { fetchkit::account(&conn, &path).await.fetch_now().await })
    };
    let out = tempfile::tempdir().unwrap();
    let during = out.path().join("during");
    backup(&conn_a, &during)
        .await
        .expect("Backup during a fetch");
    assert_eq!(fetch.await.unwrap().unwrap(), 16);
    assert_eq!(common::message_count(env, &user), 0, "the original deletes");
    let after = out.path().join("after");
    backup(&conn_a, &after).await.unwrap();
    let id_a = path_a.as_str().rsplit('/').next().unwrap().to_string();

    // A fresh installation.
    let state_b = tempfile::tempdir().unwrap();
    let b = fetchkit::start(state_b.path());
    let conn_b = fetchkit::bus(&b).await;
    let report = restore(&conn_b, &during)
        .await
        .expect("Restore of a backup taken during a fetch");
    let restored = all_mails(&conn_b).await;
    assert!(restored.is_subset(&sent), "bytes that were never sent");
    assert_eq!(
        fetchkit::get::<u64>(&report, "messages"),
        restored.len() as u64
    );

    // Restored again over a non-empty installation: the later backup.
    let report = restore(&conn_b, &after).await.expect("Restore");
    assert_eq!(
        fetchkit::get::<Vec<String>>(&report, "accounts"),
        vec![id_a.clone()]
    );
    assert_eq!(
        fetchkit::get::<Vec<String>>(&report, "reset"),
        vec![id_a.clone()]
    );
    assert_eq!(fetchkit::get::<u64>(&report, "messages"), 16);
    assert!(!fetchkit::get::<bool>(&report, "secrets"));
    assert!(
        all_mails(&conn_b).await == sent,
        "restored mails differ from the sent ones"
    );
    assert!(
        leftovers(state_b.path()).is_empty(),
        "{:?}",
        leftovers(state_b.path())
    );
    let mgr_a = postfach::dbus::proxy::ManagerProxy::new(&conn_a)
        .await
        .unwrap();
    let mgr_b = postfach::dbus::proxy::ManagerProxy::new(&conn_b)
        .await
        .unwrap();
    assert_eq!(
        mgr_b.installation_id().await.unwrap(),
        mgr_a.installation_id().await.unwrap(),
        "the installation id names where the data came from"
    );

    let acc = fetchkit::account(&conn_b, &path_a).await;
    assert!(!acc.delete_on_server().await.unwrap());
    assert!(acc.restore_reset().await.unwrap());
    assert!(
        !acc.has_password().await.unwrap(),
        "no secret travels without a passphrase"
    );
    // Without a password the account says so instead of fetching.
    let err = acc.fetch_now().await.unwrap_err();
    assert!(
        fetchkit::error_name(&err).ends_with("Authentication"),
        "{err:?}"
    );
    assert!(acc.last_error().await.unwrap().contains("password"));

    // New mail: the restored installation fetches it and leaves it there.
    for i in 100..103 {
        common::drop_raw(env, &user, &mail(i, 2000));
    }
    acc.set_password(&user.password).await.unwrap();
    assert_eq!(acc.fetch_now().await.unwrap(), 3);
    assert_eq!(
        common::message_count(env, &user),
        3,
        "a restored installation deleted mail"
    );
    // The original still deletes.
    assert!(fetchkit::account(&conn_a, &path_a)
        .await
        .delete_on_server()
        .await
        .unwrap());

    // A restart of the restored installation resets nothing again.
    drop(conn_b);
    let mut b = b;
    b.restart();
    let conn_b = fetchkit::bus(&b).await;
    assert_eq!(all_mails(&conn_b).await.len(), 19);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_or_altered_backups_are_refused_and_change_nothing() {
    let env = Env::get();
    let user = common::create_user(env, "restbad");
    for i in 0..4 {
        common::drop_raw(env, &user, &mail(i, if i == 0 { 1_200_000 } else { 5000 }));
    }
    let state = tempfile::tempdir().unwrap();
    let d = fetchkit::start(state.path());
    let conn = fetchkit::bus(&d).await;
    let path = fetchkit::account_for(&conn, Proto::Pop3, &user, false, 0).await;
    assert_eq!(
        fetchkit::account(&conn, &path)
            .await
            .fetch_now()
            .await
            .unwrap(),
        4
    );
    let out = tempfile::tempdir().unwrap();
    let good = out.path().join("good");
    backup(&conn, &good).await.unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let before = all_mails(&conn).await;
    // Another mail after the backup: a refused restore must keep it.
    common::drop_raw(env, &user, &mail(9, 3000));
    assert_eq!(
        fetchkit::account(&conn, &path)
            .await
            .fetch_now()
            .await
            .unwrap(),
        1
    );
    let before = {
        let now = all_mails(&conn).await;
        assert_eq!(now.len(), before.len() + 1);
        now
    };
    let mut damaged = Vec::new();
    for cut in [10, bytes.len() / 3, bytes.len() - 1] {
        damaged.push(("truncated", bytes[..cut].to_vec()));
    }
    for at in [40, bytes.len() / 2, bytes.len() - 40] {
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        damaged.push(("flipped", b));
    }
    let mut extra = bytes.clone();
    extra.push(0);
    damaged.push(("extended", extra));
    for (what, b) in damaged {
        let f = out.path().join(what);
        std::fs::write(&f, &b).unwrap();
        let err = restore(&conn, &f).await.unwrap_err();
        assert!(
            fetchkit::error_name(&err).ends_with("InvalidArgument"),
            "{what}: {err:?}"
        );
        assert!(
            all_mails(&conn).await == before,
            "{what}: the store changed"
        );
        assert!(
            leftovers(state.path()).is_empty(),
            "{what}: {:?}",
            leftovers(state.path())
        );
        let acc = fetchkit::account(&conn, &path).await;
        assert!(acc.has_password().await.unwrap(), "{what}: secrets changed");
    }
    // The good one still restores.
    restore(&conn, &good).await.unwrap();
    assert_eq!(all_mails(&conn).await.len(), before.len() - 1);
}

/// Not a test of its own: `only_admins_restore` runs this test binary as
/// another Unix user with `POSTFACH_RESTORE_CLIENT` set to the bus address
/// and `POSTFACH_RESTORE_FILE` to a backup; it prints the error name.
#[tokio::test]
#[ignore = "run by only_admins_restore as another user"]
async fn restore_client() {
    let Ok(address) = std::env::var("POSTFACH_RESTORE_CLIENT") else {
        return;
    };
    let file = std::env::var("POSTFACH_RESTORE_FILE").unwrap();
    let conn = zbus::connection::Builder::address(address.as_str())
        .build()
        .await
        .unwrap();
    if let Err(e) = restore(&conn, std::path::Path::new(&file)).await {
        eprintln!("RESTORE-ERROR {}", fetchkit::error_name(&e));
        std::process::exit(3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_restore() {
    let env = Env::get();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[access]\nadmin_groups = [\"{}\"]\nfrontend_groups = [\"{}\"]\n[access.users]\n{} = \"alice\"\n",
        env.admin_group, env.frontend_group, env.unix_alice
    );
    let d = common::Daemon::start(dir.path(), &config);
    let conn = zbus::connection::Builder::address(d.bus().address())
        .build()
        .await
        .unwrap();
    // A backup of an installation with one account, readable by all.
    let other = tempfile::tempdir().unwrap();
    let o = fetchkit::start(other.path());
    let oconn = fetchkit::bus(&o).await;
    let user = common::create_user(env, "restacl");
    fetchkit::account_for(&oconn, Proto::Pop3, &user, false, 0).await;
    let files = env.dir.join(common::unique("rb"));
    std::fs::create_dir(&files).unwrap();
    std::fs::set_permissions(&files, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let file = files.join("backup");
    backup(&oconn, &file).await.unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let call = |unix: &str| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--ignored",
            "--exact",
            "restore_client",
            "--nocapture",
            "-q",
        ])
        .env("POSTFACH_RESTORE_CLIENT", d.bus().address())
        .env("POSTFACH_RESTORE_FILE", &file);
        common::as_user(unix, &cmd).output().unwrap()
    };
    for unix in [&env.unix_frontend, &env.unix_alice, &env.unix_nobody] {
        let out = call(unix);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("RESTORE-ERROR org.postfach.Postfach1.Error.AccessDenied"),
            "{unix}: {err}"
        );
    }
    let mgr = postfach::dbus::proxy::ManagerProxy::builder(&conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();
    let before = mgr.installation_id().await.unwrap();
    let out = call(&env.unix_admin);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        mgr.installation_id().await.unwrap(),
        before,
        "the admin's restore took effect"
    );
}
