//! Account.SyncFolders against the run's Dovecot, whose Drafts, Sent and
//! Trash folders carry RFC 6154 special use (tests/env/dovecot.conf) and
//! whose other folders do not; and the folder settings rules
//! (FolderUnknown before a sync lists the folder, InvalidArgument on POP3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use zbus::{OwnedObjectPath, Variant};

use common::fetch as fetchkit;
use common::{create_user, doveadm, Env, MailUser};
use fetchkit::{error_name, Proto};

const FOLDER_UNKNOWN: &str = "org.postfach.Postfach1.Error.FolderUnknown";
const INVALID: &str = "org.postfach.Postfach1.Error.InvalidArgument";

fn mailboxes(env: &Env, user: &MailUser, names: &[&str]) {
    for n in names {
        doveadm(env, &["mailbox", "create", "-u", &user.address, n]);
    }
}

async fn imap_account(conn: &zbus::Connection, user: &MailUser) -> OwnedObjectPath {
    fetchkit::account_for(conn, Proto::Imap, user, false, 0).await
}

fn one(key: &'static str, value: &str) -> HashMap<&'static str, Variant<'static>> {
    let mut m = HashMap::new();
    m.insert(key, Variant::from(value.to_string()));
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_use_folders_are_listed_and_proposed() {
    let env = Env::get();
    let user = create_user(env, "fsu");
    mailboxes(env, &user, &["Drafts", "Sent", "Trash", "Archiv"]);
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let path = imap_account(&conn, &user).await;
    let acc = fetchkit::account(&conn, &path).await;
    assert_eq!(acc.folders_synced_at().await.unwrap(), 0);

    let mut folders = acc.sync_folders().await.unwrap();
    folders.sort();
    assert_eq!(folders, ["Archiv", "Drafts", "INBOX", "Sent", "Trash"]);
    let mut shown = acc.folders().await.unwrap();
    shown.sort();
    assert_eq!(shown, folders, "Folders shows the sync");
    assert!(acc.folders_synced_at().await.unwrap() > 0);
    assert_eq!(acc.drafts_folder().await.unwrap(), "Drafts");
    assert_eq!(acc.sent_folder().await.unwrap(), "Sent");
    assert_eq!(acc.trash_folder().await.unwrap(), "Trash");
    assert!(
        !acc.save_sent_copy().await.unwrap(),
        "stays the admin's choice"
    );

    // A listed folder may be set; an admin's choice survives the next sync.
    acc.update(one("trash_folder", "Archiv")).await.unwrap();
    acc.sync_folders().await.unwrap();
    assert_eq!(acc.trash_folder().await.unwrap(), "Archiv");
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_without_special_use_propose_nothing_and_unknown_ones_are_refused() {
    let env = Env::get();
    let user = create_user(env, "fnsu");
    mailboxes(env, &user, &["Gesendet", "Papierkorb"]);
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let path = imap_account(&conn, &user).await;
    let acc = fetchkit::account(&conn, &path).await;

    // Never synchronized: every folder is unknown.
    let err = acc
        .update(one("sent_folder", "Gesendet"))
        .await
        .unwrap_err();
    assert_eq!(error_name(&err), FOLDER_UNKNOWN, "{err}");
    assert!(
        err.to_string().contains("synchronize the folders first"),
        "{err}"
    );
    assert_eq!(acc.sent_folder().await.unwrap(), "", "nothing written");

    let mut folders = acc.sync_folders().await.unwrap();
    folders.sort();
    assert_eq!(folders, ["Gesendet", "INBOX", "Papierkorb"]);
    let set = (
        acc.drafts_folder().await.unwrap(),
        acc.sent_folder().await.unwrap(),
        acc.trash_folder().await.unwrap(),
    );
    assert_eq!(set, Default::default(), "no special use, no proposal");
    acc.update(one("sent_folder", "Gesendet")).await.unwrap();
    assert_eq!(acc.sent_folder().await.unwrap(), "Gesendet");
    let err = acc
        .update(one("drafts_folder", "Entwurf"))
        .await
        .unwrap_err();
    assert_eq!(error_name(&err), FOLDER_UNKNOWN, "{err}");
    assert!(err.to_string().contains("Entwurf"), "{err}");
    // Clearing is always allowed.
    acc.update(one("sent_folder", "")).await.unwrap();
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_accounts_have_no_folders() {
    let env = Env::get();
    let user = create_user(env, "fpop");
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let path = fetchkit::account_for(&conn, Proto::Pop3, &user, false, 0).await;
    let acc = fetchkit::account(&conn, &path).await;
    let err = acc.sync_folders().await.unwrap_err();
    assert_eq!(error_name(&err), INVALID, "{err}");
    let err = acc
        .update(one("drafts_folder", "Drafts"))
        .await
        .unwrap_err();
    assert_eq!(error_name(&err), INVALID, "{err}");
    assert!(err.to_string().contains("drafts_folder"), "{err}");
    drop(daemon);
}

/// Folder names outside ASCII (Exchange's German `Entwürfe` and
/// `Gelöschte Elemente`) are modified UTF-7 on the wire (RFC 3501
/// §5.1.3): listed readable, set readable, and found by the commands that
/// use them — the Trash move of DeleteMessage and SaveDraft's APPEND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_folders_are_readable_and_used_as_the_server_names_them() {
    let env = Env::get();
    let user = create_user(env, "fu7");
    mailboxes(env, &user, &["Entwürfe", "Gelöschte Elemente", "A & B"]);
    common::drop_messages(env, &user, 1);
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let path = imap_account(&conn, &user).await;
    let acc = fetchkit::account(&conn, &path).await;
    let mut folders = acc.sync_folders().await.unwrap();
    folders.sort();
    assert_eq!(
        folders,
        ["A & B", "Entwürfe", "Gelöschte Elemente", "INBOX"],
        "decoded from modified UTF-7"
    );
    acc.update(one("trash_folder", "Gelöschte Elemente"))
        .await
        .unwrap();
    acc.update(one("drafts_folder", "Entwürfe")).await.unwrap();

    assert_eq!(acc.fetch_now().await.unwrap(), 1);
    let mb = fetchkit::mailbox(&conn).await;
    let (page, _) = mb.list_messages("", HashMap::new(), 0, 10).await.unwrap();
    let id: u64 = fetchkit::get(&page[0], "id");
    mb.delete_message("", id).await.unwrap();
    let count = |folder: &str| {
        doveadm(
            env,
            &["mailbox", "status", "-u", &user.address, "messages", folder],
        )
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string()
    };
    assert_eq!(
        count("Gelöschte Elemente"),
        "messages=1",
        "moved to the Trash"
    );
    assert_eq!(count("INBOX"), "messages=0");

    let mut draft = HashMap::new();
    draft.insert("subject", Variant::from("Entwurf".to_string()));
    draft.insert("text", Variant::from("Hallo".to_string()));
    draft.insert("signature", Variant::from(false));
    mb.save_draft("", &path, draft).await.unwrap();
    assert_eq!(
        count("Entwürfe"),
        "messages=1",
        "appended to the Drafts folder"
    );
    drop(daemon);
}
