//! Sending from Office 365 accounts in a running daemon: SendMessage over
//! D-Bus, the account's task logs in to the run's Postfix submission
//! (STARTTLS required) with AUTH XOAUTH2, which Postfix hands to Dovecot's
//! SASL, whose oauth2 passdb checks the token at the test authorization
//! server's introspection endpoint. So the token is really checked; tokens
//! revoked before their expiry come from `oauth_server::revoked`.
//!
//! Covered: a mail goes out once with XOAUTH2; a token the server refuses
//! is refreshed once and the mail goes; a revoked sign-in makes the
//! account needs-authorization, the mail stays queued (held, without
//! asking anyone) until Connect, then goes once; a server that refuses
//! even a fresh token also means needs-authorization, and the tokens stay.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
#[path = "common/o365.rs"]
mod o365;
#[path = "common/oauth_server/mod.rs"]
mod oauth_server;
mod sendkit;

use std::collections::HashMap;
use std::time::Duration;

use common::eventually::eventually;
use common::fetch as fetchkit;
use common::{create_user, drop_raw, Env, MailUser, Settings};
use fetchkit::get;
use o365::{until_listed, until_state, World, LIMIT};
use oauth_server::{revoked, token};
use postfach::dbus::proxy::{Dict, MailboxProxy};
use sendkit::delivered;
use zbus::{OwnedObjectPath, Variant};

/// An `imap-office365` account of `user` on the run's Dovecot, sending
/// through the Postfix submission port with STARTTLS and a login; fetched
/// on demand only, so that only the sign-in's own fetch logs in to IMAP.
async fn account(w: &World, user: &MailUser) -> OwnedObjectPath {
    let env = Env::get();
    let s = Settings::on_dovecot("imap-office365", user)
        .with("username", &user.address)
        .with("poll_interval", 0u32)
        .with("smtp_host", "127.0.0.1")
        .with("smtp_port", env.smtp_port)
        .with("smtp_encryption", "starttls")
        .with("smtp_login", true);
    fetchkit::create(&w.conn, s.dbus()).await
}

/// A signed-in account of a new user with one mail in its inbox, after
/// the fetch the sign-in starts (so that no IMAP login runs later).
async fn signed_in(w: &World, prefix: &str) -> (MailUser, OwnedObjectPath) {
    let env = Env::get();
    let user = create_user(env, prefix);
    drop_raw(env, &user, b"Subject: in\r\n\r\nbody\r\n");
    let path = account(w, &user).await;
    let acc = w.proxy(&path).await;
    w.device_sign_in(&acc, &user).await;
    until_listed(w, &path, 1).await;
    (user, path)
}

async fn send(w: &World, path: &OwnedObjectPath, to: &MailUser, subject: &str) -> u64 {
    let mb = fetchkit::mailbox(&w.conn).await;
    let mut m: HashMap<&str, Variant<'_>> = HashMap::new();
    m.insert("to", Variant::from(vec![to.address.clone()]));
    m.insert("subject", Variant::from(subject.to_string()));
    m.insert("text", Variant::from("Guten Tag".to_string()));
    m.insert("signature", Variant::from(false));
    mb.send_message("", path, m).await.unwrap()
}

/// Outbox mail `id` as an admin lists it.
async fn outbox_entry(mb: &MailboxProxy<'_>, id: u64) -> Dict {
    let mut f = HashMap::new();
    f.insert("folder", Variant::from("outbox"));
    let (page, _) = mb.list_messages("", f, 0, 1000).await.unwrap();
    page.into_iter()
        .find(|d| get::<u64>(d, "id") == id)
        .expect("listed in the outbox")
}

/// Waits until outbox mail `id` is in `state` with an error containing
/// `error`; its entry.
async fn until_mail(w: &World, id: u64, state: &str, error: &str, limit: Duration) -> Dict {
    let mb = fetchkit::mailbox(&w.conn).await;
    let what = format!("mail {id} {state} with error containing {error:?}");
    eventually(&what, limit, || async {
        let d = outbox_entry(&mb, id).await;
        get::<String>(&d, "state") == state && get::<String>(&d, "error").contains(error)
    })
    .await;
    outbox_entry(&mb, id).await
}

