//! `postfachctl backup` and `restore` against the real daemon: a round
//! trip with a passphrase file, and a restore that refuses to run without
//! a terminal or `--yes`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
use common::fetch as fetchkit;
use common::restorekit::{all_mails, mail};

use common::Env;
use fetchkit::Proto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_backup_and_restore_round_trip() {
    let env = Env::get();
    let user = common::create_user(env, "restctl");
    for i in 0..3 {
        common::drop_raw(env, &user, &mail(i, if i == 0 { 1_100_000 } else { 2500 }));
    }
    let state_a = tempfile::tempdir().unwrap();
    let a = fetchkit::start(state_a.path());
    let conn_a = fetchkit::bus(&a).await;
    let path = fetchkit::account_for(&conn_a, Proto::Pop3, &user, true, 0).await;
    assert_eq!(
        fetchkit::account(&conn_a, &path)
            .await
            .fetch_now()
            .await
            .unwrap(),
        3
    );
    let sent = all_mails(&conn_a).await;

    let out = tempfile::tempdir().unwrap();
    let pass = out.path().join("pass");
    std::fs::write(&pass, "Sonnenblume 7\n").unwrap();
    let file = out.path().join("pf.backup");
    let (f, p) = (file.to_str().unwrap(), pass.to_str().unwrap());
    let o = a.ctl(&["backup", f, "--passphrase-file", p]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(file.exists() && !out.path().join("pf.backup.partial").exists());
    let bytes = std::fs::read(&file).unwrap();
    assert!(!bytes
        .windows(user.password.len())
        .any(|w| w == user.password.as_bytes()));

    let state_b = tempfile::tempdir().unwrap();
    let b = fetchkit::start(state_b.path());
    let conn_b = fetchkit::bus(&b).await;
    // No terminal, no --yes: refused, nothing changed.
    let o = b.ctl(&["restore", f, "--passphrase-file", p]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--yes"));
    assert!(all_mails(&conn_b).await.is_empty());
    let o = b.ctl(&["restore", f, "--passphrase-file", p, "--yes"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("restored 1 accounts and 3 messages"),
        "{text}"
    );
    assert!(
        text.contains("delete-on-server switched off for a1"),
        "{text}"
    );
    assert!(all_mails(&conn_b).await == sent);
    let acc = fetchkit::account(&conn_b, &path).await;
    assert!(acc.has_password().await.unwrap());
    assert!(!acc.delete_on_server().await.unwrap());
}
