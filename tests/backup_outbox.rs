//! The outbox travels in a backup (docs/BACKUP.md): a mail queued for a
//! retry (its relay was down) and one Postfix refused (failed) before the
//! Backup are in the restored installation's outbox with the same ids,
//! subjects and errors — and the queued one is held by the restore safety
//! reset: failed with the reason, counted in the report's `held` and by
//! `Status`, and never sent from the restored installation, even when its
//! relay is back past the retry time (the original sends it; a customer
//! must not get it twice).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
mod sendkit;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use postfach::dbus::proxy::{MailboxProxy, ManagerProxy};
use zbus::Variant;

use common::fetch::{self as fetchkit, get};
use common::restorekit::{backup, restore};
use common::{create_user, Env, Settings};
use sendkit::{delivered, plain_port, Proxy, Relay};

/// The outbox as the admin lists it: id → (subject, state, error).
async fn outbox(mb: &MailboxProxy<'_>) -> BTreeMap<u64, (String, String, String)> {
    let mut f = HashMap::new();
    f.insert("folder", Variant::from("outbox"));
    let (page, _) = mb.list_messages("", f, 0, 1000).await.unwrap();
    page.iter()
        .map(|d| {
            (
                get::<u64>(d, "id"),
                (get(d, "subject"), get(d, "state"), get(d, "error")),
            )
        })
        .collect()
}

/// Waits (≤ `limit`) until `pred` holds for the outbox; the outbox then.
async fn outbox_until(
    mb: &MailboxProxy<'_>,
    what: &str,
    limit: Duration,
    pred: impl Fn(&BTreeMap<u64, (String, String, String)>) -> bool,
) -> BTreeMap<u64, (String, String, String)> {
    let deadline = Instant::now() + limit;
    loop {
        let o = outbox(mb).await;
        if pred(&o) {
            return o;
        }
        assert!(Instant::now() < deadline, "{what}: {o:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn mail(to: &str, subject: &str) -> HashMap<&'static str, Variant<'static>> {
    let mut m = HashMap::new();
    m.insert("to", Variant::from(vec![to.to_string()]));
    m.insert("subject", Variant::from(subject.to_string()));
    m.insert("text", Variant::from("Guten Tag".to_string()));
    m.insert("signature", Variant::from(false));
    m
}

fn state_is(o: &BTreeMap<u64, (String, String, String)>, id: u64, state: &str) -> bool {
    o.get(&id)
        .is_some_and(|(_, s, e)| s == state && !e.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_carries_the_outbox_and_the_restored_one_holds_the_queued_mail() {
    let env = Env::get();
    let from = create_user(env, "bko");
    let to = create_user(env, "bkoto");
    let mut relay = Proxy::reserve(plain_port()).await;
    let state_a = tempfile::tempdir().unwrap();
    let a = fetchkit::start(state_a.path());
    let conn_a = fetchkit::bus(&a).await;
    let s = Settings::on_dovecot("imap", &from)
        .with("password", &from.password)
        .with("poll_interval", 0u32)
        .with("smtp_host", "127.0.0.1")
        .with("smtp_port", relay.port)
        .with("smtp_encryption", "none")
        .with("smtp_login", false)
        .with("save_sent_copy", false);
    let path = fetchkit::create(&conn_a, s.dbus()).await;
    let mb_a = fetchkit::mailbox(&conn_a).await;

    // Refused for good by Postfix (550 at RCPT): failed.
    relay.up(Relay::Pass).await;
    let rejected = format!("rejected@{}", env.domain);
    let failed = mb_a
        .send_message("", &path, mail(&rejected, "abgelehnt"))
        .await
        .unwrap();
    let limit = Duration::from_secs(60);
    outbox_until(&mb_a, "failed", limit, |o| state_is(o, failed, "failed")).await;
    // The relay down: tried once, back in the queue with the error.
    relay.down();
    let queued = mb_a
        .send_message("", &path, mail(&to.address, "wartet"))
        .await
        .unwrap();
    let before = outbox_until(&mb_a, "queued after a try", limit, |o| {
        state_is(o, queued, "queued")
    })
    .await;
    let tried = Instant::now();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup");
    backup(&conn_a, &file).await.expect("Backup");
    // The original is gone for good: only the restored one can send.
    drop(a);

    let state_b = tempfile::tempdir().unwrap();
    let b = fetchkit::start(state_b.path());
    let conn_b = fetchkit::bus(&b).await;
    let report = restore(&conn_b, &file).await.expect("Restore");
    assert_eq!(get::<u64>(&report, "held"), 1, "{report:?}");
    let mb_b = fetchkit::mailbox(&conn_b).await;
    let after = outbox(&mb_b).await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[&failed], before[&failed], "failed stays as it was");
    let (subject, state, error) = &after[&queued];
    assert_eq!(subject, &before[&queued].0);
    assert_eq!(state, "failed", "the queued mail is held");
    assert_eq!(error, postfach::store::HELD);
    let d = ManagerProxy::new(&conn_b)
        .await
        .unwrap()
        .status()
        .await
        .unwrap();
    let counts: HashMap<String, u64> = get(&d, "outbox");
    assert_eq!(counts["queued"] + counts["sending"], 0, "{counts:?}");
    assert_eq!(counts["failed"], 2, "{counts:?}");

    // Its retry would have been due 30 s after the try (send::policy):
    // with the relay back and that time passed, nothing goes out.
    relay.up(Relay::Pass).await;
    let retry_due = tried + Duration::from_secs(32);
    tokio::time::sleep(retry_due.saturating_duration_since(Instant::now())).await;
    assert_eq!(outbox(&mb_b).await, after, "nothing moved in the outbox");
    assert!(
        delivered(env, &to, 0).await.is_empty(),
        "the restored installation sent the original's queued mail"
    );
}
