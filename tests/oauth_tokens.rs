//! Office 365 tokens in the account task of a running daemon, after a
//! sign-in over D-Bus: a token that expires during a long IDLE, a revoked
//! refresh token (needs-authorization, no retry storm, Connect fixes it),
//! and the token endpoint going down and coming back. Logins are real
//! XOAUTH2 logins to the run's Dovecot, whose oauth2 passdb refuses an
//! expired token.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
#[path = "common/o365.rs"]
mod o365;
#[path = "common/oauth_server/mod.rs"]
mod oauth_server;

use std::time::Duration;

use common::eventually::eventually;
use common::fetch as fetchkit;
use common::{create_user, drop_raw, kick, Env};
use o365::{until_listed, until_state, World, LIMIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expiring_during_a_long_idle_is_replaced_without_an_error() {
    let env = Env::get();
    let user = create_user(env, "o365i");
    drop_raw(env, &user, b"Subject: one\r\n\r\nbody\r\n");
    // Tokens live 6 s: each is renewed after 3 s (half its life).
    let w = World::start_with("", |st| st.access_life = 6).await;
    let path = w.account("imap-office365", &user, 3600).await;
    let acc = w.proxy(&path).await;
    w.device_sign_in(&acc, &user).await;
    until_listed(&w, &path, 1).await;
    let before = w.refreshes();
    // The IDLE ends before its token runs out and logs in afresh.
    eventually("a refreshed token for a new login", LIMIT, || async {
        w.refreshes() >= before + 2
    })
    .await;
    // The server ends the session (as Office 365 does at expiry): the
    // next mail still comes, on a new login with a valid token.
    kick(env, &user);
    drop_raw(env, &user, b"Subject: two\r\n\r\nbody\r\n");
    until_listed(&w, &path, 2).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    drop_raw(env, &user, b"Subject: three\r\n\r\nbody\r\n");
    until_listed(&w, &path, 3).await;
    assert_eq!(acc.last_error().await.unwrap(), "");
    assert_ne!(acc.state().await.unwrap(), "error");
    w.assert_log_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_needs_authorization_without_a_storm_until_connect() {
    let env = Env::get();
    let user = create_user(env, "o365v");
    let w = World::start_with("", |st| st.access_life = 4).await;
    // Polled every 5 s: a failing account would retry soon after.
    let path = w.account("pop3-office365", &user, 5).await;
    let acc = w.proxy(&path).await;
    w.device_sign_in(&acc, &user).await;
    w.server.with(|st| st.revoke(&user.address));
    let e = until_state(&acc, "needs-authorization", "AADSTS50173").await;
    assert!(e.contains("Connect"), "{e}");
    assert!(!acc.authorized().await.unwrap());
    let asked = w.server.with(|st| st.token_requests.len());
    // Turns and FetchNow answer at once, without asking the server again.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let err = acc.fetch_now().await.unwrap_err();
    assert_eq!(
        fetchkit::error_name(&err),
        "org.postfach.Postfach1.Error.NeedsAuthorization",
        "{err}"
    );
    assert_eq!(
        w.server.with(|st| st.token_requests.len()),
        asked,
        "token requests after the grant died"
    );
    assert_eq!(acc.state().await.unwrap(), "needs-authorization");
    let warnings = w
        .daemon
        .log()
        .lines()
        .filter(|l| l.contains("no longer accepts the account's sign-in"))
        .count();
    assert_eq!(warnings, 1, "one journal warning");

    // Connect again fixes it.
    drop_raw(env, &user, b"Subject: back\r\n\r\nbody\r\n");
    w.device_sign_in(&acc, &user).await;
    until_listed(&w, &path, 1).await;
    assert_eq!(acc.last_error().await.unwrap(), "");
    w.assert_log_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_down_then_back() {
    let env = Env::get();
    let user = create_user(env, "o365e");
    let w = World::start_with("", |st| st.access_life = 4).await;
    let path = w.account("imap-office365", &user, 0).await;
    let acc = w.proxy(&path).await;
    w.device_sign_in(&acc, &user).await;
    // Let the access token reach its refresh margin, then take the
    // endpoint away.
    tokio::time::sleep(Duration::from_secs(3)).await;
    w.server.down();
    let err = acc.fetch_now().await.unwrap_err();
    assert_eq!(
        fetchkit::error_name(&err),
        "org.postfach.Postfach1.Error.Connection",
        "{err}"
    );
    let e = acc.last_error().await.unwrap();
    assert!(e.contains("sign-in server"), "{e}");
    assert_eq!(acc.state().await.unwrap(), "error");
    assert!(
        acc.authorized().await.unwrap(),
        "tokens kept while it is down"
    );
    w.server.up();
    drop_raw(env, &user, b"Subject: back\r\n\r\nbody\r\n");
    assert_eq!(acc.fetch_now().await.unwrap(), 1);
    assert_eq!(acc.last_error().await.unwrap(), "");
    w.assert_log_clean();
}
