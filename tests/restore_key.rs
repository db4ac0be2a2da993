//! The store key: from the systemd credential `master-key` when
//! `$CREDENTIALS_DIRECTORY` has one, else `secret.key`; a store started
//! without the key that sealed its passwords keeps every mail, and each
//! account shows `HasPassword` false and a `LastError` that says why. One
//! test in this binary: it sets `CREDENTIALS_DIRECTORY` for the daemons.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
use common::fetch as fetchkit;
use common::restorekit::{all_mails, mail};

use common::Env;
use fetchkit::Proto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_comes_from_the_credential_and_a_store_without_its_key_loses_no_mail() {
    let env = Env::get();
    let user = common::create_user(env, "restkey");
    common::drop_raw(env, &user, &mail(1, 3000));
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("master-key"), [7u8; 32]).unwrap();
    std::env::set_var("CREDENTIALS_DIRECTORY", creds.path());
    let state = tempfile::tempdir().unwrap();
    let mut d = fetchkit::start(state.path());
    let conn = fetchkit::bus(&d).await;
    let path = fetchkit::account_for(&conn, Proto::Pop3, &user, false, 0).await;
    assert_eq!(
        fetchkit::account(&conn, &path)
            .await
            .fetch_now()
            .await
            .unwrap(),
        1
    );
    assert!(
        !state.path().join("secret.key").exists(),
        "a key file beside the credential"
    );
    drop(conn);
    d.restart();
    let conn = fetchkit::bus(&d).await;
    let acc = fetchkit::account(&conn, &path).await;
    assert!(acc.has_password().await.unwrap());
    common::drop_raw(env, &user, &mail(2, 3000));
    assert_eq!(
        acc.fetch_now().await.unwrap(),
        1,
        "the credential opens the password"
    );
    let mails = all_mails(&conn).await;
    drop(acc);
    drop(conn);

    // The same store without its key.
    std::env::remove_var("CREDENTIALS_DIRECTORY");
    d.restart();
    let conn = fetchkit::bus(&d).await;
    let acc = fetchkit::account(&conn, &path).await;
    assert!(!acc.has_password().await.unwrap());
    let err = acc.fetch_now().await.unwrap_err();
    assert!(
        fetchkit::error_name(&err).ends_with("Storage")
            || fetchkit::error_name(&err).ends_with("Authentication"),
        "{err:?}"
    );
    let last = acc.last_error().await.unwrap();
    assert!(
        last.contains("set it again") || last.contains("password"),
        "{last}"
    );
    assert!(all_mails(&conn).await == mails, "mail lost without the key");
    // Entering the password again works under a new key file.
    acc.set_password(&user.password).await.unwrap();
    assert!(acc.has_password().await.unwrap());
    assert_eq!(acc.fetch_now().await.unwrap(), 0);
}
