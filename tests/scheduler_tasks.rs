//! The account tasks react to configuration at once: SetPassword and Update
//! restart a task, Delete stops it, and polling picks up new mail — all
//! through the D-Bus API against the real Dovecot.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::time::Duration;

use postfach::dbus::proxy::{AccountProxy, ManagerProxy};
use zbus::proxy::CacheProperties;
use zbus::{Connection, OwnedObjectPath, Variant};

use common::api::bus;
use common::{eventually, Daemon, Env, MailUser, Settings};

fn config(env: &Env) -> String {
    // Trace level: the test checks that no secret reaches even the most verbose log.
    format!(
        "[log]\nlevel = \"trace\"\n[tls]\nextra_ca_file = \"{}\"\n",
        env.ca.display()
    )
}

async fn account<'a>(conn: &'a Connection, path: &OwnedObjectPath) -> AccountProxy<'a> {
    AccountProxy::builder(conn)
        .path(path.clone())
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap()
}

/// CreateAccount settings of an IMAP account on the test Dovecot over TLS.
fn imap_settings<'a>(
    user: &MailUser,
    login: &str,
    password: &str,
    poll_interval: u32,
) -> HashMap<&'a str, Variant<'static>> {
    Settings::on_dovecot("imap", user)
        .with("username", login)
        .with("password", password)
        .with("poll_interval", poll_interval)
        .dbus()
}

async fn inbox_count(conn: &Connection, path: &OwnedObjectPath) -> u32 {
    let mb = postfach::dbus::proxy::MailboxProxy::new(conn)
        .await
        .unwrap();
    let mut filter = HashMap::new();
    filter.insert("account", Variant::from(path.clone().into_inner()));
    mb.list_messages("", filter, 0, 100).await.unwrap().1
}

#[tokio::test(flavor = "multi_thread")]
async fn set_password_update_and_delete_restart_or_stop_the_task() {
    let env = Env::get();
    let user = common::create_user(env, "sched");
    common::drop_messages(env, &user, 2);
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), &config(env));
    let conn = bus(&d).await;
    let mgr = ManagerProxy::new(&conn).await.unwrap();
    let s = imap_settings(&user, &user.name, "wrong-Pw-4711", 1);
    let path = mgr.create_account(s).await.unwrap();
    let acc = account(&conn, &path).await;

    // A wrong password: the task fails and says why, without the password.
    eventually("the error state", Duration::from_secs(10), || async {
        acc.state().await.unwrap() == "error"
    })
    .await;
    let err = acc.last_error().await.unwrap();
    assert!(err.contains("login rejected"), "{err}");
    assert!(
        !err.contains("wrong-Pw-4711"),
        "no password in LastError: {err}"
    );

    // SetPassword restarts the task, which fetches at once.
    acc.set_password(&user.password).await.unwrap();
    eventually("the first fetch", Duration::from_secs(5), || async {
        inbox_count(&conn, &path).await == 2
    })
    .await;
    eventually("the idle state", Duration::from_secs(5), || async {
        acc.state().await.unwrap() == "idle" && acc.last_error().await.unwrap().is_empty()
    })
    .await;
    assert!(acc.last_fetch_at().await.unwrap() > 0);

    // New mail arrives without FetchNow (IDLE or the 1 s poll).
    common::drop_messages(env, &user, 1);
    eventually("the new mail", Duration::from_secs(10), || async {
        inbox_count(&conn, &path).await == 3
    })
    .await;

    // Update to a closed port: the restarted task fails quickly.
    let port = common::scripted::closed_port();
    let mut change = HashMap::new();
    change.insert("port", Variant::from(port));
    acc.update(change).await.unwrap();
    eventually("the connection error", Duration::from_secs(5), || async {
        acc.last_error().await.unwrap().contains("refused")
    })
    .await;

    // Delete stops the task: the daemon logs no more fetches for it.
    acc.delete().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log_before = d.log();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log_after = d.log();
    let new_lines = &log_after[log_before.len()..];
    assert!(
        !new_lines.contains("account_id=a1"),
        "the deleted account's task still runs:\n{new_lines}"
    );
    assert!(d.stop().success());
    let log = d.log();
    assert!(log.contains("TRACE"), "the log ran at trace level");
    assert!(
        !log.contains("wrong-Pw-4711") && !log.contains(&user.password),
        "a password reached the log"
    );
}

/// Connection reuse: an IMAP account with a poll interval fetches, then
/// idles on the same session; FetchNow ends the IDLE (DONE) and fetches on
/// it, and mail delivered while idling is still fetched — all with the one
/// login of the first fetch.
#[tokio::test(flavor = "multi_thread")]
async fn fetch_now_on_an_idling_imap_account_uses_its_one_session() {
    let env = Env::get();
    let user = common::create_user(env, "reuse");
    common::drop_messages(env, &user, 1);
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), &config(env));
    let conn = bus(&d).await;
    let mgr = ManagerProxy::new(&conn).await.unwrap();
    let s = imap_settings(&user, &user.address, &user.password, 300);
    let path = mgr.create_account(s).await.unwrap();
    let acc = account(&conn, &path).await;
    eventually("the first fetch", Duration::from_secs(10), || async {
        inbox_count(&conn, &path).await == 1
    })
    .await;

    // FetchNow on the idling account, several times: nothing new each time.
    for _ in 0..3 {
        assert_eq!(acc.fetch_now().await.unwrap(), 0);
    }
    // Mail delivered while idling arrives without FetchNow (IDLE news)...
    common::drop_messages(env, &user, 1);
    eventually(
        "the mail delivered while idling",
        Duration::from_secs(10),
        || async { inbox_count(&conn, &path).await == 2 },
    )
    .await;
    // ... and a FetchNow right after a delivery still finds it.
    common::drop_messages(env, &user, 1);
    let got = acc.fetch_now().await.unwrap();
    eventually(
        "the mail delivered before FetchNow",
        Duration::from_secs(10),
        || async { inbox_count(&conn, &path).await == 3 },
    )
    .await;
    assert!(got <= 1, "{got}");
    assert_eq!(acc.fetch_now().await.unwrap(), 0);
    assert_eq!(acc.state().await.unwrap(), "idle");
    assert_eq!(
        common::dovecot::logins(env, &user.address),
        1,
        "every fetch and IDLE ran on the session of the first login"
    );
    assert!(d.stop().success());
}
