//! The server matrix: the fetch, delete-on-server, UIDVALIDITY, IDLE,
//! Trash and big-mail scenarios against real Cyrus imapd 3.6,
//! Courier-IMAP 5 and GNU mailutils imap4d 3.15 (scripts/testenv-servers),
//! through the daemon over D-Bus as the CRM uses it. Each scenario is one
//! function of the server; what differs between servers is data in
//! tests/common/servers.rs, not a copy of the test. Mail is seeded by IMAP
//! APPEND as a matrix user, and read back from the server the same way.
//! Dovecot runs these scenarios in imap_fetch, folders and big_mail.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::servers::{Mode, Server, ServerUser};
use common::{fetch, Daemon, Env, Settings};
use postfach::account::SettingValue;
use postfach::dbus::proxy::{AccountProxy, MailboxProxy};
use zbus::{Connection, OwnedObjectPath};

/// A FetchNow that has not answered by then hangs.
const HANG: Duration = Duration::from_secs(120);

/// A daemon (trusting the run's CA) and a client connection to it.
struct Run {
    daemon: Daemon,
    conn: Connection,
    _state: tempfile::TempDir,
}

impl Run {
    async fn start() -> Run {
        let state = tempfile::tempdir().unwrap();
        let daemon = fetch::start(state.path());
        let conn = fetch::bus(&daemon).await;
        Run {
            daemon,
            conn,
            _state: state,
        }
    }

    /// An IMAP account of `user` over `mode`, fetched on demand unless
    /// `extra` says otherwise.
    async fn account(
        &self,
        user: &ServerUser,
        mode: Mode,
        extra: &[(&'static str, SettingValue)],
    ) -> OwnedObjectPath {
        let s = Settings::new()
            .with("kind", "imap")
            .with("host", "127.0.0.1")
            .with("port", user.server.port(mode))
            .with("encryption", mode.setting())
            .with("address", format!("{}@{}", user.name, Env::get().domain))
            .with("username", &user.login)
            .with("password", &user.password)
            .with("tenant", "mandant1")
            .with("poll_interval", 0u32)
            .with_all(extra);
        fetch::create(&self.conn, s.dbus()).await
    }

    async fn acc(&self, path: &OwnedObjectPath) -> AccountProxy<'_> {
        fetch::account(&self.conn, path).await
    }

    async fn mb(&self) -> MailboxProxy<'_> {
        fetch::mailbox(&self.conn).await
    }

    async fn fetch_now(&self, path: &OwnedObjectPath) -> Result<u32, String> {
        let acc = self.acc(path).await;
        match tokio::time::timeout(HANG, acc.fetch_now()).await {
            Err(_) => panic!("FetchNow hung for {HANG:?}\n{}", self.daemon.log()),
            Ok(r) => r.map_err(|e| e.to_string()),
        }
    }

    /// The stored bytes of every mail of the account, sorted.
    async fn stored(&self, path: &OwnedObjectPath) -> Vec<Vec<u8>> {
        let mb = self.mb().await;
        let mut out = Vec::new();
        for m in fetch::list_all(&mb, path).await {
            out.push(fetch::raw(&mb, fetch::get::<u64>(&m, "id")).await);
        }
        out.sort();
        out
    }

    async fn last_error(&self, path: &OwnedObjectPath) -> String {
        self.acc(path).await.last_error().await.unwrap()
    }
}

/// A small mail, unique to this process, scenario and number.
fn mail(scenario: &str, n: usize) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.test>\r\nTo: someone@example.test\r\n\
         Subject: {scenario} {n}\r\nDate: Thu, 03 Dec 2026 10:00:{n:02} +0000\r\n\
         Message-ID: <{scenario}.{n}.{}@postfach.test>\r\n\r\nMail {n} of {scenario}.\r\n",
        std::process::id()
    )
    .into_bytes()
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

