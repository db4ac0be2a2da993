//! Office 365 sign-in over D-Bus, as the CRM drives it: Connect("device")
//! and Connect("browser") + CompleteConnect against the test authorization
//! server, then real XOAUTH2 fetches from the run's Dovecot (its oauth2
//! passdb checks every token). Also: `Authorized` and its signal, the
//! errors a sign-in ends with, a restart between Connect and completion,
//! who may call, `postfachctl account connect`, and that no token shows
//! in the log, a property or a signal.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
#[path = "common/o365.rs"]
mod o365;
#[path = "common/oauth_server/mod.rs"]
mod oauth_server;

use std::process::Command;
use std::time::Duration;

use futures::StreamExt;
use zbus::fdo::PropertiesProxy;

use common::eventually::eventually;
use common::fetch::{self as fetchkit, get};
use common::{create_user, drop_raw, Env};
use o365::{until_authorized, until_listed, until_state, World, LIMIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_over_dbus_signs_in_and_fetches_over_imap() {
    let env = Env::get();
    let user = create_user(env, "o365d");
    drop_raw(env, &user, b"Subject: first\r\n\r\nbody\r\n");
    let w = World::start().await;
    let path = w.account("imap-office365", &user, 3600).await;
    let acc = w.proxy(&path).await;
    // Not signed in: it waits for Connect, it does not fail turns.
    until_state(&acc, "needs-authorization", "Connect").await;
    assert!(!acc.authorized().await.unwrap());

    let props = PropertiesProxy::builder(&w.conn)
        .destination("org.postfach.Postfach1")
        .path(path.clone())
        .build()
        .await
        .unwrap();
    let mut changes = props.receive_properties_changed().await.unwrap();

    let info = acc.connect("device").await.unwrap();
    let uri: String = get(&info, "verification_uri");
    assert!(uri.starts_with(&w.server.authority()), "{uri}");
    assert!(get::<u32>(&info, "expires_in") > 0);
    let code: String = get(&info, "user_code");
    // The poll runs on after Connect returned; the user signs in later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!acc.authorized().await.unwrap());
    w.server.with(|st| st.approve(&code, &user.address));
    until_authorized(&acc).await;
    // Fetching starts at once (the poll interval is an hour).
    until_listed(&w, &path, 1).await;
    // The mail is listed once its batch commits; the turn ends after it.
    until_state(&acc, "idle", "").await;
    assert_eq!(acc.last_error().await.unwrap(), "");

    // PropertiesChanged named Authorized without a value.
    let mut seen = false;
    while let Ok(Some(sig)) = tokio::time::timeout(Duration::from_secs(1), changes.next()).await {
        let args = sig.args().unwrap();
        assert!(!args.changed_properties.contains_key("Authorized"));
        for v in args.changed_properties.values() {
            assert!(!format!("{v:?}").contains("pf."), "a token in a signal");
        }
        seen |= args.invalidated_properties.contains(&"Authorized");
    }
    assert!(seen, "PropertiesChanged names Authorized");

    // New mail comes in on the kept, IDLEing XOAUTH2 session.
    drop_raw(env, &user, b"Subject: second\r\n\r\nbody\r\n");
    until_listed(&w, &path, 2).await;

    // No token in any property.
    let all = props
        .get_all(zbus::names::InterfaceName::from_static_str_unchecked(
            "org.postfach.Postfach1.Account",
        ))
        .await
        .unwrap();
    assert!(!format!("{all:?}").contains("pf."), "a token in a property");
    for s in w.secrets() {
        assert!(!format!("{all:?}").contains(&s), "a secret in a property");
    }
    w.assert_log_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_fetches_over_pop3_with_a_5_kb_token() {
    let env = Env::get();
    let user = create_user(env, "o365p");
    drop_raw(env, &user, b"Subject: one\r\n\r\nbody\r\n");
    let w = World::start_with("", |st| st.access_len = 5 * 1024).await;
    let path = w.account("pop3-office365", &user, 0).await;
    let acc = w.proxy(&path).await;
    w.device_sign_in(&acc, &user).await;
    until_listed(&w, &path, 1).await;
    drop_raw(env, &user, b"Subject: two\r\n\r\nbody\r\n");
    assert_eq!(acc.fetch_now().await.unwrap(), 1);
    assert_eq!(acc.last_error().await.unwrap(), "");
    w.assert_log_clean();
}

/// Plays the user in the browser: opens the authorize URL, returns where
/// Microsoft redirects to.
async fn browse(authorize_url: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(authorize_url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302, "{authorize_url}");
    r.headers()["location"].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_flow_with_complete_connect_refuses_a_foreign_state() {
    let env = Env::get();
    let user = create_user(env, "o365b");
    drop_raw(env, &user, b"Subject: one\r\n\r\nbody\r\n");
    let w = World::start().await;
    let path = w.account("imap-office365", &user, 0).await;
    let acc = w.proxy(&path).await;
    let info = acc.connect("browser").await.unwrap();
    let url: String = get(&info, "authorize_url");
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let redirect = browse(&url).await;
    let forged = redirect.replace("state=", "state=x");
    let e = acc.complete_connect(&forged).await.unwrap_err();
    assert_eq!(
        fetchkit::error_name(&e),
        "org.postfach.Postfach1.Error.InvalidArgument",
        "{e}"
    );
    assert!(e.to_string().contains("state"), "{e}");
    assert!(!acc.authorized().await.unwrap());
    acc.complete_connect(&redirect).await.unwrap();
    until_authorized(&acc).await;
    until_listed(&w, &path, 1).await;
    // The code was redeemed: the same redirect again is refused.
    assert!(acc.complete_connect(&redirect).await.is_err());
    w.assert_log_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_browser_sign_in_is_the_accounts_last_error() {
    let env = Env::get();
    let user = create_user(env, "o365bd");
    let w = World::start().await;
    let path = w.account("imap-office365", &user, 0).await;
    let acc = w.proxy(&path).await;
    let before = until_state(&acc, "needs-authorization", "Connect").await;
    let info = acc.connect("browser").await.unwrap();
    let url: String = get(&info, "authorize_url");
    w.server.with(|st| st.decline_browser = true);
    let redirect = browse(&url).await;
    // A foreign redirect is the caller's mistake only.
    let forged = redirect.replace("state=", "state=x");
    acc.complete_connect(&forged).await.unwrap_err();
    assert_eq!(acc.last_error().await.unwrap(), before);
    // The user's refusal is the account's status too.
    let e = acc.complete_connect(&redirect).await.unwrap_err();
    assert!(e.to_string().contains("AADSTS65004"), "{e}");
    let last = until_state(&acc, "needs-authorization", "AADSTS65004").await;
    assert!(last.contains("declined"), "{last}");
    assert!(!acc.authorized().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_refuses_plain_accounts_unknown_flows_and_a_missing_config() {
    let env = Env::get();
    let user = create_user(env, "o365x");
    let w = World::start().await;
    let plain = fetchkit::account_for(&w.conn, fetchkit::Proto::Imap, &user, false, 0).await;
    let e = w.proxy(&plain).await.connect("device").await.unwrap_err();
    assert_eq!(
        fetchkit::error_name(&e),
        "org.postfach.Postfach1.Error.InvalidArgument",
        "{e}"
    );
    let path = w.account("imap-office365", &user, 0).await;
    let e = w.proxy(&path).await.connect("magic").await.unwrap_err();
    assert_eq!(
        fetchkit::error_name(&e),
        "org.postfach.Postfach1.Error.InvalidArgument",
        "{e}"
    );
    assert!(e.to_string().contains("flow"), "{e}");

    // A daemon without [oauth.office365] says what to configure.
    let state = tempfile::tempdir().unwrap();
    let bare = fetchkit::start(state.path());
    let conn = fetchkit::bus(&bare).await;
    let s = common::Settings::on_dovecot("imap-office365", &user).with("username", &user.address);
    let path = fetchkit::create(&conn, s.dbus()).await;
    let e = fetchkit::account(&conn, &path)
        .await
        .connect("device")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("[oauth.office365]"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_is_honoured_and_an_expired_code_is_a_clear_last_error() {
    let env = Env::get();
    let user = create_user(env, "o365s");
    let w = World::start_with("", |st| st.slow_down_next = 1).await;
    let path = w.account("imap-office365", &user, 0).await;
    let acc = w.proxy(&path).await;
    let info = acc.connect("device").await.unwrap();
    let code: String = get(&info, "user_code");
    eventually("a poll after slow_down", LIMIT, || async {
        w.server.with(|st| st.polls()) >= 2
    })
    .await;
    w.server.with(|st| st.expire(&code));
    let e = until_state(&acc, "needs-authorization", "AADSTS70019").await;
    assert!(e.contains("Connect again"), "{e}");
    assert_eq!(
        w.server.with(|st| st.too_fast),
        0,
        "polled faster than asked"
    );
    assert!(!acc.authorized().await.unwrap());

    // A declined sign-in says so.
    let info = acc.connect("device").await.unwrap();
    let code: String = get(&info, "user_code");
    w.server.with(|st| st.deny(&code));
    let e = until_state(&acc, "needs-authorization", "declined").await;
    assert!(!e.contains(&code), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_connect_and_sign_in_loses_nothing() {
    let env = Env::get();
    let user = create_user(env, "o365r");
    drop_raw(env, &user, b"Subject: one\r\n\r\nbody\r\n");
    let mut w = World::start().await;
    let imap = w.account("imap-office365", &user, 0).await;
    let pop = w.account("pop3-office365", &user, 0).await;
    let info = w.proxy(&imap).await.connect("device").await.unwrap();
    let code: String = get(&info, "user_code");
    let browser = w.proxy(&pop).await.connect("browser").await.unwrap();
    let url: String = get(&browser, "authorize_url");

    w.daemon.kill9();
    w.daemon.restart();
    w.conn = fetchkit::bus(&w.daemon).await;
    let polls = w.server.with(|st| st.polls());
    // The device poll resumes from the store.
    eventually("the device poll resumes", LIMIT, || async {
        w.server.with(|st| st.polls()) > polls
    })
    .await;
    w.server.with(|st| st.approve(&code, &user.address));
    let acc = w.proxy(&imap).await;
    until_authorized(&acc).await;
    until_listed(&w, &imap, 1).await;
    // CompleteConnect still finds the verifier.
    let redirect = browse(&url).await;
    let acc = w.proxy(&pop).await;
    acc.complete_connect(&redirect).await.unwrap();
    until_authorized(&acc).await;
    w.assert_log_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_may_connect() {
    let env = Env::get();
    let user = create_user(env, "o365a");
    let extra = format!("[access]\nfrontend_groups = [\"{}\"]\n", env.frontend_group);
    let w = World::start_with(&extra, |_| {}).await;
    let path = w.account("imap-office365", &user, 0).await;
    for (method, arg) in [
        ("Connect", "device"),
        ("CompleteConnect", "https://x.test/"),
    ] {
        let mut cmd = Command::new("busctl");
        cmd.arg(format!("--address={}", w.daemon.bus().address()))
            .args(["call", "org.postfach.Postfach1", path.as_str()])
            .args(["org.postfach.Postfach1.Account", method, "s", arg]);
        let out = common::as_user(&env.unix_frontend, &cmd).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{method} by a frontend");
        assert!(
            err.contains("AccessDenied") || err.contains("may not"),
            "{err}"
        );
    }
    assert_eq!(
        w.server.with(|st| st.devices.len()),
        0,
        "no sign-in started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_account_connect_prints_the_code_and_waits_for_the_sign_in() {
    let env = Env::get();
    let user = create_user(env, "o365c");
    let w = World::start().await;
    let path = w.account("imap-office365", &user, 0).await;
    let id = path.as_str().rsplit('/').next().unwrap().to_string();
    let child = w
        .daemon
        .ctl_command(&["account", "connect", &id])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let code = {
        let server = &w.server;
        let mut code = None;
        eventually("the device code is asked for", LIMIT, || {
            code = server.with(|st| st.devices.values().next().map(|d| d.user_code.clone()));
            std::future::ready(code.is_some())
        })
        .await;
        code.unwrap()
    };
    w.server.with(|st| st.approve(&code, &user.address));
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&code), "{stdout}");
    assert!(stdout.contains(&w.server.authority()), "{stdout}");
    assert!(stdout.contains("Signed in"), "{stdout}");
    assert!(w.proxy(&path).await.authorized().await.unwrap());
}
