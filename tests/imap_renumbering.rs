//! A server without stable UIDs, through the daemon: a scripted server
//! that keeps INBOX like GNU imap4d keeps an mbox nobody opened read-write
//! since new mail came (tests/common/scripted/mbox.rs) — a new UIDVALIDITY
//! and new UIDs in every session, and bookkeeping fields (`X-IMAPbase`,
//! `Status`, `X-UID`) in the bytes that change with them.
//!
//! - every mail is stored once, byte-exact as first sent, however often
//!   the server renumbers;
//! - a mail deleted in the CRM (delete on server off) does not come back;
//! - after three sessions in a row with a new UIDVALIDITY the server is
//!   named once in LastError and the journal, and from then on its mails
//!   are recognised by their headers: no `BODY.PEEK[]` for known mail,
//!   only for a new one.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use zbus::{Connection, OwnedObjectPath, Variant};

use common::scripted::mbox::Mbox;
use common::{fetch, scripted, Daemon};

/// Generous: a FetchNow that does not return within this hangs.
const HANG: Duration = Duration::from_secs(90);
const MAILS: usize = 32;

/// Mail `i`: its own header and body; the server adds its fields.
fn mail(i: usize) -> Vec<u8> {
    format!(
        "From: kunde{i}@example.org\r\nTo: anna@scripted.test\r\nSubject: Anfrage {i}\r\n\
         Message-ID: <{i}.renumbered@example.org>\r\nDate: Thu, 3 Dec 2026 08:{:02}:00 +0000\r\n\
         \r\nHallo,\r\nAnfrage Nummer {i}.\r\nStatus: this line is body text\r\n",
        i % 60
    )
    .into_bytes()
}

struct Run {
    _state: tempfile::TempDir,
    daemon: Daemon,
    conn: Connection,
    path: OwnedObjectPath,
}

impl Run {
    async fn start(server: &Mbox) -> Run {
        let state = tempfile::tempdir().unwrap();
        let daemon = Daemon::start(state.path(), "[fetch]\nread_timeout = 20\n");
        let conn = fetch::bus(&daemon).await;
        let mut s = scripted::settings("imap", server.port, false);
        s.insert("poll_interval", Variant::from(0u32));
        let path = fetch::create(&conn, s).await;
        Run {
            _state: state,
            daemon,
            conn,
            path,
        }
    }

    /// FetchNow: (new mails, LastError).
    async fn fetch(&self) -> (u32, String) {
        let acc = fetch::account(&self.conn, &self.path).await;
        let n = match tokio::time::timeout(HANG, acc.fetch_now()).await {
            Err(_) => panic!("FetchNow hung for {HANG:?}\n{}", self.daemon.log()),
            Ok(r) => r.unwrap_or_else(|e| panic!("FetchNow: {e}\n{}", self.daemon.log())),
        };
        (n, acc.last_error().await.unwrap())
    }

    /// Subject -> (message id, stored bytes through GetRaw); a subject
    /// stored twice fails.
    async fn stored(&self) -> BTreeMap<String, (u64, Vec<u8>)> {
        let mb = fetch::mailbox(&self.conn).await;
        let mut out = BTreeMap::new();
        for m in fetch::list_all(&mb, &self.path).await {
            let id = fetch::get::<u64>(&m, "id");
            let subject: String = fetch::get(&m, "subject");
            let raw = fetch::raw(&mb, id).await;
            assert!(
                out.insert(subject.clone(), (id, raw)).is_none(),
                "{subject} stored twice"
            );
        }
        out
    }
}

/// Regression: every fetch downloaded every mail again, mails whose
/// bookkeeping fields had changed were stored again (37 for 32), and a
/// mail deleted in the CRM came back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renumbering_every_session_stores_each_mail_once_and_stops_downloading() {
    let server = Mbox::start((0..MAILS).map(mail).collect());
    let run = Run::start(&server).await;

    assert_eq!(run.fetch().await, (MAILS as u32, String::new()));
    let stored = run.stored().await;
    assert_eq!(stored.len(), MAILS);
    for i in 0..MAILS {
        let (_, raw) = &stored[&format!("Anfrage {i}")];
        assert_eq!(
            raw,
            &server.as_sent(i, 1),
            "mail {i} not as the server sent it"
        );
    }
    // Deleted in the CRM; delete on server is off, so it stays there.
    let (gone, _) = stored["Anfrage 7"].clone();
    let mb = fetch::mailbox(&run.conn).await;
    mb.delete_message("", gone).await.expect("DeleteMessage");

    // Sessions 2 and 3: a new UIDVALIDITY each, every mail downloaded
    // again (one BODY.PEEK[] command per session) and recognised.
    for _ in 2..=3 {
        assert_eq!(
            run.fetch().await,
            (0, String::new()),
            "{}",
            run.daemon.log()
        );
    }
    let bodies = server.count("BODY.PEEK[]");
    assert_eq!(bodies, 3);
    // Session 4 is the third in a row: named once, and from then on only
    // headers are read.
    let (n, warning) = run.fetch().await;
    assert_eq!(n, 0, "a mail stored again\n{}", run.daemon.log());
    assert!(
        warning.contains("new UIDVALIDITY in 3 sessions in a row"),
        "{warning:?}"
    );
    for _ in 5..=6 {
        assert_eq!(run.fetch().await, (0, String::new()));
    }
    assert_eq!(
        server.count("BODY.PEEK[]"),
        bodies,
        "known mail downloaded again"
    );
    assert_eq!(server.count("BODY.PEEK[HEADER]"), 3);

    // A new mail is downloaded, alone.
    server.deliver(mail(MAILS));
    assert_eq!(run.fetch().await, (1, String::new()));
    let session = server.sessions();
    let fetched: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|l| l.contains("BODY.PEEK[]"))
        .skip(bodies)
        .collect();
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    assert!(
        fetched[0].contains(&format!("UID FETCH {} ", session * 1000 + MAILS as u32 + 1)),
        "{fetched:?}"
    );

    let stored = run.stored().await;
    assert_eq!(stored.len(), MAILS, "{:?}", stored.keys());
    assert!(
        !stored.contains_key("Anfrage 7"),
        "the deleted mail came back"
    );
    assert_eq!(
        stored[&format!("Anfrage {MAILS}")].1,
        server.as_sent(MAILS, session)
    );
    let log = run.daemon.log();
    assert_eq!(
        log.matches("new UIDVALIDITY in 3 sessions in a row")
            .count(),
        1,
        "{log}"
    );
}
