//! A lying or slow POP3 server against the fetch: the bytes that arrive
//! decide where a mail goes, a mail past the limit is refused without
//! costing the others, and the deadline ends what the read timeout cannot.

use std::path::Path;
use std::time::Duration;

use super::tests::{fetch, login, setup};
use super::{run, Limits};
use crate::error::Error;
use crate::fetch::deadline::Budget;
use crate::pop3::client::{Capabilities, Client};
use crate::pop3::tests::{retr, send, server, Expect, Step, READ};
use crate::pop3::wire::Wait;
use crate::store::BLOB_MIN;

/// A mail of `len` bytes in lines of 78, as a POP3 server sends it
/// (nothing to stuff), and as it is stored.
fn mail(len: usize, tag: u8) -> (Vec<u8>, Vec<u8>) {
    let mut raw = Vec::with_capacity(len);
    while raw.len() < len {
        let line = (len - raw.len()).min(80);
        raw.extend(std::iter::repeat_n(tag, line.saturating_sub(2)));
        raw.extend_from_slice(&b"\r\n"[..line.min(2)]);
    }
    let mut wire = raw.clone();
    wire.extend_from_slice(b".\r\n");
    (wire, raw)
}

/// Files in `blobs/` (committed) and `blobs/tmp/` (staged) of a store.
fn blob_files(dir: &Path) -> (Vec<String>, usize) {
    let names = |p: &Path| -> Vec<String> {
        std::fs::read_dir(p)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let blobs = dir.join("blobs");
    (names(&blobs), names(&blobs.join("tmp")).len())
}

/// Listed as 10 bytes, 3 MiB long: it goes into a blob file as it
/// arrives, and is stored exactly.
#[tokio::test]
async fn a_mail_longer_than_listed_goes_into_a_blob() {
    let (dir, store, account) = setup();
    let (wire, raw) = mail(3 * 1024 * 1024, b'a');
    let (small_wire, small) = mail(500, b'b');
    let steps = vec![
        Expect("LIST"),
        send("+OK\r\n1 10\r\n2 500\r\n.\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 liar\r\n2 honest\r\n.\r\n"),
        Expect("RETR 1"),
        retr(&wire),
        Expect("RETR 2"),
        retr(&small_wire),
        Expect("QUIT"),
        send("+OK\r\n"),
    ];
    let report = fetch(&store, &account, steps, Limits::default())
        .await
        .0
        .unwrap();
    assert_eq!(report.new_ids.len(), 2);
    let (big_id, small_id) = (report.new_ids[0], report.new_ids[1]);
    assert!(store.raw(big_id).unwrap().unwrap() == raw);
    assert_eq!(store.raw(small_id).unwrap().unwrap(), small);
    let (blobs, staged) = blob_files(dir.path());
    assert_eq!(
        blobs,
        vec![big_id.to_string()],
        "only the long mail is a blob"
    );
    assert_eq!(staged, 0);
}

/// Mails listed as 10 bytes that are 6,000 long: the batch (budget 10,000
/// bytes) asks for no more once it holds its budget, commits, and the
/// rest follow in batches of their own.
#[tokio::test]
async fn a_batch_stops_asking_once_it_holds_its_budget() {
    let (_dir, store, account) = setup();
    let mut steps = vec![
        Expect("LIST"),
        send("+OK\r\n1 10\r\n2 10\r\n3 10\r\n4 10\r\n5 10\r\n.\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 a\r\n2 b\r\n3 c\r\n4 d\r\n5 e\r\n.\r\n"),
    ];
    let cmds = ["RETR 1", "RETR 2", "RETR 3", "RETR 4", "RETR 5"];
    let mut want = Vec::new();
    for (i, cmd) in cmds.iter().enumerate() {
        let (wire, raw) = mail(6000, b'a' + i as u8);
        steps.push(Expect(cmd));
        steps.push(retr(&wire));
        want.push(raw);
    }
    steps.extend([Expect("QUIT"), send("+OK\r\n")]);
    let limits = Limits {
        batch_bytes: 10_000,
        ..Limits::default()
    };
    let (r, progress) = fetch(&store, &account, steps, limits).await;
    let report = r.unwrap();
    // Without the cut the five would be one batch: (0, 5), (5, 5).
    assert_eq!(progress, vec![(0, 5), (2, 5), (4, 5), (5, 5)]);
    for (id, raw) in report.new_ids.iter().zip(&want) {
        assert_eq!(&store.raw(*id).unwrap().unwrap(), raw);
    }
}

/// The RETRs already in flight when the budget is reached stay in memory
/// only while they fit in it once more; beyond, they go into blob files.
#[tokio::test]
async fn mails_in_flight_past_twice_the_budget_go_into_blobs() {
    let (dir, store, account) = setup();
    let mut steps = vec![
        Expect("LIST"),
        send("+OK\r\n1 10\r\n2 10\r\n3 10\r\n4 10\r\n.\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 a\r\n2 b\r\n3 c\r\n4 d\r\n.\r\n"),
        Expect("RETR 1"),
        Expect("RETR 2"),
        Expect("RETR 3"),
        Expect("RETR 4"),
    ];
    for i in 0..4 {
        steps.push(retr(&mail(6000, b'a' + i).0));
    }
    steps.extend([Expect("QUIT"), send("+OK\r\n")]);
    let mut all = login();
    all.extend(steps);
    let mut pipelining = vec![Expect("CAPA"), send("+OK\r\nPIPELINING\r\n.\r\n")];
    pipelining.extend(all);
    let (mut c, task) = crate::pop3::tests::client(pipelining).await;
    let caps = c.capa().await.unwrap();
    let limits = Limits {
        batch_bytes: 10_000,
        ..Limits::default()
    };
    let report = run(c, &caps, &account, "pw", &store, &|_, _| {}, limits)
        .await
        .unwrap();
    task.await.unwrap();
    // 6,000 + 6,000 + 6,000 fit in twice the budget; the fourth does not.
    let (blobs, _) = blob_files(dir.path());
    assert_eq!(blobs, vec![report.new_ids[3].to_string()]);
    assert_eq!(report.new_ids.len(), 4);
}

/// A mail listed below the limit that goes on past it: refused, read to
/// its end and dropped, its staging file removed; the others stored and
/// deleted on the server, it stays there; the warning names it.
#[tokio::test]
async fn a_mail_past_the_limit_is_refused_and_the_others_stored() {
    for max in [1000, 2 * BLOB_MIN as usize] {
        let (dir, store, mut account) = setup();
        account.delete_on_server = true;
        let (big, _) = mail(max + max / 2, b'x');
        let steps = vec![
            Expect("LIST"),
            send("+OK\r\n1 10\r\n2 10\r\n3 10\r\n.\r\n"),
            Expect("UIDL"),
            send("+OK\r\n1 a\r\n2 b\r\n3 c\r\n.\r\n"),
            Expect("RETR 1"),
            retr(b"one\r\n.\r\n"),
            Expect("RETR 2"),
            retr(&big),
            Expect("RETR 3"),
            retr(b"three\r\n.\r\n"),
            Expect("DELE 1"),
            send("+OK\r\n"),
            Expect("DELE 3"),
            send("+OK\r\n"),
            Expect("QUIT"),
            send("+OK\r\n"),
        ];
        let limits = Limits {
            max_mail: max,
            ..Limits::default()
        };
        let report = fetch(&store, &account, steps, limits).await.0.unwrap();
        assert_eq!((report.new_ids.len(), report.deleted_on_server), (2, 2));
        let warning = report.warning.unwrap();
        let want = format!(
            "message 2 (pop3:b, listed as 10 bytes), {} bytes",
            max + max / 2
        );
        assert!(warning.contains(&want), "{warning}");
        assert!(
            warning.contains(&format!("max_message_size ({max} bytes)")),
            "{warning}"
        );
        assert!(
            !warning.contains("xxxx"),
            "the warning shows content: {warning}"
        );
        assert_eq!(blob_files(dir.path()), (vec![], 0), "max {max}");
        let known = store.known_server_ids(&account.id, "").unwrap();
        assert!(!known.contains("pop3:b"));
    }
}

/// A mail that goes on past twice the limit ends the connection: nothing
/// is deleted (no QUIT), the mails before it are stored.
#[tokio::test]
async fn a_mail_past_twice_the_limit_ends_the_session() {
    let (_dir, store, mut account) = setup();
    account.delete_on_server = true;
    let (big, _) = mail(5000, b'x');
    let steps = vec![
        Expect("LIST"),
        send("+OK\r\n1 10\r\n2 10\r\n.\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 a\r\n2 b\r\n.\r\n"),
        Expect("RETR 1"),
        retr(b"one\r\n.\r\n"),
        Expect("RETR 2"),
        retr(&big),
    ];
    let limits = Limits {
        max_mail: 1000,
        batch_mails: 1,
        ..Limits::default()
    };
    let (r, _) = fetch(&store, &account, steps, limits).await;
    match r {
        Err(Error::Connection { message, .. }) => {
            assert!(
                message.contains("message 2 went on past 2000 bytes"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.count_messages(&account.id).unwrap(), 1);
}

/// A mail listed above the limit is not even asked for.
#[tokio::test]
async fn a_mail_listed_above_the_limit_is_never_retrieved() {
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
    let warning = report.warning.unwrap();
    assert!(
        warning.contains("message 1 (pop3:big), 5000 bytes"),
        "{warning}"
    );
}

/// A RETR that drips a byte every 20 ms: the fetch ends at its deadline
/// with an error that says so, stores nothing and deletes nothing (the
/// script fails on a DELE or QUIT). Without the deadline the drip (10,000
/// bytes) would outlast the test's own timeout.
#[tokio::test]
async fn a_dripping_retr_ends_at_the_deadline() {
    let (_dir, store, mut account) = setup();
    account.delete_on_server = true;
    let mut all = vec![send("+OK ready\r\n")];
    all.extend(login());
    all.extend([
        Expect("LIST"),
        send("+OK\r\n1 10000\r\n.\r\n"),
        Expect("UIDL"),
        send("+OK\r\n1 slow\r\n.\r\n"),
        Expect("RETR 1"),
        send("+OK\r\n"),
        Step::Drip(vec![b'x'; 10_000], Duration::from_millis(20)),
    ]);
    let (stream, _task) = server(all);
    let budget = Budget {
        floor: Duration::from_millis(500),
        min_rate: 1024,
    };
    let (c, _) = Client::connect(stream, Wait::new(READ, budget))
        .await
        .unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        run(
            c,
            &Capabilities::default(),
            &account,
            "pw",
            &store,
            &|_, _| {},
            Limits::default(),
        ),
    )
    .await
    .expect("the dripping RETR was never cut off");
    match r {
        Err(Error::Connection { message, .. }) => {
            assert!(message.starts_with("POP3 server too slow"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.count_messages(&account.id).unwrap(), 0);
}

/// A greeting that drips a byte every 20 ms never trips the read timeout,
/// and its 8 KiB line cap would take minutes: the session's deadline ends
/// it. (The test's own timeout is the failure mode without a deadline.)
#[tokio::test]
async fn a_dripping_greeting_ends_at_the_deadline() {
    let drip = Step::Drip(vec![b'+'; 100_000], Duration::from_millis(20));
    let (stream, _task) = server(vec![drip]);
    let budget = Budget {
        floor: Duration::from_millis(300),
        min_rate: 1024,
    };
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        Client::connect(stream, Wait::new(READ, budget)),
    )
    .await
    .expect("the dripping greeting was never cut off");
    let m = match r {
        Err(Error::Connection { message, .. }) => message,
        other => panic!("{other:?}"),
    };
    assert!(
        m.starts_with("POP3 server too slow: the fetch did not finish within"),
        "{m}"
    );
    assert!(m.contains("[fetch] deadline_floor"), "{m}");
}
