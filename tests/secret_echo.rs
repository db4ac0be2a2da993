//! A server that refuses the login by repeating it, password included
//! (tests/common/scripted/echo.rs), over IMAP LOGIN, POP3 PASS and POP3
//! AUTH PLAIN: the password shows up in no reply, property, signal or log
//! line — it is masked where the server put it (src/redact.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use base64::Engine;
use futures::StreamExt;

use common::api::error_parts;
use common::scripted::echo::{self, Echo};
use common::{Daemon, Settings};
use postfach::dbus::proxy::{AccountProxy, ManagerProxy};

/// With a quote and a backslash, which IMAP escapes when it sends them.
const SECRET: &str = r#"Geh3im"Pass\wort-4711"#;
const LOGIN: &str = "echo-user";

/// Every form in which the secret could leak.
fn forms() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        SECRET.to_string(),
        "Geh3im".to_string(),
        "wort-4711".to_string(),
        b64.encode(SECRET),
        b64.encode(format!("\0{LOGIN}\0{SECRET}")),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for f in forms() {
        assert!(!text.contains(&f), "{what} holds {f:?}: {text}");
    }
}

async fn refused_login_does_not_leak_the_password(kind: Echo) {
    let port = echo::start(kind);
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), "");
    let conn = common::api::bus(&d).await;
    let proto = if kind == Echo::ImapLogin {
        "imap"
    } else {
        "pop3"
    };
    let s = Settings::on_loopback(proto, port, "echo@example.test")
        .with("username", LOGIN)
        .with("password", SECRET)
        .dbus();
    let path = ManagerProxy::new(&conn)
        .await
        .unwrap()
        .create_account(s)
        .await
        .unwrap();
    let acc = AccountProxy::builder(&conn)
        .path(path)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut finished = acc.receive_fetch_finished().await.unwrap();

    let (name, reply) = error_parts(acc.fetch_now().await.expect_err("refused"));
    assert_eq!(
        name, "org.postfach.Postfach1.Error.Authentication",
        "{kind:?}: {reply}"
    );
    assert_clean("FetchNow's reply", &reply);
    // The server did echo it: it is masked where it stood.
    assert!(reply.contains("***"), "{kind:?}: {reply}");

    let last = acc.last_error().await.unwrap();
    assert_clean("LastError", &last);
    assert!(last.contains("***"), "{kind:?}: {last}");

    let sig = tokio::time::timeout(Duration::from_secs(5), finished.next())
        .await
        .expect("FetchFinished within 5 s")
        .unwrap();
    assert_eq!(sig.args().unwrap().error, "Authentication");

    let steps = acc.test_connection().await.unwrap();
    let text = format!("{steps:?}");
    assert_clean("TestConnection", &text);
    assert!(text.contains("***"), "{kind:?}: {text}");

    assert_clean("the log", &d.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_login_echo() {
    refused_login_does_not_leak_the_password(Echo::ImapLogin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_pass_echo() {
    refused_login_does_not_leak_the_password(Echo::Pop3Pass).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_auth_plain_echo() {
    refused_login_does_not_leak_the_password(Echo::Pop3Plain).await;
}