/// Equal lists of mails, or a panic that shows where the first pair
/// differs (not megabytes of numbers).
fn same_mails(got: &[Vec<u8>], want: &[Vec<u8>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: number of mails");
    for (g, w) in got.iter().zip(want) {
        if g != w {
            let at = g.iter().zip(w).take_while(|(a, b)| a == b).count();
            let from = at.saturating_sub(80);
            panic!(
                "{what}: {} bytes against {} expected, first difference at {at}:\n\
                 got  {:?}\nwant {:?}",
                g.len(),
                w.len(),
                String::from_utf8_lossy(&g[from..(at + 80).min(g.len())]),
                String::from_utf8_lossy(&w[from..(at + 80).min(w.len())]),
            );
        }
    }
}

/// The mails as the test can compare them with what it appended: as
/// stored on servers that keep bytes, without the bookkeeping headers
/// imap4d adds and rewrites between sessions.
fn comparable(server: Server, mails: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    sorted(
        mails
            .into_iter()
            .map(|m| server.without_bookkeeping(&m))
            .collect(),
    )
}

/// Checks that INBOX holds what was appended, as the server sends it.
fn check_seeded(user: &ServerUser, sent: &[Vec<u8>]) {
    let bodies = comparable(user.server, user.bodies());
    same_mails(
        &bodies,
        &sorted(sent.to_vec()),
        &format!("{:?}: seeded", user.server),
    );
}

/// Fetch in clear text, with STARTTLS and over implicit TLS: every mail once, stored as
/// the server sends it (byte for byte; on imap4d but for its bookkeeping
/// headers), nothing refetched, nothing removed.
async fn fetches_every_mail_once_as_sent(server: Server) {
    let user = server.user();
    let sent: Vec<Vec<u8>> = (0..3).map(|n| mail("fetch", n)).collect();
    user.seed(&sent);
    check_seeded(&user, &sent);
    let run = Run::start().await;
    for mode in [Mode::Plain, Mode::Starttls, Mode::Tls] {
        let path = run.account(&user, mode, &[]).await;
        let log = || run.daemon.log();
        assert_eq!(
            run.fetch_now(&path).await,
            Ok(3),
            "{server:?} {mode:?}: {}",
            log()
        );
        let stored = comparable(server, run.stored(&path).await);
        same_mails(
            &stored,
            &sorted(sent.clone()),
            &format!("{server:?} {mode:?}: stored"),
        );
        assert_eq!(
            run.fetch_now(&path).await,
            Ok(0),
            "{server:?} {mode:?}: refetched"
        );
        assert_eq!(run.last_error(&path).await, "", "{server:?} {mode:?}");
    }
    assert_eq!(
        user.count("INBOX"),
        3,
        "{server:?}: delete on server is off"
    );
    run.daemon.assert_running();
}

/// Delete on server removes exactly the stored mails, where the server has
/// UIDPLUS; without it (imap4d) the mails stay and the fetch says why.
async fn delete_on_server(server: Server) {
    let user = server.user();
    let sent: Vec<Vec<u8>> = (0..3).map(|n| mail("delete", n)).collect();
    user.seed(&sent);
    let run = Run::start().await;
    let extra = [("delete_on_server", SettingValue::Bool(true))];
    let path = run.account(&user, Mode::Tls, &extra).await;
    assert_eq!(run.fetch_now(&path).await, Ok(3), "{}", run.daemon.log());
    assert_eq!(run.stored(&path).await.len(), 3);
    let error = run.last_error(&path).await;
    if server.uidplus() {
        assert_eq!(user.count("INBOX"), 0, "{server:?}: deleted on the server");
        assert_eq!(error, "", "{server:?}");
    } else {
        assert_eq!(user.count("INBOX"), 3, "{server:?}: kept without UIDPLUS");
        assert!(error.contains("UIDPLUS"), "{server:?}: {error:?}");
    }
    // A new mail after the delete: fetched, nothing stored twice.
    user.seed(&[mail("delete", 3)]);
    assert_eq!(run.fetch_now(&path).await, Ok(1), "{}", run.daemon.log());
    assert_eq!(run.stored(&path).await.len(), 4);
}

/// A new UIDVALIDITY with the same mails under new UIDs: nothing stored
/// twice, nothing lost, the one new mail fetched.
async fn uidvalidity_change_neither_duplicates_nor_loses_mail(server: Server) {
    let user = server.user();
    let sent: Vec<Vec<u8>> = (0..3).map(|n| mail("uidv", n)).collect();
    user.seed(&sent);
    let run = Run::start().await;
    let path = run.account(&user, Mode::Plain, &[]).await;
    assert_eq!(run.fetch_now(&path).await, Ok(3), "{}", run.daemon.log());

    user.renumber();
    user.seed(&[mail("uidv", 3)]);
    assert_eq!(
        run.fetch_now(&path).await,
        Ok(1),
        "{server:?}: only the new mail is new\n{}",
        run.daemon.log()
    );
    let stored = comparable(server, run.stored(&path).await);
    let want: Vec<Vec<u8>> = (0..4).map(|n| mail("uidv", n)).collect();
    same_mails(
        &stored,
        &sorted(want),
        &format!("{server:?}: stored once each"),
    );
}

/// IDLE: a mail appended while the account idles is fetched without a
/// FetchNow — pushed by the server (Cyrus, Courier: poll interval of an
/// hour), or found by the poll interval on the idling session (imap4d
/// never pushes: poll interval of 2 s).
async fn idle_fetches_new_mail(server: Server) {
    let user = server.user();
    user.seed(&[mail("idle", 0)]);
    let run = Run::start().await;
    let poll: u32 = if server.idle_pushes() { 3600 } else { 2 };
    let path = run
        .account(
            &user,
            Mode::Tls,
            &[("poll_interval", SettingValue::U32(poll))],
        )
        .await;
    let mb = run.mb().await;
    let count = || async { fetch::list_all(&mb, &path).await.len() };
    common::eventually("the first fetch", Duration::from_secs(60), || async {
        count().await == 1
    })
    .await;
    // The account is idling now (or about to: a mail that comes before
    // its IDLE starts is found by the fetch before it).
    user.seed(&[mail("idle", 1)]);
    common::eventually("the idled mail", Duration::from_secs(60), || async {
        count().await == 2
    })
    .await;
    assert_eq!(run.last_error(&path).await, "", "{server:?}");
    run.daemon.assert_running();
}

/// DeleteMessage with the server's Trash: listed by SyncFolders, the mail
/// lands there; with UIDPLUS it leaves INBOX, without it the copy is all.
/// Where Trash lives under `INBOX.` (Cyrus, Courier), the account first
/// names it plain `Trash`, as a new user would: FolderUnknown that names
/// the listed folder, and nothing moves.
async fn trash_move(server: Server) {
    let user = server.user();
    user.seed(&[mail("trash", 0)]);
    let run = Run::start().await;
    let extra = [("trash_folder", SettingValue::Str("Trash".into()))];
    let path = run.account(&user, Mode::Plain, &extra).await;
    let acc = run.acc(&path).await;
    let folders = acc.sync_folders().await.unwrap();
    assert!(
        folders.iter().any(|f| f == server.trash()),
        "{server:?}: {folders:?}"
    );
    assert_eq!(run.fetch_now(&path).await, Ok(1), "{}", run.daemon.log());
    let mb = run.mb().await;
    let id = fetch::get::<u64>(&fetch::list_all(&mb, &path).await[0], "id");
    if server.trash() != "Trash" {
        let err = mb.delete_message("", id).await.unwrap_err();
        let name = fetch::error_name(&err);
        assert_eq!(name, "org.postfach.Postfach1.Error.FolderUnknown", "{err}");
        assert!(
            err.to_string().contains(server.trash()),
            "{server:?}: {err}"
        );
        assert_eq!(user.count("INBOX"), 1, "{server:?}: nothing moved");
        let mut change = std::collections::HashMap::new();
        change.insert("trash_folder", zbus::Variant::from(server.trash()));
        acc.update(change).await.expect("the listed Trash");
    }
    mb.delete_message("", id).await.expect("DeleteMessage");
    common::eventually("the mail in the Trash", Duration::from_secs(30), || async {
        user.count(server.trash()) == 1
    })
    .await;
    let left = if server.uidplus() { 0 } else { 1 };
    assert_eq!(
        user.count("INBOX"),
        left,
        "{server:?}: INBOX after the move"
    );
    let journal = if server.uidplus() { "moved" } else { "copied" };
    let log = run.daemon.log();
    assert!(
        log.contains(&format!("mail {journal} to the Trash folder")),
        "{server:?}: {log}"
    );
}

/// A mail of exactly 3 MiB as appended (three whole pieces of 1 MiB on
/// servers that keep bytes) between two small ones: each stored whole.
async fn big_mail(server: Server) {
    let user = server.user();
    let mut big = mail("big", 1);
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-\r\n";
    while big.len() + line.len() <= 3 << 20 {
        big.extend_from_slice(line);
    }
    // Ending in CRLF: Courier and imap4d add one to a mail without.
    big.resize((3 << 20) - 2, b'x');
    big.extend_from_slice(b"\r\n");
    let sent = vec![mail("big", 0), big, mail("big", 2)];
    user.seed(&sent);
    check_seeded(&user, &sent);
    let run = Run::start().await;
    let path = run.account(&user, Mode::Tls, &[]).await;
    assert_eq!(run.fetch_now(&path).await, Ok(3), "{}", run.daemon.log());
    let stored = comparable(server, run.stored(&path).await);
    same_mails(&stored, &sorted(sent), &format!("{server:?}: stored"));
    assert_eq!(run.last_error(&path).await, "", "{server:?}");
}

/// One test per server and scenario, named `scenario::server`; a cell
/// can carry its own attributes (an `#[ignore]` with its reason).
macro_rules! matrix {
    ($scenario:ident { $($(#[$attr:meta])* $cell:ident => $server:expr),+ $(,)? }) => {
        mod $scenario {
            use super::*;
            $(
                $(#[$attr])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $cell() {
                    super::$scenario($server).await;
                }
            )+
        }
    };
    ($($scenario:ident),+ $(,)?) => {
        $(matrix!($scenario {
            cyrus => Server::Cyrus,
            courier => Server::Courier,
            imap4d => Server::Imap4d,
        });)+
    };
}

matrix!(
    fetches_every_mail_once_as_sent,
    delete_on_server,
    idle_fetches_new_mail,
    trash_move,
    big_mail,
);

matrix!(uidvalidity_change_neither_duplicates_nor_loses_mail {
    cyrus => Server::Cyrus,
    courier => Server::Courier,
    // Today every mail comes again as new (4 for 1): the renumbered mails
    // differ from the stored ones by imap4d's X-IMAPbase, X-UID and
    // Status headers, so content does not recognise them.
    #[ignore = "open: imap4d's renumbered mails are fetched again (docs/SERVERS.md, Not yet handled)"]
    imap4d => Server::Imap4d,
});
