//! `PropertiesChanged` for the Account interface comes from one table
//! (src/dbus/props.rs): every property that a call or a fetch changes is
//! announced — public ones (`State`, `LastFetchAt`, `Progress`) with their
//! value, every other one (the folder list and folder settings included)
//! by name only.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt;
use zbus::fdo::{PropertiesChangedStream, PropertiesProxy};
use zbus::{Connection, OwnedObjectPath, Variant};

use common::{Daemon, Env, Settings};
use postfach::dbus::proxy::{AccountProxy, ManagerProxy};

const PUBLIC: [&str; 3] = ["State", "LastFetchAt", "Progress"];

/// What the next PropertiesChanged signals said, until `want` was named
/// (≤ 10 s): every property named with a value, and every one named
/// without.
async fn until_named(
    stream: &mut PropertiesChangedStream,
    want: &str,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut values, mut names) = (BTreeSet::new(), BTreeSet::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !values.contains(want) && !names.contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        let sig = tokio::time::timeout(left, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no PropertiesChanged for {want}; saw {values:?} {names:?}"))
            .unwrap();
        let args = sig.args().unwrap();
        assert_eq!(
            args.interface_name.as_str(),
            "org.postfach.Postfach1.Account"
        );
        for (k, v) in args.changed_properties.iter() {
            assert!(PUBLIC.contains(k), "{k} = {v:?} went to every listener");
            values.insert(k.to_string());
        }
        names.extend(args.invalidated_properties.iter().map(|s| s.to_string()));
    }
    (values, names)
}

async fn watch(conn: &Connection, path: &OwnedObjectPath) -> PropertiesChangedStream {
    PropertiesProxy::builder(conn)
        .destination("org.postfach.Postfach1")
        .path(path.clone())
        .build()
        .await
        .unwrap()
        .receive_properties_changed()
        .await
        .unwrap()
}

async fn account<'a>(conn: &'a Connection, path: &OwnedObjectPath) -> AccountProxy<'a> {
    AccountProxy::builder(conn)
        .path(path.clone())
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_property_change_is_signalled() {
    let env = Env::get();
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[tls]\nextra_ca_file = \"{}\"\n", env.ca.display());
    let d = Daemon::start(dir.path(), &config);
    let conn = common::api::bus(&d).await;
    let mgr = ManagerProxy::new(&conn).await.unwrap();
    let closed_port = common::scripted::closed_port();
    let s = Settings::on_loopback("imap", closed_port, "sig@example.test").dbus();
    let path = mgr.create_account(s).await.unwrap();
    let acc = account(&conn, &path).await;
    let mut changes = watch(&conn, &path).await;

    // Every settings key, one Update each, and the property it shows in.
    let updates: Vec<(&str, Variant<'_>, &str)> = vec![
        ("tenant", "t2".into(), "Tenant"),
        ("name", "Zweites Konto".into(), "Name"),
        ("address", "sig2@example.test".into(), "Address"),
        ("username", "sig-login".into(), "Username"),
        ("host", "localhost".into(), "Host"),
        ("port", (closed_port.wrapping_add(1)).into(), "Port"),
        ("encryption", "starttls".into(), "Encryption"),
        ("private_owner", "alice".into(), "PrivateOwner"),
        ("delete_on_server", true.into(), "DeleteOnServer"),
        ("smtp_host", "smtp.example.test".into(), "SmtpHost"),
        ("smtp_port", 2525u16.into(), "SmtpPort"),
        ("smtp_encryption", "none".into(), "SmtpEncryption"),
        ("smtp_login", false.into(), "SmtpLogin"),
        ("smtp_username", "smtp-login".into(), "SmtpUsername"),
        ("poll_interval", 86_400u32.into(), "PollInterval"),
        ("password", "pw-1".into(), "HasPassword"),
    ];
    for (key, value, prop) in updates {
        let mut change = HashMap::new();
        change.insert(key, value);
        acc.update(change).await.unwrap();
        let (_, names) = until_named(&mut changes, prop).await;
        assert!(names.contains(prop), "{key}: {names:?}");
    }
    // A password makes a plain account authorized.
    assert!(acc.authorized().await.unwrap());

    // A kind without sign-in yet: no longer authorized.
    let mut change = HashMap::new();
    change.insert("kind", Variant::from("imap-office365"));
    acc.update(change).await.unwrap();
    let (_, names) = until_named(&mut changes, "Authorized").await;
    assert!(names.contains("Kind"), "one signal names both: {names:?}");
    assert!(!acc.authorized().await.unwrap());
    // SetPassword on an account without one: HasPassword and Authorized.
    let s = Settings::on_loopback("imap", closed_port, "sig3@example.test").dbus();
    let other = mgr.create_account(s).await.unwrap();
    let other_acc = account(&conn, &other).await;
    let mut other_changes = watch(&conn, &other).await;
    other_acc.set_password("pw-2").await.unwrap();
    let (_, names) = until_named(&mut other_changes, "Authorized").await;
    assert!(names.contains("HasPassword"), "{names:?}");

    // A failing fetch: State with its value, LastError by name.
    other_acc
        .fetch_now()
        .await
        .expect_err("nothing listens there");
    let (values, names) = until_named(&mut other_changes, "LastError").await;
    assert!(values.contains("State"), "{values:?}");
    assert!(names.contains("LastError"));
    assert_eq!(other_acc.state().await.unwrap(), "error");

    // A good fetch: Progress and LastFetchAt with their values.
    let user = common::create_user(env, "sigp");
    common::drop_messages(env, &user, 2);
    let mut change = HashMap::new();
    change.insert("port", Variant::from(env.imaps_port));
    change.insert("encryption", Variant::from("tls"));
    change.insert("address", Variant::from(user.address.clone()));
    change.insert("username", Variant::from(user.address.clone()));
    change.insert("password", Variant::from(user.password.clone()));
    other_acc.update(change).await.unwrap();
    assert_eq!(other_acc.fetch_now().await.unwrap(), 2);
    let (values, _) = until_named(&mut other_changes, "LastFetchAt").await;
    let (more, _) = if values.contains("Progress") {
        (values, BTreeSet::new())
    } else {
        until_named(&mut other_changes, "Progress").await
    };
    assert!(more.contains("Progress"));
    assert_eq!(other_acc.progress().await.unwrap(), (2, 2));

    // The folder sync names what it changed, without the folder names.
    let listed = other_acc.sync_folders().await.unwrap();
    assert!(listed.iter().any(|f| f == "INBOX"), "{listed:?}");
    let (_, names) = until_named(&mut other_changes, "FoldersSyncedAt").await;
    assert!(names.contains("Folders"), "{names:?}");
    assert_eq!(other_acc.folders().await.unwrap(), listed);
    // A folder setting from that list: its property by name.
    for (key, prop) in [
        ("trash_folder", "TrashFolder"),
        ("sent_folder", "SentFolder"),
        ("drafts_folder", "DraftsFolder"),
    ] {
        let mut change = HashMap::new();
        change.insert(key, Variant::from("INBOX"));
        other_acc.update(change).await.unwrap();
        let (_, names) = until_named(&mut other_changes, prop).await;
        assert!(names.contains(prop), "{key}: {names:?}");
    }
}
