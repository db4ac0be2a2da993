//! Real XOAUTH2 logins to the Dovecot of `scripts/testenv`, whose oauth2
//! passdb checks each access token at the test authorization server's
//! introspection endpoint (tests/env/dovecot-oauth2.conf.ext): IMAP with
//! and without SASL-IR, POP3 in the two-step form with a 5 KB token, and
//! rejected tokens answered so that nothing hangs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
#[path = "common/oauth_server/mod.rs"]
mod oauth_server;

use std::sync::Arc;
use std::time::Duration;

use common::{create_user, drop_raw, message_count, Env, MailUser};
use oauth_server::{token, OAuthServer, CLIENT_ID};
use postfach::account::{Account, SettingValue};
use postfach::config::Office365Config;
use postfach::error::Error;
use postfach::net::{Timeouts, TlsContext};
use postfach::oauth::Office365;
use postfach::store::Store;

/// A mail user for XOAUTH2 logins. It has a passwd-file like every test
/// user (Dovecot's static userdb asks the passdb whether a user exists,
/// and the oauth2 passdb cannot answer without a token), but its random
/// password is never used here: the oauth2 passdb, consulted first for
/// XOAUTH2, logs it in.
fn oauth_user(env: &Env) -> MailUser {
    create_user(env, "oauth")
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(10),
        read: Duration::from_secs(20),
        ..Timeouts::default()
    }
}

async fn imap_login(
    user: &str,
    access: &str,
    sasl_ir: bool,
) -> postfach::error::Result<async_imap::Session<tokio::net::TcpStream>> {
    token::ensure_introspection();
    let env = Env::get();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", env.imap_port))
        .await
        .unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().unwrap();
    postfach::imap::xoauth2::authenticate(client, user, access, sasl_ir, &timeouts(), "localhost")
        .await
}

#[tokio::test]
async fn imap_xoauth2_logs_in_with_and_without_sasl_ir() {
    let env = Env::get();
    let user = oauth_user(env);
    drop_raw(env, &user, b"Subject: one\r\n\r\nbody\r\n");
    let access = token::mint(&user.address, 60, 0);
    for sasl_ir in [true, false] {
        let mut session = imap_login(&user.address, &access, sasl_ir).await.unwrap();
        let inbox = session.select("INBOX").await.unwrap();
        assert_eq!(inbox.exists, 1, "sasl_ir {sasl_ir}");
        session.logout().await.unwrap();
    }
}

#[tokio::test]
async fn imap_rejected_tokens_fail_without_hanging() {
    let env = Env::get();
    let user = oauth_user(env);
    let other = oauth_user(env);
    let expired = token::mint(&user.address, 0, 0);
    let forged = format!("{}x", token::mint(&user.address, 60, 0));
    let someone_elses = token::mint(&other.address, 60, 0);
    for (what, access) in [
        ("expired", expired),
        ("forged", forged),
        ("other user", someone_elses),
    ] {
        for sasl_ir in [true, false] {
            match imap_login(&user.address, &access, sasl_ir).await {
                Err(Error::Authentication(m)) => {
                    assert!(!m.contains(&access), "{m}");
                }
                Err(e) => panic!("{what}, sasl_ir {sasl_ir}: {e:?}"),
                Ok(_) => panic!("{what}, sasl_ir {sasl_ir}: logged in"),
            }
        }
    }
}

fn pop3_account(store: &Store, user: &MailUser) -> Account {
    let env = Env::get();
    let s = |v: &str| SettingValue::Str(v.into());
    let settings = vec![
        ("kind".to_string(), s("pop3-office365")),
        ("address".to_string(), s(&user.address)),
        ("username".to_string(), s(&user.address)),
        ("host".to_string(), s("127.0.0.1")),
        ("port".to_string(), SettingValue::U16(env.pop3_port)),
        ("encryption".to_string(), s("none")),
    ];
    store
        .create_account(|id| Account::create(id, &settings))
        .unwrap()
}

#[tokio::test]
async fn pop3_xoauth2_takes_a_5_kb_token_from_a_real_sign_in() {
    let env = Env::get();
    let user = oauth_user(env);
    drop_raw(env, &user, b"Subject: one\r\n\r\nbody\r\n");
    drop_raw(env, &user, b"Subject: two\r\n\r\nbody\r\n");
    let server = OAuthServer::start();
    server.with(|st| st.access_len = 5 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let account = pop3_account(&store, &user);
    let config = Office365Config {
        client_id: Some(CLIENT_ID.into()),
        authority: server.authority(),
        ..Office365Config::default()
    };
    let tls = TlsContext::new(Some(&env.ca)).unwrap();
    let o365 = Office365::new(&config, &tls, &timeouts(), store.clone()).unwrap();
    // Connect("device"); the user signs in.
    let start = o365.start_device(&account).await.unwrap();
    server.with(|st| st.approve(&start.user_code, &user.address));
    o365.finish_device(&account).await.unwrap();
    let access = o365.access_token(&account).await.unwrap();
    assert!(access.secret().len() >= 5 * 1024);
    let report = postfach::pop3::fetch(
        &account,
        access.secret(),
        &store,
        &tls,
        &timeouts(),
        &|_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(report.new_ids.len(), 2, "{report:?}");
    assert_eq!(message_count(env, &user), 2);
}

#[tokio::test]
async fn pop3_rejected_tokens_fail_without_hanging() {
    let env = Env::get();
    token::ensure_introspection();
    let user = oauth_user(env);
    drop_raw(env, &user, b"Subject: one\r\n\r\nbody\r\n");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let account = pop3_account(&store, &user);
    let tls = TlsContext::new(Some(&env.ca)).unwrap();
    for (what, access) in [
        ("expired", token::mint(&user.address, 0, 0)),
        (
            "forged long",
            format!("{}x", token::mint(&user.address, 60, 5 * 1024)),
        ),
    ] {
        match postfach::pop3::fetch(&account, &access, &store, &tls, &timeouts(), &|_, _| {}).await
        {
            Err(Error::Authentication(m)) => assert!(!m.contains(&access), "{m}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    // The right token still works afterwards.
    let access = token::mint(&user.address, 60, 0);
    postfach::pop3::fetch(&account, &access, &store, &tls, &timeouts(), &|_, _| {})
        .await
        .unwrap();
}
