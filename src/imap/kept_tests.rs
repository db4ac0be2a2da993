//! A kept session against a scripted IMAP server: which commands a fetch
//! and an IDLE send when INBOX is known, and that news reported to NOOP
//! (not to IDLE) still leads to a full look at INBOX. The server fails the
//! test on any command it did not expect, so "no EXAMINE" is checked by the
//! script itself.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::Held;
use crate::account::{Account, SettingValue};
use crate::imap::fetch::{run, STATE_KEY};
use crate::imap::idle::{hold, Wait};
use crate::net::Stream;
use crate::net::Timeouts;
use crate::store::Store;

/// (command after the tag, reply with `{tag}` for the command's tag). The
/// reply of `DONE` gets the tag of the IDLE it ends.
type Step = (&'static str, &'static str);

async fn server(script: Vec<Step>) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"* OK scripted\r\n").await.unwrap();
        let mut last_tag = String::new();
        for (want, reply) in script {
            // "DONE+": a DONE whose NOOP and IDLE came in the same write.
            let (want, pipelined) = match want.strip_suffix('+') {
                Some(w) => (w, true),
                None => (want, false),
            };
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            let line = line.trim_end().to_string();
            if pipelined {
                let rest = String::from_utf8_lossy(r.buffer()).to_string();
                assert!(rest.contains("NOOP") && rest.contains("IDLE"), "{rest:?}");
            }
            let (tag, cmd) = match line.split_once(' ') {
                Some((tag, cmd)) if line != "DONE" => (tag.to_string(), cmd.to_string()),
                _ => (last_tag.clone(), line.clone()),
            };
            assert!(
                cmd.to_ascii_uppercase().starts_with(want),
                "expected {want}, got {line:?}"
            );
            last_tag = tag.clone();
            w.write_all(reply.replace("{tag}", &tag).as_bytes())
                .await
                .unwrap();
        }
    });
    (port, task)
}

async fn session(port: u16) -> Held {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut client = async_imap::Client::new(Stream::plain(tcp));
    client.read_response().await.unwrap().unwrap();
    Held::new(
        client
            .login("anna", "pw")
            .await
            .map_err(|(e, _)| e)
            .unwrap(),
    )
}

fn setup() -> (tempfile::TempDir, Arc<Store>, Account) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let s = |v: &str| SettingValue::Str(v.into());
    let settings = vec![
        ("kind".to_string(), s("imap")),
        ("address".to_string(), s("anna@example.com")),
        ("host".to_string(), s("127.0.0.1")),
    ];
    let account = store
        .create_account(|id| Account::create(id, &settings))
        .unwrap();
    // The state a complete fetch left: validity 5, next UID 2.
    store.set_sync_state(&account.id, STATE_KEY, "5:2").unwrap();
    (dir, store, account)
}

const EXAMINE: &str = "* 1 EXISTS\r\n* OK [UIDVALIDITY 5] v\r\n* OK [UIDNEXT 2] n\r\n\
                       {tag} OK [READ-ONLY] examined\r\n";

/// Wake-ups for [`hold`]: `left` of them at once, then none; counts the
/// ones answered on the idling session.
struct Wakes {
    left: usize,
    answered: usize,
}

impl crate::imap::idle::Wakes for Wakes {
    type Out = ();
    fn next(&mut self) -> impl std::future::Future<Output = ()> {
        let now = self.left > 0;
        self.left = self.left.saturating_sub(1);
        async move {
            if !now {
                std::future::pending::<()>().await;
            }
        }
    }
    fn answer(&mut self, _: (), report: &crate::fetch::FetchReport) -> Option<()> {
        assert!(report.new_ids.is_empty());
        self.answered += 1;
        None
    }
}

#[tokio::test]
async fn a_known_inbox_is_checked_on_the_idling_session_in_one_write() {
    let (_dir, store, account) = setup();
    let (port, script) = server(vec![
        ("LOGIN", "{tag} OK in\r\n"),
        (
            "CAPABILITY",
            "* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK caps\r\n",
        ),
        // First fetch: nothing known about this session yet.
        ("EXAMINE", EXAMINE),
        // IDLE right after it: no command before IDLE.
        ("IDLE", "+ idling\r\n"),
        // FetchNow: DONE, NOOP, IDLE at once; nothing new, answered.
        ("DONE+", "{tag} OK idle done\r\n"),
        ("NOOP", "* 1 FETCH (FLAGS (\\Seen))\r\n{tag} OK noop\r\n"),
        ("IDLE", "+ idling\r\n"),
        // FetchNow: the NOOP reports what IDLE did not: DONE, then a fetch
        // that EXAMINEs.
        ("DONE+", "{tag} OK idle done\r\n"),
        ("NOOP", "* 2 EXISTS\r\n{tag} OK noop\r\n"),
        ("IDLE", "+ idling\r\n"),
        ("DONE", "{tag} OK idle done\r\n"),
        ("EXAMINE", EXAMINE),
        // One mail expunged, one arrived: the count is the same, still news.
        ("IDLE", "+ idling\r\n"),
        ("DONE+", "{tag} OK idle done\r\n"),
        ("NOOP", "* 1 EXPUNGE\r\n* 1 EXISTS\r\n{tag} OK noop\r\n"),
        ("IDLE", "+ idling\r\n"),
        ("DONE", "{tag} OK idle done\r\n"),
        ("EXAMINE", EXAMINE),
    ])
    .await;
    let t = Timeouts::default();
    let none = |_: u32, _: u32| {};
    let mut held = session(port).await;

    let report = run(&mut held, &account, &store, &t, &none).await.unwrap();
    assert!(report.new_ids.is_empty());
    assert_eq!(held.inbox, Some(1), "EXAMINE matched the stored state");
    let max = Duration::from_secs(5);
    let mut wakes = Wakes {
        left: 2,
        answered: 0,
    };
    let (end, back) = hold(held, &account, &store, &t, max, &mut wakes).await;
    assert!(matches!(end, Wait::Woken(())), "{end:?}");
    assert_eq!(wakes.answered, 1, "the first check found nothing");
    let mut held = back.expect("the session comes back");
    assert_eq!(held.inbox, None, "the second check found news");
    run(&mut held, &account, &store, &t, &none).await.unwrap();
    assert_eq!(held.inbox, Some(1));

    let mut wakes = Wakes {
        left: 1,
        answered: 0,
    };
    let (end, back) = hold(held, &account, &store, &t, max, &mut wakes).await;
    assert!(matches!(end, Wait::Woken(())), "{end:?}");
    assert_eq!(wakes.answered, 0);
    let mut held = back.expect("the session comes back");
    run(&mut held, &account, &store, &t, &none).await.unwrap();
    script
        .await
        .expect("the server saw exactly the scripted commands");
}
