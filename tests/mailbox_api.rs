//! The Mailbox API over a real bus with mail fetched from the run's Dovecot
//! (ARCHITECTURE.md "The D-Bus API"): GetMessage bodies and attachments, assignment and read
//! state with MessagesChanged, DeleteMessage with and without a Trash folder
//! on the server, account deletion keeping exactly the assigned mail, and
//! stable paging with `until` while new mail arrives. Who may see what is
//! tested in visibility.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use common::fetch as fetchkit;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use postfach::dbus::proxy::{Dict, MailboxProxy, MessagesChangedStream};
use zbus::{OwnedObjectPath, Variant};

use common::{Env, MailUser};
use fetchkit::{error_name, get, Proto};

const NOT_FOUND: &str = "org.postfach.Postfach1.Error.NotFound";
const INVALID: &str = "org.postfach.Postfach1.Error.InvalidArgument";

/// A daemon with one IMAP account of a fresh mail user holding `mails`.
struct Setup {
    env: &'static Env,
    user: MailUser,
    _state: tempfile::TempDir,
    daemon: common::Daemon,
    conn: zbus::Connection,
    path: OwnedObjectPath,
}

async fn setup(
    prefix: &str,
    mails: &[Vec<u8>],
    extra: &[(&'static str, Variant<'static>)],
) -> Setup {
    let env = Env::get();
    let user = common::create_user(env, prefix);
    for m in mails {
        common::drop_raw(env, &user, m);
    }
    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let mut s = fetchkit::settings(Proto::Imap, &user, &user.password, false, 0);
    for (k, v) in extra {
        s.insert(k, v.clone());
    }
    let path = fetchkit::create(&conn, s).await;
    let n = fetchkit::account(&conn, &path)
        .await
        .fetch_now()
        .await
        .unwrap();
    assert_eq!(n as usize, mails.len(), "FetchNow stores every mail");
    Setup {
        env,
        user,
        _state: state,
        daemon,
        conn,
        path,
    }
}

fn simple(tag: &str, i: u32, date: &str) -> Vec<u8> {
    format!(
        "From: a@example.test\r\nTo: b@example.test\r\nSubject: {tag} {i}\r\n\
         Date: {date}\r\nMessage-ID: <{i}.{tag}@example.test>\r\n\r\nbody {i}\r\n"
    )
    .into_bytes()
}

/// id of the listed mail with this subject.
fn id_of(list: &[Dict], subject: &str) -> u64 {
    list.iter()
        .find(|m| get::<String>(m, "subject") == subject)
        .map(|m| get::<u64>(m, "id"))
        .unwrap_or_else(|| panic!("no mail {subject:?} listed"))
}

async fn next_changed(stream: &mut MessagesChangedStream) -> Vec<u64> {
    let sig = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("MessagesChanged within 5 s")
        .expect("signal stream open");
    let signature = sig.message().body().signature().to_string();
    assert!(matches!(signature.as_str(), "at" | "(at)"), "{signature}");
    sig.args().unwrap().ids
}

