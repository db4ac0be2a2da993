//! The account API over a real dbus-daemon: create, read back, update,
//! passwords, delete, restart, and bad input that must change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::time::Duration;

use postfach::dbus::proxy::{AccountProxy, ManagerProxy};
use zbus::{Connection, OwnedObjectPath, Variant};

use common::api::bus;
use common::api::same;
use common::api::snapshot;
use common::{Daemon, Settings};

fn imap_settings(address: &str) -> HashMap<&'static str, Variant<'static>> {
    Settings::new()
        .with("kind", "imap")
        .with("host", "127.0.0.1")
        .with("address", address)
        .with("tenant", "mandant1")
        .with("encryption", "starttls")
        .with("poll_interval", 0u32)
        .dbus()
}

async fn account<'a>(conn: &'a Connection, path: &OwnedObjectPath) -> AccountProxy<'a> {
    AccountProxy::builder(conn)
        .path(path.clone())
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap()
}

fn error_name(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, _, _) => name.to_string(),
        zbus::Error::FDO(e) => zbus::DBusError::name(e.as_ref()).to_string(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn create_read_update_delete_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), "");
    let conn = bus(&daemon).await;
    let mgr = ManagerProxy::builder(&conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();
    let installation = mgr.installation_id().await.unwrap();
    assert_eq!(installation.len(), 32);

    let path = mgr
        .create_account(imap_settings("info@example.test"))
        .await
        .unwrap();
    let acc = account(&conn, &path).await;
    assert_eq!(acc.kind().await.unwrap(), "imap");
    assert_eq!(
        acc.port().await.unwrap(),
        143,
        "starttls IMAP defaults to 143"
    );
    assert_eq!(acc.username().await.unwrap(), "info@example.test");
    assert_eq!(acc.tenant().await.unwrap(), "mandant1");
    assert!(!acc.has_password().await.unwrap());
    acc.set_password("s3cret-pw").await.unwrap();
    assert!(acc.has_password().await.unwrap());

    let mut changes = HashMap::new();
    changes.insert("encryption", Variant::from("tls"));
    changes.insert("private_owner", Variant::from("ab"));
    acc.update(changes).await.unwrap();
    assert_eq!(
        acc.port().await.unwrap(),
        993,
        "port follows the encryption when not given"
    );
    assert_eq!(acc.private_owner().await.unwrap(), "ab");

    // Office 365 kinds get Microsoft's endpoints.
    let mut o365 = HashMap::new();
    o365.insert("kind", Variant::from("imap-office365"));
    o365.insert("address", Variant::from("crm@contoso.example"));
    let p365 = mgr.create_account(o365).await.unwrap();
    let a365 = account(&conn, &p365).await;
    assert_eq!(a365.host().await.unwrap(), "outlook.office365.com");
    assert_eq!(a365.port().await.unwrap(), 993);
    assert_eq!(a365.smtp_host().await.unwrap(), "smtp.office365.com");
    assert_eq!(a365.smtp_port().await.unwrap(), 587);

    let before = snapshot(&conn).await;
    let status = daemon.stop();
    assert!(status.success(), "clean stop: {status:?}");

    // The password is not in the store file in clear.
    let raw = std::fs::read(dir.path().join("postfach.redb")).unwrap();
    assert!(!raw.windows(9).any(|w| w == b"s3cret-pw"));

    let mut daemon = Daemon::start(dir.path(), "");
    let conn = bus(&daemon).await;
    same(
        &snapshot(&conn).await,
        &before,
        "accounts survive a restart",
    );
    let mgr = ManagerProxy::builder(&conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();
    assert_eq!(mgr.installation_id().await.unwrap(), installation);
    let acc = account(&conn, &path).await;
    assert!(acc.has_password().await.unwrap());

    acc.delete().await.unwrap();
    let err = acc
        .update(imap_settings("x@example.test"))
        .await
        .unwrap_err();
    let name = error_name(&err);
    assert!(
        name == "org.postfach.Postfach1.Error.NotFound"
            || name == "org.freedesktop.DBus.Error.UnknownObject",
        "{name}"
    );
    // And the object itself goes: no longer managed, no longer served
    // (introspection lists only the objects the bus connection serves).
    let (parent, node) = path.as_str().rsplit_once('/').unwrap();
    let (parent, node) = (parent.to_string(), format!("<node name=\"{node}\""));
    assert!(!snapshot(&conn).await.contains(path.as_str()));
    common::eventually(
        "the deleted account unpublished",
        Duration::from_secs(10),
        || {
            let (conn, parent, node) = (conn.clone(), parent.clone(), node.clone());
            async move {
                let xml = zbus::fdo::IntrospectableProxy::builder(&conn)
                    .destination("org.postfach.Postfach1")
                    .path(parent)
                    .build()
                    .await
                    .unwrap()
                    .introspect()
                    .await
                    .unwrap();
                !xml.contains(&node)
            }
        },
    )
    .await;
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn second_daemon_on_the_same_state_dir_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Daemon::start(dir.path(), "");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postfachd"))
        .args(["--session", "--state-dir"])
        .arg(dir.path())
        .env("DBUS_SESSION_BUS_ADDRESS", first.bus().address())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("another postfachd"), "{stderr}");
    assert!(
        first.bus().has_owner("org.postfach.Postfach1"),
        "the first one still serves"
    );
    assert!(first.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_store_stops_the_start_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join("postfach.redb"), &garbage).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postfachd"))
        .args(["--session", "--state-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("postfach.redb"), "names the file: {stderr}");
    assert_eq!(
        std::fs::read(dir.path().join("postfach.redb")).unwrap(),
        garbage
    );
}
