//! SyncFolders on a server whose only Trash is `INBOX.Trash` and that has
//! no SPECIAL-USE (Courier, tests/common/scripted/courier_folders.rs):
//! an unset Trash setting gets it, a `Trash` the server does not have is
//! replaced by it (`Papierkorb` by `INBOX.Papierkorb`), while a listed
//! choice or one without a namesake in the list stays.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use zbus::Variant;

use common::scripted::courier_folders::CourierFolders;
use common::{fetch, scripted, Daemon};

/// Regression: only an RFC 6154 `\Trash` was proposed, so a Courier
/// account kept an empty or missing Trash and every delete failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_trash_is_proposed_where_the_server_marks_none() {
    let server = CourierFolders::start(&["INBOX.Sent", "INBOX.Trash", "INBOX.Papierkorb"]);
    let state = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(state.path(), "[fetch]\nread_timeout = 20\n");
    let conn = fetch::bus(&daemon).await;
    let mut found = Vec::new();
    for trash in ["", "Trash", "Papierkorb", "INBOX.Sent", "Gelöscht"] {
        let mut s = scripted::settings("imap", server.port, false);
        s.insert("poll_interval", Variant::from(0u32));
        if !trash.is_empty() {
            s.insert("trash_folder", Variant::from(trash));
        }
        let path = fetch::create(&conn, s).await;
        let acc = fetch::account(&conn, &path).await;
        let mut folders = acc
            .sync_folders()
            .await
            .unwrap_or_else(|e| panic!("SyncFolders: {e}\n{}", daemon.log()));
        folders.sort();
        assert_eq!(
            folders,
            ["INBOX", "INBOX.Papierkorb", "INBOX.Sent", "INBOX.Trash"]
        );
        found.push(acc.trash_folder().await.unwrap());
    }
    assert_eq!(
        found,
        [
            "INBOX.Trash",
            "INBOX.Trash",
            "INBOX.Papierkorb",
            "INBOX.Sent",
            "Gelöscht"
        ]
    );
}
