//! `imap::Connection`'s folder work against the real Dovecot: moving INBOX
//! mail into a folder (MOVE, which Dovecot offers; the other two plans are
//! tested against scripted servers in src/imap/folders/tests.rs), APPEND
//! with flags, LIST, and a missing folder — all on one logged-in
//! connection, the way an account's task does them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Env, MailUser, Settings};
use postfach::error::Error;
use postfach::imap::{Connection, Moved, Plan};
use postfach::net::{Timeouts, TlsContext};
use postfach::store::Store;

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(10),
        read: Duration::from_secs(30),
        ..Timeouts::default()
    }
}

async fn open(store: &Store, user: &MailUser) -> (postfach::account::Account, Connection) {
    let account = Settings::on_dovecot("imap", user)
        .with("username", &user.name)
        .create_in(store);
    let tls = TlsContext::new(Some(&Env::get().ca)).expect("tls context");
    let conn = Connection::open(&account, &user.password, &tls, &timeouts())
        .await
        .expect("login");
    (account, conn)
}

fn count(env: &Env, user: &MailUser, folder: &str) -> u64 {
    let out = common::doveadm(
        env,
        &["mailbox", "status", "-u", &user.address, "messages", folder],
    );
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("messages="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected doveadm output: {out}"))
}

#[tokio::test]
async fn move_append_and_list_on_one_connection() {
    let env = Env::get();
    let user = common::create_user(env, "conn");
    common::drop_messages(env, &user, 3);
    for folder in ["Trash", "Sent"] {
        common::doveadm(env, &["mailbox", "create", "-u", &user.address, folder]);
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let (account, mut conn) = open(&store, &user).await;
    let report = conn.fetch(&account, &store, &|_, _| {}).await.unwrap();
    assert_eq!(report.new_ids.len(), 3);

    // The first two stored mails, located the way DeleteMessage does it.
    let mut located = Vec::new();
    for id in &report.new_ids[..2] {
        let place = postfach::imap::syncstate::locate(&store, &account.id, *id)
            .unwrap()
            .expect("a UID under the current UIDVALIDITY");
        located.push(place);
    }
    let validity = located[0].0;
    let uids: Vec<u32> = located.iter().map(|(_, uid)| *uid).collect();
    let moved = conn.move_to("Trash", validity, &uids).await.unwrap();
    assert_eq!(moved, Moved::Moved(Plan::Move));
    assert_eq!(count(env, &user, "INBOX"), 1);
    assert_eq!(count(env, &user, "Trash"), 2);
    // A stale UIDVALIDITY touches nothing.
    let stale = conn.move_to("Trash", validity.wrapping_add(1), &uids).await;
    assert_eq!(stale.unwrap(), Moved::Stale);
    assert_eq!(count(env, &user, "Trash"), 2);

    let sent = b"From: a@example.test\r\nSubject: sent copy\r\n\r\nhello\r\n";
    conn.append("Sent", &["\\Seen"], sent).await.unwrap();
    assert_eq!(count(env, &user, "Sent"), 1);
    let flags = common::doveadm(
        env,
        &["fetch", "-u", &user.address, "flags", "mailbox", "Sent"],
    );
    assert!(flags.contains("\\Seen"), "{flags}");
    let stored = common::doveadm(
        env,
        &["fetch", "-u", &user.address, "text", "mailbox", "Sent"],
    );
    assert!(stored.contains("Subject: sent copy"), "{stored}");

    let missing = conn.append("Nowhere", &[], sent).await.unwrap_err();
    assert!(
        matches!(&missing, Error::FolderUnknown(m) if m.contains("Nowhere")),
        "{missing:?}"
    );
    assert!(
        conn.usable(),
        "a refused APPEND leaves the connection usable"
    );

    let folders = conn.list_folders().await.unwrap();
    let names: Vec<&str> = folders.iter().map(|f| f.name.as_str()).collect();
    for want in ["INBOX", "Trash", "Sent"] {
        assert!(names.contains(&want), "{names:?}");
    }
    assert!(
        !names.contains(&"Nowhere"),
        "no folder was created: {names:?}"
    );
    assert!(folders.iter().all(|f| f.selectable), "{folders:?}");
}

#[tokio::test]
async fn moving_into_a_missing_folder_is_folder_unknown_and_keeps_the_mail() {
    let env = Env::get();
    let user = common::create_user(env, "connmiss");
    common::drop_messages(env, &user, 1);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let (account, mut conn) = open(&store, &user).await;
    let report = conn.fetch(&account, &store, &|_, _| {}).await.unwrap();
    let (validity, uid) = postfach::imap::syncstate::locate(&store, &account.id, report.new_ids[0])
        .unwrap()
        .unwrap();
    let err = conn.move_to("Nowhere", validity, &[uid]).await.unwrap_err();
    assert!(
        matches!(&err, Error::FolderUnknown(m) if m.contains("Nowhere")),
        "{err:?}"
    );
    assert_eq!(count(env, &user, "INBOX"), 1, "the mail stays");
    assert!(conn.usable(), "a refused MOVE leaves the connection usable");
    let again = conn.fetch(&account, &store, &|_, _| {}).await.unwrap();
    assert!(again.new_ids.is_empty());
}
