//! Secrets in backups: with a passphrase they travel sealed under a key
//! derived from it and come back only with the right one; without one, or
//! with a wrong one, the accounts come back without a password. No
//! password is ever in clear in a backup or the store file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
use common::fetch as fetchkit;
use common::restorekit::{backup_with, mail, restore_with};

use common::Env;
use fetchkit::Proto;

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_come_back_with_the_right_passphrase_only() {
    let env = Env::get();
    let user = common::create_user(env, "restpw");
    let state_a = tempfile::tempdir().unwrap();
    let a = fetchkit::start(state_a.path());
    let conn_a = fetchkit::bus(&a).await;
    let path = fetchkit::account_for(&conn_a, Proto::Pop3, &user, false, 0).await;
    let out = tempfile::tempdir().unwrap();
    let with = out.path().join("with");
    let without = out.path().join("without");
    backup_with(&conn_a, &with, Some("Korrekt Pferd Batterie"))
        .await
        .unwrap();
    backup_with(&conn_a, &without, None).await.unwrap();
    for f in [&with, &without, &state_a.path().join("postfach.redb")] {
        assert!(
            !holds(&std::fs::read(f).unwrap(), &user.password),
            "password in clear in {f:?}"
        );
    }
    assert!(!holds(
        &std::fs::read(&without).unwrap(),
        "\"secrets\":true"
    ));

    let state_b = tempfile::tempdir().unwrap();
    let b = fetchkit::start(state_b.path());
    let conn_b = fetchkit::bus(&b).await;
    for (file, pass, back) in [
        (&with, Some("falsch"), false),
        (&with, None, false),
        (&without, Some("Korrekt Pferd Batterie"), false),
        (&with, Some("Korrekt Pferd Batterie"), true),
    ] {
        let report = restore_with(&conn_b, file, pass).await.unwrap();
        assert_eq!(
            fetchkit::get::<bool>(&report, "secrets"),
            back,
            "{file:?} {pass:?}"
        );
        let acc = fetchkit::account(&conn_b, &path).await;
        assert_eq!(acc.has_password().await.unwrap(), back, "{file:?} {pass:?}");
    }
    // The restored password is sealed under B's own key and works.
    assert!(!holds(
        &std::fs::read(state_b.path().join("postfach.redb")).unwrap(),
        &user.password
    ));
    common::drop_raw(env, &user, &mail(1, 2000));
    let acc = fetchkit::account(&conn_b, &path).await;
    assert_eq!(acc.fetch_now().await.unwrap(), 1);
    drop(a);
}
