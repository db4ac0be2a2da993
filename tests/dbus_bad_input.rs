//! At least 25 bad D-Bus calls: each gets its typed error and changes
//! nothing — neither what the daemon shows nor, after a restart, what the
//! store holds.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use postfach::dbus::proxy::{AccountProxy, ManagerProxy};
use zbus::Variant;

use common::api::bus;
use common::api::error_parts;
use common::api::same;
use common::api::snapshot;
use common::Daemon;

type Settings = Vec<(&'static str, Variant<'static>)>;

fn good() -> Settings {
    vec![
        ("kind", Variant::from("imap")),
        ("host", Variant::from("127.0.0.1")),
        ("address", Variant::from("box@example.test")),
        ("poll_interval", Variant::from(0u32)),
    ]
}

/// `good()` with `key` replaced (or added), or removed when `value` is None.
fn with(key: &'static str, value: Option<Variant<'static>>) -> Settings {
    let mut s: Settings = good().into_iter().filter(|(k, _)| *k != key).collect();
    if let Some(v) = value {
        s.push((key, v));
    }
    s
}

fn s(v: &str) -> Option<Variant<'static>> {
    Some(Variant::from(v.to_string()))
}

const INVALID: &str = "org.postfach.Postfach1.Error.InvalidArgument";

#[tokio::test(flavor = "multi_thread")]
async fn bad_calls_get_typed_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), "");
    let conn = bus(&daemon).await;
    let mgr = ManagerProxy::new(&conn).await.unwrap();

    // One good IMAP and one good POP3 account, to update badly.
    let imap_path = mgr
        .create_account(good().into_iter().collect())
        .await
        .unwrap();
    let pop_path = mgr
        .create_account(with("kind", s("pop3")).into_iter().collect())
        .await
        .unwrap();
    let imap = AccountProxy::builder(&conn)
        .path(imap_path.clone())
        .build()
        .await
        .unwrap();
    let pop3 = AccountProxy::builder(&conn)
        .path(pop_path.clone())
        .build()
        .await
        .unwrap();
    imap.set_password("right").await.unwrap();
    let before = snapshot(&conn).await;

    let mb = "x".repeat(1024 * 1024);
    // (case, settings, the key the error must name)
    let creates: Vec<(&str, Settings, &str)> = vec![
        ("unknown key", with("colour", s("blue")), "colour"),
        (
            "kind of wrong type",
            with("kind", Some(Variant::from(3u32))),
            "kind",
        ),
        ("unknown kind", with("kind", s("smtp")), "kind"),
        ("missing kind", with("kind", None), "kind"),
        ("missing host", with("host", None), "host"),
        ("missing address", with("address", None), "address"),
        ("empty host", with("host", s("")), "host"),
        ("host with a space", with("host", s("bad host")), "host"),
        ("1 MB host", with("host", s(&mb)), "host"),
        ("1 MB name", with("name", s(&mb)), "name"),
        ("empty tenant", with("tenant", s("")), "tenant"),
        ("port 0", with("port", Some(Variant::from(0u16))), "port"),
        (
            "port 70000 as u",
            with("port", Some(Variant::from(70000u32))),
            "port",
        ),
        ("port as string", with("port", s("993")), "port"),
        (
            "unknown encryption",
            with("encryption", s("ssl")),
            "encryption",
        ),
        (
            "smtp_encryption as bool",
            with("smtp_encryption", Some(Variant::from(true))),
            "smtp_encryption",
        ),
        (
            "address without @",
            with("address", s("not-an-address")),
            "address",
        ),
        (
            "address without domain",
            with("address", s("a@")),
            "address",
        ),
        (
            "bad private owner",
            with("private_owner", s("bad user!")),
            "private_owner",
        ),
        (
            "delete_on_server as string",
            with("delete_on_server", s("yes")),
            "delete_on_server",
        ),
        (
            "negative poll interval",
            with("poll_interval", Some(Variant::from(-5i32))),
            "poll_interval",
        ),
        (
            "poll interval over a week",
            with("poll_interval", Some(Variant::from(10_000_000u32))),
            "poll_interval",
        ),
        (
            "wildcard folder",
            with("trash_folder", s("Trash*")),
            "trash_folder",
        ),
        ("pin not a SHA-256", with("tls_pin", s("abc")), "tls_pin"),
        (
            "password with a line break",
            with("password", s("a\r\nb")),
            "password",
        ),
        ("1 MB password", with("password", s(&mb)), "password"),
        (
            "user name with a control char",
            with("username", s("a\u{1}b")),
            "username",
        ),
        (
            "save_sent_copy without sent_folder",
            with("save_sent_copy", Some(Variant::from(true))),
            "save_sent_copy",
        ),
    ];
    let mut count = 0;
    for (case, settings, key) in creates {
        let err = mgr
            .create_account(settings.into_iter().collect())
            .await
            .expect_err(case);
        let (name, msg) = error_parts(err);
        assert_eq!(name, INVALID, "{case}: {msg}");
        assert!(
            msg.starts_with(&format!("{key}:")),
            "{case}: message names the key {key}: {msg}"
        );
        assert!(
            msg.len() < 2048,
            "{case}: the error does not echo a 1 MB value"
        );
        count += 1;
    }

    // Updates that must fail and leave the account as it was.
    let updates: Vec<(&str, &AccountProxy<'_>, Settings, &str)> = vec![
        (
            "folder on a POP3 account",
            &pop3,
            vec![("drafts_folder", Variant::from("Drafts"))],
            "drafts_folder",
        ),
        ("empty update", &imap, vec![], "settings"),
        (
            "unknown key in update",
            &imap,
            vec![("hostname", Variant::from("a"))],
            "hostname",
        ),
        (
            "good key then bad key",
            &imap,
            vec![
                ("name", Variant::from("renamed")),
                ("port", Variant::from(0u16)),
            ],
            "port",
        ),
    ];
    for (case, acc, settings, key) in updates {
        let err = acc
            .update(settings.into_iter().collect())
            .await
            .expect_err(case);
        let (name, msg) = error_parts(err);
        assert_eq!(name, INVALID, "{case}: {msg}");
        assert!(msg.starts_with(&format!("{key}:")), "{case}: {msg}");
        count += 1;
    }
    let (name, _) = error_parts(imap.set_password(&mb).await.unwrap_err());
    assert_eq!(name, INVALID, "1 MB password");
    count += 1;

    // An unknown account path.
    let ghost = AccountProxy::builder(&conn)
        .path("/org/postfach/Postfach1/accounts/zz9")
        .build()
        .await
        .unwrap();
    let (name, _) = error_parts(
        ghost
            .update(good().into_iter().collect())
            .await
            .unwrap_err(),
    );
    assert_eq!(name, "org.freedesktop.DBus.Error.UnknownObject");
    count += 1;

    // A wrong argument type for the whole call (s instead of a{sv}).
    let err = conn
        .call_method(
            Some("org.postfach.Postfach1"),
            "/org/postfach/Postfach1",
            Some("org.postfach.Postfach1.Manager"),
            "CreateAccount",
            &("kind",),
        )
        .await
        .unwrap_err();
    let (name, _) = error_parts(err);
    assert_eq!(name, "org.freedesktop.DBus.Error.InvalidArgs");
    count += 1;

    // A non-admin caller: a real other Unix user on the same bus.
    let env = common::Env::get();
    let busctl = |args: &[&str]| {
        let mut cmd = std::process::Command::new("busctl");
        cmd.arg(format!("--address={}", daemon.bus().address()))
            .args(args);
        common::as_user(&env.unix_nobody, &cmd).output().unwrap()
    };
    let out = busctl(&[
        "call",
        "org.postfach.Postfach1",
        "/org/postfach/Postfach1",
        "org.postfach.Postfach1.Manager",
        "CreateAccount",
        "a{sv}",
        "3",
        "kind",
        "s",
        "imap",
        "host",
        "s",
        "127.0.0.1",
        "address",
        "s",
        "n@example.test",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not allowed") || stderr.contains("AccessDenied"),
        "{stderr}"
    );
    count += 1;
    let out = busctl(&[
        "call",
        "org.postfach.Postfach1",
        imap_path.as_str(),
        "org.postfach.Postfach1.Account",
        "Delete",
    ]);
    assert!(!out.status.success(), "a non-admin cannot delete");
    count += 1;

    // A deleted account.
    let doomed = mgr
        .create_account(
            vec![
                ("kind", Variant::from("pop3")),
                ("host", Variant::from("127.0.0.1")),
                ("address", Variant::from("d@example.test")),
            ]
            .into_iter()
            .collect(),
        )
        .await
        .unwrap();
    let before_doomed = snapshot(&conn).await;
    let d = AccountProxy::builder(&conn)
        .path(doomed)
        .build()
        .await
        .unwrap();
    d.delete().await.unwrap();
    let (name, _) = error_parts(d.delete().await.unwrap_err());
    assert!(
        name.ends_with("NotFound") || name.ends_with("UnknownObject"),
        "{name}"
    );
    count += 1;
    assert_ne!(before_doomed, snapshot(&conn).await);

    assert!(count >= 25, "{count} bad calls");
    same(
        &snapshot(&conn).await,
        &before,
        "no bad call changed anything",
    );
    assert!(daemon.stop().success());

    // And the store agrees after a restart.
    let mut daemon = Daemon::start(dir.path(), "");
    let conn = bus(&daemon).await;
    same(
        &snapshot(&conn).await,
        &before,
        "the store holds what it held",
    );
    assert!(daemon.stop().success());
}
