//! The copied-store check (src/store/identity.rs) against the real daemon,
//! the real Dovecot and a real `cp -a`: a state directory copied to another
//! path starts with delete-on-server switched off (and `RestoreReset` on)
//! for every account that had it, before its first fetch, so fetching in
//! the copy leaves the server's mail alone; the original, started again,
//! keeps delete-on-server and still deletes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
use common::fetch as fetchkit;

use std::process::Command;

use common::Env;
use fetchkit::Proto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_state_dir_starts_reset_and_the_original_keeps_deleting() {
    let env = Env::get();
    let user = common::create_user(env, "copied");
    common::drop_messages(env, &user, 3);
    let root = tempfile::tempdir().unwrap();
    let original = root.path().join("original");

    // The original: one deleting account, one keeping, no poll (fetches
    // only on demand, so nothing runs before the test asks).
    let mut daemon = fetchkit::start(&original);
    let conn = fetchkit::bus(&daemon).await;
    let deleting = fetchkit::account_for(&conn, Proto::Pop3, &user, true, 0).await;
    let keeping = fetchkit::account_for(&conn, Proto::Imap, &user, false, 0).await;
    daemon.stop();

    let copy = root.path().join("copy");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&original)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(cp.success());

    let mut copied = fetchkit::start(&copy);
    let conn = fetchkit::bus(&copied).await;
    let acc = fetchkit::account(&conn, &deleting).await;
    assert!(!acc.delete_on_server().await.unwrap());
    assert!(acc.restore_reset().await.unwrap());
    let other = fetchkit::account(&conn, &keeping).await;
    assert!(!other.delete_on_server().await.unwrap());
    assert!(
        !other.restore_reset().await.unwrap(),
        "had nothing to reset"
    );
    assert_eq!(acc.fetch_now().await.unwrap(), 3);
    assert_eq!(
        common::message_count(env, &user),
        3,
        "the copy deleted mail"
    );
    let log = copied.log();
    assert!(log.contains("copied or moved from"), "{log}");
    let id = deleting.as_str().rsplit('/').next().unwrap();
    assert!(
        log.contains(&format!("switched off for account {id}")),
        "{log}"
    );
    assert!(!log.contains(&user.password), "a secret in the log");
    // Started again where it now is, the copy keeps its state and logs no
    // new reset.
    copied.restart();
    let acc = fetchkit::account(&conn, &deleting).await;
    assert!(!acc.delete_on_server().await.unwrap());
    assert!(acc.restore_reset().await.unwrap());
    let resets = copied
        .log()
        .matches("applying the restore safety reset")
        .count();
    assert_eq!(resets, 1, "{}", copied.log());
    copied.stop();

    let mut daemon = fetchkit::start(&original);
    let conn = fetchkit::bus(&daemon).await;
    let acc = fetchkit::account(&conn, &deleting).await;
    assert!(acc.delete_on_server().await.unwrap());
    assert!(!acc.restore_reset().await.unwrap());
    assert_eq!(acc.fetch_now().await.unwrap(), 3);
    assert_eq!(common::message_count(env, &user), 0, "the original deletes");
    assert!(!daemon.log().contains("copied or moved"));
    daemon.stop();
}
