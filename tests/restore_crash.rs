//! A kill -9 at every step of a restore (the daemon's fault hook
//! `POSTFACH_RESTORE_CRASH_AT` raises SIGKILL there, see
//! `postfach::store::install`), then a start: the old installation before
//! the intent file, the new one from it on, never a mix. One test in this
//! binary: it sets the hook in the environment the daemons inherit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
use common::fetch as fetchkit;
use common::restorekit::{all_mails, backup, leftovers, mail, restore};

use common::Env;
use fetchkit::Proto;

const HOOK: &str = "POSTFACH_RESTORE_CRASH_AT";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_restore_leaves_the_old_or_the_new_installation() {
    let env = Env::get();
    // The backup: another installation's account and mails, one big.
    let src_user = common::create_user(env, "crsrc");
    for i in 0..3 {
        common::drop_raw(
            env,
            &src_user,
            &mail(i, if i == 0 { 1_100_000 } else { 4000 }),
        );
    }
    let src_state = tempfile::tempdir().unwrap();
    let src = fetchkit::start(src_state.path());
    let conn = fetchkit::bus(&src).await;
    let p = fetchkit::account_for(&conn, Proto::Pop3, &src_user, false, 0).await;
    assert_eq!(
        fetchkit::account(&conn, &p)
            .await
            .fetch_now()
            .await
            .unwrap(),
        3
    );
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("backup");
    backup(&conn, &file).await.unwrap();
    let new = all_mails(&conn).await;

    let user = common::create_user(env, "crdst");
    for i in 10..12 {
        common::drop_raw(env, &user, &mail(i, if i == 10 { 1_050_000 } else { 3000 }));
    }
    let points = [
        ("staged", false),
        ("built", false),
        ("marked", true),
        ("moved-db", true),
        ("moved-blobs", true),
        ("installed", true),
    ];
    for (point, installed) in points {
        let state = tempfile::tempdir().unwrap();
        std::env::set_var(HOOK, point);
        let mut d = fetchkit::start(state.path());
        std::env::remove_var(HOOK);
        let conn = fetchkit::bus(&d).await;
        let p = fetchkit::account_for(&conn, Proto::Pop3, &user, false, 0).await;
        assert_eq!(
            fetchkit::account(&conn, &p)
                .await
                .fetch_now()
                .await
                .unwrap(),
            2
        );
        let old = all_mails(&conn).await;
        restore(&conn, &file)
            .await
            .expect_err("the daemon dies inside the restore");
        drop(conn);
        d.kill9();
        assert!(
            d.log().contains(point),
            "{point}: the hook did not fire\n{}",
            d.log()
        );
        d.restart();
        let conn = fetchkit::bus(&d).await;
        let now = all_mails(&conn).await;
        let want = if installed { &new } else { &old };
        assert!(
            &now == want,
            "{point}: after the restart neither the expected installation"
        );
        assert!(
            leftovers(state.path()).is_empty(),
            "{point}: {:?}",
            leftovers(state.path())
        );
        // Every big mail has its file and nothing else is there.
        let blobs: Vec<_> = std::fs::read_dir(state.path().join("blobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "tmp")
            .collect();
        assert_eq!(blobs.len(), 1, "{point}: blob files {blobs:?}");
        let acc = fetchkit::account(&conn, &p).await;
        // Either installation's account is a1; only the old one has its
        // password (the backup carries none).
        assert_eq!(acc.has_password().await.unwrap(), !installed, "{point}");
        drop(conn);
        d.stop();
    }
}
