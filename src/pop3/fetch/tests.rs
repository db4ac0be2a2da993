//! Fetch tests: a scripted POP3 server and a real store in a temp dir.
//! The scripted server fails the test on any command it did not expect, so
//! "no DELE before the commit" and "no RETR of known mail" are checked by
//! the script itself.

use std::sync::Mutex;

use super::{run, Limits, NOUIDL_PREFIX, UIDL_PREFIX};
use crate::account::{Account, SettingValue};
use crate::error::Error;
use crate::fetch::FetchReport;
use crate::pop3::client::Capabilities;
use crate::pop3::tests::{client, retr, send, Close, Expect, Step};
use crate::store::Store;

pub(super) fn setup() -> (tempfile::TempDir, std::sync::Arc<Store>, Account) {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(dir.path()).unwrap());
    let s = |v: &str| SettingValue::Str(v.into());
    let settings = vec![
        ("kind".to_string(), s("pop3")),
        ("address".to_string(), s("anna@example.com")),
        ("host".to_string(), s("127.0.0.1")),
    ];
    let account = store
        .create_account(|id| Account::create(id, &settings))
        .unwrap();
    (dir, store, account)
}

pub(super) fn login() -> Vec<Step> {
    vec![
        Expect("USER anna@example.com"),
        send("+OK\r\n"),
        Expect("PASS pw"),
        send("+OK logged in\r\n"),
    ]
}

/// Run one fetch against `steps` (after login) and check the script ran out.
pub(super) async fn fetch(
    store: &std::sync::Arc<Store>,
    account: &Account,
    steps: Vec<Step>,
    limits: Limits,
) -> (crate::error::Result<FetchReport>, Vec<(u32, u32)>) {
    let mut all = login();
    all.extend(steps);
    let (c, task) = client(all).await;
    let seen = Mutex::new(Vec::new());
    let progress = |a: u32, b: u32| seen.lock().unwrap().push((a, b));
    let caps = Capabilities::default();
    let r = run(c, &caps, account, "pw", store, &progress, limits).await;
    if let Err(e) = task.await {
        panic!("the scripted server failed ({e}); the fetch said {r:?}");
    }
    (r, seen.into_inner().unwrap())
}

const WIRE: &[u8] = b"Subject: dots\r\n\r\n..leading\r\nbare\rCR\nLF\r\n.\r\n";
const STORED: &[u8] = b"Subject: dots\r\n\r\n.leading\r\nbare\rCR\nLF\r\n";

#[tokio::test]
async fn stores_exact_bytes_then_deletes_at_quit_and_forgets_ids() {
    let (_dir, store, mut account) = setup();
    account.delete_on_server = true;
    let steps = vec![
        Expect("LIST"),
        send("+OK\r\n1 45\r\n2 0\r\n.\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 u1\r\n2 u2\r\n.\r\n"),
        Expect("RETR 1"),
        retr(WIRE),
        Expect("RETR 2"),
        retr(b".\r\n"),
        Expect("DELE 1"),
        send("+OK\r\n"),
        Expect("DELE 2"),
        send("+OK\r\n"),
        Expect("QUIT"),
        send("+OK bye\r\n"),
    ];
    let (r, progress) = fetch(&store, &account, steps, Limits::default()).await;
    let report = r.unwrap();
    assert_eq!(report.new_ids.len(), 2);
    assert_eq!(report.deleted_on_server, 2);
    assert_eq!(store.raw(report.new_ids[0]).unwrap().unwrap(), STORED);
    assert_eq!(store.raw(report.new_ids[1]).unwrap().unwrap(), b"");
    assert!(store.known_server_ids(&account.id, "").unwrap().is_empty());
    assert_eq!(progress, vec![(0, 2), (2, 2)]);
}