/// Postfix's log lines of `user`'s logins: the mails submitted after one
/// (`client=…, sasl_method=…`), or the refused ones.
fn postfix_logins(user: &str, refused: bool) -> Vec<String> {
    let log = std::env::var("POSTFACH_TEST_MAILLOG").expect("POSTFACH_TEST_MAILLOG");
    let what = if refused {
        "authentication failed"
    } else {
        "client="
    };
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|l| l.contains(&format!("sasl_username={user}")) && l.contains(what))
        .map(str::to_string)
        .collect()
}

/// The mail reached `to` once, and stays once.
async fn delivered_once(to: &MailUser) {
    let env = Env::get();
    delivered(env, to, 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(delivered(env, to, 1).await.len(), 1, "delivered once");
}

/// Nothing reached `to` (after a pause in which a sent mail would arrive).
async fn nothing_delivered(to: &MailUser) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let new = to.maildir(Env::get()).join("new");
    let n = std::fs::read_dir(new).map_or(0, |d| d.count());
    assert_eq!(n, 0, "a mail reached {}", to.address);
}

/// Seconds since the epoch, a second from now: tokens issued after it
/// expire later than tokens issued before.
async fn next_second() -> u64 {
    let now = token::now();
    while token::now() == now {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    token::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office365_account_sends_with_xoauth2_once() {
    let w = World::start().await;
    let (user, path) = signed_in(&w, "o365s").await;
    let to = create_user(Env::get(), "o365sto");
    let id = send(&w, &path, &to, "über XOAUTH2").await;
    let d = until_mail(&w, id, "sent", "", LIMIT).await;
    assert_eq!(get::<String>(&d, "error"), "");
    delivered_once(&to).await;
    let logins = postfix_logins(&user.address, false);
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert!(logins[0].contains("sasl_method=XOAUTH2"), "{logins:?}");
    assert!(postfix_logins(&user.address, true).is_empty());
    let acc = w.proxy(&path).await;
    assert_eq!(acc.last_error().await.unwrap(), "");
    w.assert_log_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_refreshed_once_and_the_mail_goes_once() {
    let w = World::start().await;
    let (user, path) = signed_in(&w, "o365r").await;
    // The sign-in's access token (an hour left) is revoked at the
    // servers; tokens issued from the next second on are good.
    revoked::revoke_until(&user.address, token::now() + 3600);
    next_second().await;
    let before = w.refreshes();
    let to = create_user(Env::get(), "o365rto");
    let id = send(&w, &path, &to, "nach Widerruf").await;
    until_mail(&w, id, "sent", "", LIMIT).await;
    delivered_once(&to).await;
    assert_eq!(w.refreshes(), before + 1, "one refresh");
    let logins = postfix_logins(&user.address, false);
    assert_eq!(logins.len(), 1, "{logins:?}");
    let refused = postfix_logins(&user.address, true);
    assert_eq!(refused.len(), 1, "the revoked token, once: {refused:?}");
    let acc = w.proxy(&path).await;
    assert_eq!(acc.last_error().await.unwrap(), "");
    assert_ne!(acc.state().await.unwrap(), "needs-authorization");
    w.assert_log_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_sign_in_holds_the_mail_until_connect() {
    let w = World::start().await;
    let (user, path) = signed_in(&w, "o365v").await;
    let acc = w.proxy(&path).await;
    // The admin revokes the user's sessions: access and refresh tokens.
    revoked::revoke_until(&user.address, token::now() + 3600);
    w.server.with(|st| st.revoke(&user.address));
    next_second().await;
    let to = create_user(Env::get(), "o365vto");
    let first = send(&w, &path, &to, "erste").await;
    let e = until_state(&acc, "needs-authorization", "AADSTS50173").await;
    assert!(e.contains("Connect"), "{e}");
    assert!(!acc.authorized().await.unwrap());
    let d = until_mail(&w, first, "queued", "AADSTS50173", LIMIT).await;
    assert!(get::<String>(&d, "error").contains("Connect"), "{d:?}");
    let asked = w.server.with(|st| st.token_requests.len());
    // A second mail waits without an attempt: no token request, no login.
    let second = send(&w, &path, &to, "zweite").await;
    until_mail(&w, second, "queued", "needs Connect", LIMIT).await;
    nothing_delivered(&to).await;
    assert_eq!(w.server.with(|st| st.token_requests.len()), asked);
    assert!(postfix_logins(&user.address, false).is_empty());
    let refused = postfix_logins(&user.address, true);
    assert_eq!(
        refused.len(),
        1,
        "one login, before the refresh failed: {refused:?}"
    );
    assert_eq!(
        get::<String>(
            &outbox_entry(&fetchkit::mailbox(&w.conn).await, first).await,
            "state"
        ),
        "queued"
    );

    // Connect again: both go out at once, each once.
    w.device_sign_in(&acc, &user).await;
    until_mail(&w, first, "sent", "", LIMIT).await;
    until_mail(&w, second, "sent", "", LIMIT).await;
    let env = Env::get();
    delivered(env, &to, 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(delivered(env, &to, 2).await.len(), 2, "each delivered once");
    w.assert_log_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_fresh_tokens_needs_authorization_and_keeps_them() {
    let w = World::start().await;
    let (user, path) = signed_in(&w, "o365f").await;
    let acc = w.proxy(&path).await;
    // Every token of the user is refused (SMTP AUTH disabled for the
    // mailbox, say), while the sign-in itself stays good.
    revoked::revoke_until(&user.address, u64::MAX);
    let before = w.refreshes();
    let to = create_user(Env::get(), "o365fto");
    let id = send(&w, &path, &to, "abgewiesen").await;
    let e = until_state(&acc, "needs-authorization", "SMTP.Send").await;
    assert!(e.contains("Connect"), "{e}");
    assert!(acc.authorized().await.unwrap(), "tokens kept");
    let d = until_mail(&w, id, "queued", "SMTP.Send", LIMIT).await;
    assert!(!get::<String>(&d, "error").contains("pf."), "{d:?}");
    assert_eq!(w.refreshes(), before + 1, "one refresh, not a storm");
    eventually("two refused logins in Postfix's log", LIMIT, || async {
        postfix_logins(&user.address, true).len() >= 2
    })
    .await;
    let refused = postfix_logins(&user.address, true);
    assert_eq!(refused.len(), 2, "the token, then a fresh one: {refused:?}");
    nothing_delivered(&to).await;

    // Fixed at the server: the retry (the outbox's backoff) sends it.
    revoked::restore(&user.address);
    until_mail(&w, id, "sent", "", Duration::from_secs(120)).await;
    delivered_once(&to).await;
    w.assert_log_clean();
}

/// TestConnection's steps as (name, ok, message).
async fn test_connection(w: &World, path: &OwnedObjectPath) -> Vec<(String, bool, String)> {
    let acc = w.proxy(path).await;
    let steps = acc.test_connection().await.unwrap();
    steps
        .iter()
        .map(|d| (get(d, "name"), get(d, "ok"), get(d, "message")))
        .collect()
}

fn step<'a>(steps: &'a [(String, bool, String)], name: &str) -> &'a (String, bool, String) {
    steps
        .iter()
        .find(|s| s.0 == name)
        .unwrap_or_else(|| panic!("no step {name}: {steps:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_logs_in_with_the_sign_ins_token() {
    let env = Env::get();
    let w = World::start().await;
    let user = create_user(env, "o365t");
    let path = account(&w, &user).await;
    // Not connected: both logins say so instead of asking for a password.
    let steps = test_connection(&w, &path).await;
    for name in ["login", "smtp auth"] {
        let (_, ok, message) = step(&steps, name);
        assert!(!ok, "{steps:?}");
        assert!(message.contains("Connect"), "{name}: {message}");
    }
    assert!(step(&steps, "smtp starttls").1, "{steps:?}");

    let acc = w.proxy(&path).await;
    w.device_sign_in(&acc, &user).await;
    let steps = test_connection(&w, &path).await;
    assert!(steps.iter().all(|s| s.1), "{steps:?}");
    assert!(step(&steps, "login").2.contains("XOAUTH2"), "{steps:?}");
    assert!(step(&steps, "smtp auth").2.contains("XOAUTH2"), "{steps:?}");

    // A token the servers refuse: the steps say so, without the token.
    revoked::revoke_until(&user.address, u64::MAX);
    let steps = test_connection(&w, &path).await;
    for name in ["login", "smtp auth"] {
        let (_, ok, message) = step(&steps, name);
        assert!(!ok, "{steps:?}");
        assert!(!message.contains("pf."), "{name}: {message}");
    }
    assert!(step(&steps, "smtp auth").2.contains("535"), "{steps:?}");
    w.assert_log_clean();
}