fn b64_lines(bytes: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    text.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned() + "\r\n")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_message_gives_decoded_bodies_and_attachments() {
    let tag = common::unique("gm");
    let pdf: Vec<u8> = b"%PDF-1.4\n"
        .iter()
        .copied()
        .chain((0..3000u32).map(|i| (i * 31 % 256) as u8))
        .collect();
    let html = "<p>Anbei die <b>Rechnung</b> für März.</p>";
    let mail = format!(
        "From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.test>\r\nTo: info@example.test\r\n\
         Subject: =?UTF-8?Q?Rechnung_f=C3=BCr_M=C3=A4rz?=\r\n\
         Date: Thu, 26 Nov 2026 09:00:00 +0100\r\nMessage-ID: <inv.{tag}@example.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
         --outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n\
         --inner\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\n\
         Anbei die Rechnung f=FCr M=E4rz.\r\nGr=FC=DFe\r\n\
         --inner\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{html64}\
         --inner--\r\n\
         --outer\r\nContent-Type: application/pdf; name=\"rechnung.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"rechnung.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{pdf64}--outer--\r\n",
        html64 = b64_lines(html.as_bytes()),
        pdf64 = b64_lines(&pdf),
    );
    let s = setup("gm", &[mail.into_bytes()], &[]).await;
    let mb = fetchkit::mailbox(&s.conn).await;
    let list = fetchkit::list_all(&mb, &s.path).await;
    let id = id_of(&list, "Rechnung für März");
    let m = mb.get_message("", id).await.expect("GetMessage");
    // Everything ListMessages shows, plus the body keys.
    for key in list[0].keys() {
        assert_eq!(
            m.get(key),
            list[0].get(key),
            "{key} differs from the list dict"
        );
    }
    assert!(get::<bool>(&m, "has_attachments"));
    assert_eq!(get::<String>(&m, "from"), "Jörg <joerg@example.test>");
    assert!(get::<String>(&m, "message_id").contains(&format!("inv.{tag}@example.test")));
    let text = get::<String>(&m, "text");
    assert!(
        text.contains("Rechnung für März.") && text.contains("Grüße"),
        "{text:?}"
    );
    assert_eq!(get::<String>(&m, "html").trim(), html);
    let attachments: Vec<(String, String, u64)> = get(&m, "attachments");
    assert_eq!(
        attachments,
        vec![(
            "rechnung.pdf".into(),
            "application/pdf".into(),
            pdf.len() as u64
        )]
    );
    let err = mb.get_message("", id + 1000).await.unwrap_err();
    assert_eq!(error_name(&err), NOT_FOUND, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_unassign_and_read_round_trip_with_signals() {
    let tag = common::unique("as");
    let mails: Vec<Vec<u8>> = (0..2)
        .map(|i| simple(&tag, i, "Thu, 26 Nov 2026 09:00:00 +0100"))
        .collect();
    let s = setup("as", &mails, &[]).await;
    let mb = fetchkit::mailbox(&s.conn).await;
    let mut changed = mb.receive_messages_changed().await.unwrap();
    let id = id_of(&fetchkit::list_all(&mb, &s.path).await, &format!("{tag} 0"));
    let other = id_of(&fetchkit::list_all(&mb, &s.path).await, &format!("{tag} 1"));
    assert_eq!(state_of(&s.conn, id).await, (String::new(), false));

    mb.assign_to_contact("", id, "K-10042")
        .await
        .expect("AssignToContact");
    assert_eq!(next_changed(&mut changed).await, vec![id]);
    assert_eq!(state_of(&s.conn, id).await, ("K-10042".into(), false));
    assert_eq!(
        listed(&mb, "unassigned", Variant::from(false)).await,
        vec![id]
    );
    assert_eq!(
        listed(&mb, "unassigned", Variant::from(true)).await,
        vec![other]
    );

    mb.set_read("", id, true).await.expect("SetRead");
    assert_eq!(next_changed(&mut changed).await, vec![id]);
    assert_eq!(state_of(&s.conn, id).await, ("K-10042".into(), true));
    assert_eq!(listed(&mb, "read", Variant::from(true)).await, vec![id]);

    mb.unassign("", id).await.expect("Unassign");
    assert_eq!(next_changed(&mut changed).await, vec![id]);
    mb.set_read("", id, false).await.expect("SetRead false");
    assert_eq!(next_changed(&mut changed).await, vec![id]);
    assert_eq!(state_of(&s.conn, id).await, (String::new(), false));
    assert_eq!(
        listed(&mb, "read", Variant::from(true)).await,
        Vec::<u64>::new()
    );

    for bad in [String::new(), "a\nb".into(), "x".repeat(257)] {
        let err = mb.assign_to_contact("", id, &bad).await.unwrap_err();
        assert_eq!(error_name(&err), INVALID, "{bad:?}: {err}");
        assert!(err.to_string().contains("contact"), "{err}");
    }
    assert_eq!(
        state_of(&s.conn, id).await,
        (String::new(), false),
        "a refused call changes nothing"
    );
    let missing = id.max(other) + 1000;
    for err in [
        mb.assign_to_contact("", missing, "K-1").await.unwrap_err(),
        mb.unassign("", missing).await.unwrap_err(),
        mb.set_read("", missing, true).await.unwrap_err(),
        mb.delete_message("", missing).await.unwrap_err(),
    ] {
        assert_eq!(error_name(&err), NOT_FOUND, "{err}");
    }
    let stray = tokio::time::timeout(Duration::from_millis(300), changed.next()).await;
    assert!(stray.is_err(), "a refused call must not signal a change");
}

/// (contact, read) of a message as the admin sees it.
async fn state_of(conn: &zbus::Connection, id: u64) -> (String, bool) {
    let m = mb_get(conn, id).await;
    (get::<String>(&m, "contact"), get::<bool>(&m, "read"))
}

async fn mb_get(conn: &zbus::Connection, id: u64) -> Dict {
    fetchkit::mailbox(conn)
        .await
        .get_message("", id)
        .await
        .expect("GetMessage")
}

/// Ids listed as the admin with one filter key.
async fn listed(mb: &MailboxProxy<'_>, key: &str, value: Variant<'_>) -> Vec<u64> {
    let mut f = HashMap::new();
    f.insert(key, value);
    let (page, total) = mb.list_messages("", f, 0, 100).await.expect("ListMessages");
    assert_eq!(total as usize, page.len());
    page.iter().map(|m| get::<u64>(m, "id")).collect()
}

fn trash_count(env: &Env, user: &MailUser) -> u64 {
    let out = common::doveadm(
        env,
        &[
            "mailbox",
            "status",
            "-u",
            &user.address,
            "messages",
            "Trash",
        ],
    );
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("messages="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unexpected doveadm output: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_moves_the_mail_to_trash_on_the_server() {
    let tag = common::unique("tr");
    let mails: Vec<Vec<u8>> = (0..3)
        .map(|i| simple(&tag, i, "Thu, 26 Nov 2026 09:00:00 +0100"))
        .collect();
    let trash = ("trash_folder", Variant::from("Trash"));
    let s = setup("tr", &mails, &[trash]).await;
    let mb = fetchkit::mailbox(&s.conn).await;
    let list = fetchkit::list_all(&mb, &s.path).await;
    let (first, second) = (
        id_of(&list, &format!("{tag} 0")),
        id_of(&list, &format!("{tag} 1")),
    );

    // No Trash folder on the server yet: FolderUnknown, nothing changes.
    let err = mb.delete_message("", first).await.unwrap_err();
    assert_eq!(
        error_name(&err),
        "org.postfach.Postfach1.Error.FolderUnknown",
        "{err}"
    );
    assert!(err.to_string().contains("Trash"), "{err}");
    assert_eq!(fetchkit::list_all(&mb, &s.path).await.len(), 3);
    assert_eq!(common::message_count(s.env, &s.user), 3);

    common::doveadm(
        s.env,
        &["mailbox", "create", "-u", &s.user.address, "Trash"],
    );
    let mut changed = mb.receive_messages_changed().await.unwrap();
    mb.delete_message("", first).await.expect("DeleteMessage");
    assert_eq!(next_changed(&mut changed).await, vec![first]);
    assert_eq!(common::message_count(s.env, &s.user), 2, "gone from INBOX");
    assert_eq!(trash_count(s.env, &s.user), 1, "moved into Trash");
    let left: BTreeSet<u64> = fetchkit::list_all(&mb, &s.path)
        .await
        .iter()
        .map(|m| get::<u64>(m, "id"))
        .collect();
    assert!(!left.contains(&first) && left.len() == 2, "{left:?}");
    let err = mb.get_raw("", first).await.unwrap_err();
    assert_eq!(error_name(&err), NOT_FOUND, "{err}");
    let acc = fetchkit::account(&s.conn, &s.path).await;
    assert_eq!(
        acc.fetch_now().await.unwrap(),
        0,
        "the moved mail does not come back"
    );

    // The server cannot be reached: the mail stays, locally and there.
    let port = common::scripted::closed_port();
    let mut change = HashMap::new();
    change.insert("port", Variant::from(port));
    acc.update(change).await.expect("Update port");
    let err = mb.delete_message("", second).await.unwrap_err();
    assert_eq!(
        error_name(&err),
        "org.postfach.Postfach1.Error.Connection",
        "{err}"
    );
    assert!(
        mb_get(&s.conn, second).await.contains_key("id"),
        "kept locally"
    );
    assert_eq!(common::message_count(s.env, &s.user), 2);
    assert_eq!(trash_count(s.env, &s.user), 1);
    assert!(
        !s.daemon.log().contains(&s.user.password),
        "password in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_without_trash_folder_is_local_only() {
    let tag = common::unique("lo");
    let mails: Vec<Vec<u8>> = (0..2)
        .map(|i| simple(&tag, i, "Thu, 26 Nov 2026 09:00:00 +0100"))
        .collect();
    let s = setup("lo", &mails, &[]).await;
    common::doveadm(
        s.env,
        &["mailbox", "create", "-u", &s.user.address, "Trash"],
    );
    let mb = fetchkit::mailbox(&s.conn).await;
    let first = id_of(&fetchkit::list_all(&mb, &s.path).await, &format!("{tag} 0"));
    mb.delete_message("", first).await.expect("DeleteMessage");
    assert_eq!(fetchkit::list_all(&mb, &s.path).await.len(), 1);
    assert_eq!(common::message_count(s.env, &s.user), 2, "INBOX untouched");
    assert_eq!(trash_count(s.env, &s.user), 0);
    let acc = fetchkit::account(&s.conn, &s.path).await;
    assert_eq!(
        acc.fetch_now().await.unwrap(),
        0,
        "a mail deleted in the CRM must not be fetched again"
    );
    let err = mb.delete_message("", first).await.unwrap_err();
    assert_eq!(error_name(&err), NOT_FOUND, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_keeps_exactly_the_assigned_mail() {
    let tag = common::unique("da");
    let mails: Vec<Vec<u8>> = (0..4)
        .map(|i| simple(&tag, i, "Thu, 26 Nov 2026 09:00:00 +0100"))
        .collect();
    let name = ("name", Variant::from("Vertrieb"));
    let s = setup("da", &mails, &[name]).await;
    let mb = fetchkit::mailbox(&s.conn).await;
    let list = fetchkit::list_all(&mb, &s.path).await;
    let kept: BTreeSet<u64> = [
        id_of(&list, &format!("{tag} 1")),
        id_of(&list, &format!("{tag} 3")),
    ]
    .into();
    for id in &kept {
        mb.assign_to_contact("", *id, "K-7").await.unwrap();
    }
    fetchkit::account(&s.conn, &s.path)
        .await
        .delete()
        .await
        .expect("Delete");

    let all = fetchkit::list_all(&mb, &s.path).await;
    let ids: BTreeSet<u64> = all.iter().map(|m| get::<u64>(m, "id")).collect();
    assert_eq!(ids, kept, "exactly the assigned mails stay");
    let (page, total) = mb
        .list_messages("bob", HashMap::new(), 0, 100)
        .await
        .unwrap();
    assert_eq!(total, 2, "assigned mail is everyone's");
    for m in all.iter().chain(&page) {
        assert_eq!(get::<String>(m, "account_name"), "Vertrieb");
        assert_eq!(get::<String>(m, "account_address"), s.user.address);
        assert_eq!(get::<String>(m, "contact"), "K-7");
        assert!(!get::<bool>(m, "private"));
    }
    for id in &kept {
        let bytes = fetchkit::raw(&mb, *id).await;
        assert!(String::from_utf8_lossy(&bytes).contains(&tag));
    }
    let gone = id_of(&list, &format!("{tag} 0"));
    let err = mb.get_message("", gone).await.unwrap_err();
    assert_eq!(error_name(&err), NOT_FOUND, "{err}");
}

/// The CRM pages with `until` fixed to the newest date of its first page;
/// newer mail arriving meanwhile must neither repeat nor hide a mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_with_until_is_stable_while_mail_arrives() {
    let tag = common::unique("pg");
    let date = |h: u32, m: u32| format!("Thu, 26 Nov 2026 {h:02}:{m:02}:00 +0000");
    let mails: Vec<Vec<u8>> = (0..25).map(|i| simple(&tag, i, &date(9, i))).collect();
    let s = setup("pg", &mails, &[]).await;
    let mb = fetchkit::mailbox(&s.conn).await;
    let acc = fetchkit::account(&s.conn, &s.path).await;
    let page = |offset: u32, until: Option<i64>| {
        let mb = mb.clone();
        async move {
            let mut f = HashMap::new();
            if let Some(u) = until {
                f.insert("until", Variant::from(u));
            }
            mb.list_messages("", f, offset, 10)
                .await
                .expect("ListMessages")
        }
    };
    let (first, total) = page(0, None).await;
    assert_eq!((first.len(), total), (10, 25));
    let until = get::<i64>(&first[0], "date");
    let mut seen: Vec<u64> = first.iter().map(|m| get::<u64>(m, "id")).collect();
    let mut offset = 10;
    for round in 0..3u32 {
        // Newer mail arrives between the pages.
        let newer: Vec<Vec<u8>> = (0..2)
            .map(|i| simple(&tag, 100 + round * 2 + i, &date(10 + round, i)))
            .collect();
        for m in &newer {
            common::drop_raw(s.env, &s.user, m);
        }
        assert_eq!(acc.fetch_now().await.unwrap(), 2);
        let (next, total) = page(offset, Some(until)).await;
        assert_eq!(total, 25, "until hides the newer mail from the total too");
        seen.extend(next.iter().map(|m| get::<u64>(m, "id")));
        offset += 10;
    }
    let unique: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a mail appeared twice: {seen:?}");
    let subjects: BTreeSet<String> = fetchkit::list_all(&mb, &s.path)
        .await
        .iter()
        .filter(|m| unique.contains(&get::<u64>(m, "id")))
        .map(|m| get::<String>(m, "subject"))
        .collect();
    let want: BTreeSet<String> = (0..25).map(|i| format!("{tag} {i}")).collect();
    assert_eq!(subjects, want, "every original mail exactly once, no gap");
    // Newest first: dates never increase along the pages.
    let (all, _) = page(0, Some(until)).await;
    let dates: Vec<i64> = all.iter().map(|m| get::<i64>(m, "date")).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "{dates:?}");
}