#[tokio::test]
async fn known_mail_is_not_fetched_again_and_deleted_later() {
    let (_dir, store, mut account) = setup();
    let first = vec![
        Expect("LIST"),
        send("+OK\r\n1 45\r\n.\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 u1\r\n.\r\n"),
        Expect("RETR 1"),
        retr(WIRE),
        Expect("QUIT"),
        send("+OK\r\n"),
    ];
    let report = fetch(&store, &account, first, Limits::default())
        .await
        .0
        .unwrap();
    assert_eq!((report.new_ids.len(), report.deleted_on_server), (1, 0));
    let ids = store.known_server_ids(&account.id, UIDL_PREFIX).unwrap();
    assert!(ids.contains("pop3:u1"));

    // Second fetch, delete now on: u1 is known (no RETR) and may go.
    account.delete_on_server = true;
    let second = vec![
        Expect("LIST"),
        send("+OK\r\n1 45\r\n2 9\r\n.\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 u1\r\n2 u2\r\n.\r\n"),
        Expect("RETR 2"),
        retr(b"second\r\n.\r\n"),
        Expect("DELE 1"),
        send("+OK\r\n"),
        Expect("DELE 2"),
        send("+OK\r\n"),
        Expect("QUIT"),
        send("+OK\r\n"),
    ];
    let report = fetch(&store, &account, second, Limits::default())
        .await
        .0
        .unwrap();
    assert_eq!((report.new_ids.len(), report.deleted_on_server), (1, 2));
    assert_eq!(store.count_messages(&account.id).unwrap(), 2);
}

#[tokio::test]
async fn dropped_connection_before_quit_keeps_server_ids() {
    let (_dir, store, mut account) = setup();
    account.delete_on_server = true;
    let steps = vec![
        Expect("LIST"),
        send("+OK\r\n1 45\r\n.\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 u1\r\n.\r\n"),
        Expect("RETR 1"),
        retr(WIRE),
        Expect("DELE 1"),
        send("+OK\r\n"),
        Expect("QUIT"),
        Close,
    ];
    let (r, _) = fetch(&store, &account, steps, Limits::default()).await;
    assert!(matches!(r, Err(Error::Connection { .. })), "{r:?}");
    // Stored, and still known: the next fetch neither loses nor duplicates it.
    assert_eq!(store.count_messages(&account.id).unwrap(), 1);
    assert!(store
        .known_server_ids(&account.id, "")
        .unwrap()
        .contains("pop3:u1"));
}

#[tokio::test]
async fn server_without_uidl_is_keyed_by_content() {
    let (_dir, store, account) = setup();
    let steps = || {
        vec![
            Expect("LIST"),
            send("+OK\r\n1 45\r\n.\r\n"),
            Expect("UIDL"),
            send("-ERR unknown command\r\n"),
            Expect("RETR 1"),
            retr(WIRE),
            Expect("QUIT"),
            send("+OK\r\n"),
        ]
    };
    let report = fetch(&store, &account, steps(), Limits::default())
        .await
        .0
        .unwrap();
    assert_eq!(report.new_ids.len(), 1);
    assert!(report.warning.unwrap().contains("no UIDL"));
    let ids = store.known_server_ids(&account.id, NOUIDL_PREFIX).unwrap();
    assert_eq!(ids.len(), 1);
    // Downloaded again (the only way to recognise it), stored once.
    let again = fetch(&store, &account, steps(), Limits::default())
        .await
        .0
        .unwrap();
    assert!(again.new_ids.is_empty());
    assert_eq!(store.count_messages(&account.id).unwrap(), 1);
}

#[tokio::test]
async fn rejected_login_stores_nothing() {
    let (_dir, store, account) = setup();
    let (c, task) = client(vec![
        Expect("USER anna@example.com"),
        send("+OK\r\n"),
        Expect("PASS pw"),
        send("-ERR [AUTH] Authentication failed.\r\n"),
    ])
    .await;
    let r = run(
        c,
        &Capabilities::default(),
        &account,
        "pw",
        &store,
        &|_, _| {},
        Limits::default(),
    )
    .await;
    assert!(matches!(r, Err(Error::Authentication(_))), "{r:?}");
    task.await.unwrap();
    assert_eq!(store.count_messages(&account.id).unwrap(), 0);
}

#[tokio::test]
async fn oversized_mail_stays_on_the_server_with_a_warning() {
    let (_dir, store, mut account) = setup();
    account.delete_on_server = true;
    let steps = vec![
        Expect("LIST"),
        send("+OK\r\n1 5000\r\n.\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 big\r\n.\r\n"),
        Expect("QUIT"),
        send("+OK\r\n"),
    ];
    let limits = Limits {
        max_mail: 1000,
        ..Limits::default()
    };
    let report = fetch(&store, &account, steps, limits).await.0.unwrap();
    assert_eq!((report.new_ids.len(), report.deleted_on_server), (0, 0));
    assert!(report.warning.unwrap().contains("larger than"));
}

