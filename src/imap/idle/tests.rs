//! A kept connection against a scripted IMAP server: which commands a
//! fetch and an IDLE send when INBOX is known, and that news reported to
//! NOOP (not to IDLE) still leads to a full look at INBOX. The server fails
//! the test on any command it did not expect, so "no EXAMINE" is checked by
//! the script itself.

use std::time::Duration;

use super::{Outcome, Wake};
use crate::imap::fetch::STATE_KEY;
use crate::imap::testing::{connection, scripted_server as server, store_with_account};

fn setup() -> (
    tempfile::TempDir,
    std::sync::Arc<crate::store::Store>,
    crate::account::Account,
) {
    let (dir, store, account) = store_with_account(&[]);
    // The state a complete fetch left: validity 5, next UID 2.
    store.set_sync_state(&account.id, STATE_KEY, "5:2").unwrap();
    (dir, store, account)
}

const EXAMINE: &str = "* 1 EXISTS\r\n* OK [UIDVALIDITY 5] v\r\n* OK [UIDNEXT 2] n\r\n\
                       {tag} OK [READ-ONLY] examined\r\n";

/// Fetch wake-ups for [`Connection::idle`]: `left` of them at once, then
/// none; counts the ones answered on the idling session.
struct Wakes {
    left: usize,
    answered: usize,
}

impl crate::imap::idle::Wakes for Wakes {
    type Fetch = ();
    type Other = ();
    fn next(&mut self) -> impl std::future::Future<Output = Wake<(), ()>> {
        let now = self.left > 0;
        self.left = self.left.saturating_sub(1);
        async move {
            if !now {
                std::future::pending::<()>().await;
            }
            Wake::Fetch(())
        }
    }
    fn answer(&mut self, _: (), report: &crate::fetch::FetchReport) {
        assert!(report.new_ids.is_empty());
        self.answered += 1;
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
    let none = |_: u32, _: u32| {};
    let mut conn = connection(port).await;

    let report = conn.fetch(&account, &store, &none).await.unwrap();
    assert!(report.new_ids.is_empty());
    assert_eq!(
        conn.inbox_known(),
        Some(1),
        "EXAMINE matched the stored state"
    );
    let max = Duration::from_secs(5);
    let mut wakes = Wakes {
        left: 2,
        answered: 0,
    };
    let end = conn.idle(&account, &store, max, &mut wakes).await;
    assert!(matches!(end, Outcome::Woken(Wake::Fetch(()))), "{end:?}");
    assert_eq!(wakes.answered, 1, "the first check found nothing");
    assert!(conn.usable(), "the session comes back");
    assert_eq!(conn.inbox_known(), None, "the second check found news");
    conn.fetch(&account, &store, &none).await.unwrap();
    assert_eq!(conn.inbox_known(), Some(1));

    let mut wakes = Wakes {
        left: 1,
        answered: 0,
    };
    let end = conn.idle(&account, &store, max, &mut wakes).await;
    assert!(matches!(end, Outcome::Woken(Wake::Fetch(()))), "{end:?}");
    assert_eq!(wakes.answered, 0);
    assert!(conn.usable(), "the session comes back");
    conn.fetch(&account, &store, &none).await.unwrap();
    script
        .await
        .expect("the server saw exactly the scripted commands");
}
