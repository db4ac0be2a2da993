//! The three ways of moving mail, chosen by the server's capabilities, and
//! APPEND's literal, against scripted servers (Dovecot offers MOVE and
//! UIDPLUS, so only the first plan can be seen there; tests/imap_connection
//! covers that one against the real server).

use super::*;
use crate::imap::testing::{connection, scripted_server as server};

const LOGIN: (&str, &str) = ("LOGIN", "{tag} OK in\r\n");
const SELECT: (&str, &str) = (
    "SELECT \"INBOX\"",
    "* 3 EXISTS\r\n* OK [UIDVALIDITY 5] v\r\n* OK [UIDNEXT 9] n\r\n{tag} OK [READ-WRITE] selected\r\n",
);

fn caps(list: &'static str) -> (&'static str, &'static str) {
    match list {
        "MOVE" => (
            "CAPABILITY",
            "* CAPABILITY IMAP4rev1 UIDPLUS MOVE\r\n{tag} OK caps\r\n",
        ),
        "UIDPLUS" => (
            "CAPABILITY",
            "* CAPABILITY IMAP4rev1 UIDPLUS\r\n{tag} OK caps\r\n",
        ),
        _ => ("CAPABILITY", "* CAPABILITY IMAP4rev1\r\n{tag} OK caps\r\n"),
    }
}

#[test]
fn plan_prefers_move_then_uidplus() {
    assert_eq!(Plan::choose(true, true), Plan::Move);
    assert_eq!(Plan::choose(true, false), Plan::Move);
    assert_eq!(Plan::choose(false, true), Plan::CopyAndExpunge);
    assert_eq!(Plan::choose(false, false), Plan::CopyOnly);
    assert_eq!(Plan::for_caps(&Caps::default()), Plan::CopyOnly);
}

#[tokio::test]
async fn move_uses_uid_move_when_offered() {
    let (port, script) = server(vec![
        LOGIN,
        caps("MOVE"),
        SELECT,
        (
            "UID MOVE 7:8 \"TRASH\"",
            "* 1 EXPUNGE\r\n* 1 EXPUNGE\r\n{tag} OK moved\r\n",
        ),
    ])
    .await;
    let mut conn = connection(port).await;
    let moved = conn.move_to("Trash", 5, &[8, 7]).await.unwrap();
    assert_eq!(moved, Moved::Moved(Plan::Move));
    assert!(conn.usable());
    script.await.expect("exactly the scripted commands");
}

#[tokio::test]
async fn without_move_it_copies_then_expunges_exactly_those_uids() {
    let (port, script) = server(vec![
        LOGIN,
        caps("UIDPLUS"),
        SELECT,
        ("UID COPY 7 \"TRASH\"", "{tag} OK copied\r\n"),
        (
            "UID STORE 7 +FLAGS.SILENT (\\DELETED)",
            "{tag} OK stored\r\n",
        ),
        ("UID EXPUNGE 7", "* 1 EXPUNGE\r\n{tag} OK expunged\r\n"),
    ])
    .await;
    let mut conn = connection(port).await;
    let moved = conn.move_to("Trash", 5, &[7]).await.unwrap();
    assert_eq!(moved, Moved::Moved(Plan::CopyAndExpunge));
    script.await.expect("exactly the scripted commands");
}

#[tokio::test]
async fn without_uidplus_it_only_copies() {
    // The script ends after COPY: any STORE or EXPUNGE would meet a closed
    // connection and fail the move.
    let (port, script) = server(vec![
        LOGIN,
        caps(""),
        SELECT,
        ("UID COPY 7 \"TRASH\"", "{tag} OK copied\r\n"),
    ])
    .await;
    let mut conn = connection(port).await;
    assert_eq!(conn.move_to("Trash", 5, &[7]).await.unwrap(), Moved::Copied);
    script.await.expect("exactly the scripted commands");
}

#[tokio::test]
async fn another_uidvalidity_touches_nothing() {
    let (port, script) = server(vec![LOGIN, caps("MOVE"), SELECT]).await;
    let mut conn = connection(port).await;
    assert_eq!(conn.move_to("Trash", 4, &[7]).await.unwrap(), Moved::Stale);
    script.await.expect("exactly the scripted commands");
}

#[tokio::test]
async fn a_missing_folder_is_folder_unknown() {
    let (port, script) = server(vec![
        LOGIN,
        caps("MOVE"),
        SELECT,
        (
            "UID MOVE 7 \"TRASH\"",
            "{tag} NO [TRYCREATE] Mailbox doesn't exist: Trash\r\n",
        ),
    ])
    .await;
    let mut conn = connection(port).await;
    let err = conn.move_to("Trash", 5, &[7]).await.unwrap_err();
    assert!(
        matches!(&err, Error::FolderUnknown(m) if m.contains("Trash")),
        "{err:?}"
    );
    script.await.expect("exactly the scripted commands");
}

#[tokio::test]
async fn append_sends_the_literal_after_the_continuation() {
    let (port, script) = server(vec![
        LOGIN,
        ("APPEND \"SENT\" (\\SEEN) {5}", "+ go ahead\r\n"),
        // The literal and its CRLF: the reply gets the APPEND's tag.
        ("HELLO", "{tag} OK [APPENDUID 5 3] appended\r\n"),
        (
            "APPEND \"NOPE\" () {5}",
            "{tag} NO [TRYCREATE] Mailbox doesn't exist: Nope\r\n",
        ),
    ])
    .await;
    let mut conn = connection(port).await;
    conn.append("Sent", &["\\Seen"], b"hello").await.unwrap();
    let err = conn.append("Nope", &[], b"hello").await.unwrap_err();
    assert!(
        matches!(&err, Error::FolderUnknown(m) if m.contains("Nope")),
        "{err:?}"
    );
    script.await.expect("exactly the scripted commands");
}

#[test]
fn folder_names_are_quoted_or_refused() {
    assert_eq!(quote("Sent").unwrap(), "\"Sent\"");
    assert_eq!(quote("a\"b\\c").unwrap(), "\"a\\\"b\\\\c\"");
    assert!(quote("a\r\nb").is_err());
    assert!(quote("a\0b").is_err());
    assert!(quote("").is_err());
    assert_eq!(quote("Entwürfe").unwrap(), "\"Entw&APw-rfe\"");
}

/// Cyrus and Courier answer a folder outside their `INBOX.` namespace
/// without a response code.
#[tokio::test]
async fn a_plain_mailbox_does_not_exist_is_folder_unknown() {
    let (port, script) = server(vec![
        LOGIN,
        caps("MOVE"),
        SELECT,
        (
            "UID MOVE 7 \"TRASH\"",
            "{tag} NO Mailbox does not exist\r\n",
        ),
    ])
    .await;
    let mut conn = connection(port).await;
    let err = conn.move_to("Trash", 5, &[7]).await.unwrap_err();
    assert!(matches!(&err, Error::FolderUnknown(_)), "{err:?}");
    script.await.expect("exactly the scripted commands");
}