#[tokio::test]
async fn batches_commit_in_groups_and_report_progress() {
    let (_dir, store, account) = setup();
    let steps = vec![
        Expect("LIST"),
        send("+OK\r\n1 3\r\n2 3\r\n3 3\r\n.\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 a\r\n2 b\r\n3 c\r\n.\r\n"),
        Expect("RETR 1"),
        retr(b"m1\r\n.\r\n"),
        Expect("RETR 2"),
        retr(b"m2\r\n.\r\n"),
        Expect("RETR 3"),
        retr(b"m3\r\n.\r\n"),
        Expect("QUIT"),
        send("+OK\r\n"),
    ];
    let limits = Limits {
        batch_mails: 2,
        ..Limits::default()
    };
    let (r, progress) = fetch(&store, &account, steps, limits).await;
    assert_eq!(r.unwrap().new_ids.len(), 3);
    assert_eq!(progress, vec![(0, 3), (2, 3), (3, 3)]);
}

#[tokio::test]
async fn duplicate_uidls_are_keyed_by_content() {
    let (_dir, store, mut account) = setup();
    account.delete_on_server = true;
    let steps = vec![
        Expect("LIST"),
        send("+OK\r\n1 3\r\n2 3\r\n.\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 same\r\n2 same\r\n.\r\n"),
        Expect("RETR 1"),
        retr(b"m1\r\n.\r\n"),
        Expect("RETR 2"),
        retr(b"m2\r\n.\r\n"),
        Expect("DELE 1"),
        send("+OK\r\n"),
        Expect("DELE 2"),
        send("+OK\r\n"),
        Expect("QUIT"),
        send("+OK\r\n"),
    ];
    let report = fetch(&store, &account, steps, Limits::default())
        .await
        .0
        .unwrap();
    // Both different mails are stored before either is deleted.
    assert_eq!(report.new_ids.len(), 2);
    assert!(report.warning.unwrap().contains("duplicate UIDL"));
}

/// The connection drops while batch 2 downloads and batch 1's commit may
/// still run on the blocking pool: the fetch waits for that commit before
/// it reports the error, so batch 1 is stored (and known) when `run`
/// returns, and nothing was DELE'd (the script fails on any DELE or QUIT).
#[tokio::test]
async fn drop_during_next_download_keeps_the_batch_in_flight() {
    let (_dir, store, mut account) = setup();
    account.delete_on_server = true;
    let steps = vec![
        Expect("LIST"),
        send("+OK\r\n1 3\r\n2 3\r\n.\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 a\r\n2 b\r\n.\r\n"),
        Expect("RETR 1"),
        retr(b"m1\r\n.\r\n"),
        Expect("RETR 2"),
        Close,
    ];
    let limits = Limits {
        batch_mails: 1,
        ..Limits::default()
    };
    let (r, progress) = fetch(&store, &account, steps, limits).await;
    assert!(matches!(r, Err(Error::Connection { .. })), "{r:?}");
    assert_eq!(store.count_messages(&account.id).unwrap(), 1);
    let known = store.known_server_ids(&account.id, "").unwrap();
    assert!(known.contains("pop3:a") && !known.contains("pop3:b"));
    assert_eq!(progress, vec![(0, 2), (1, 2)]);
}

/// Batch 1's commit fails (the account was deleted as the fetch began)
/// while batch 2 downloads: the fetch ends with that error, after batch 2's
/// RETR, without a DELE or QUIT for anything (the script fails on either).
#[tokio::test]
async fn failed_commit_in_flight_deletes_nothing() {
    let (_dir, store, mut account) = setup();
    account.delete_on_server = true;
    let steps = vec![
        Expect("LIST"),
        send("+OK\r\n1 3\r\n2 3\r\n.\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 a\r\n2 b\r\n.\r\n"),
        Expect("RETR 1"),
        retr(b"m1\r\n.\r\n"),
        Expect("RETR 2"),
        retr(b"m2\r\n.\r\n"),
        Close,
    ];
    let mut all = login();
    all.extend(steps);
    let (c, task) = client(all).await;
    let id = account.id.clone();
    let gone = std::sync::Arc::clone(&store);
    let progress = move |done: u32, _: u32| {
        if done == 0 {
            gone.delete_account(&id).unwrap();
        }
    };
    let limits = Limits {
        batch_mails: 1,
        ..Limits::default()
    };
    let caps = Capabilities::default();
    let r = run(c, &caps, &account, "pw", &store, &progress, limits).await;
    task.await.unwrap();
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    assert!(store.raw(1).unwrap().is_none());
}
