//! The outbox half of the no-loss/no-double checks (crash loop, network
//! faults): mails queued with SendMessage to a sink user, and at the end
//! each reached Postfix at most once — a `sent` one exactly once, a
//! `failed` one (interrupted after its body began, docs/SENDING.md) at
//! most once.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use zbus::{Connection, OwnedObjectPath, Variant};

use super::fetch::{self as fetchkit, get};
use super::{Env, MailUser};

/// Queues a mail of about 50 KB (so a kill can land mid-DATA) from
/// `account` to `to`. The answer is ignored: if the daemon dies first the
/// mail may or may not be queued, and the end check goes by what the
/// outbox lists.
pub async fn queue(conn: &Connection, account: &OwnedObjectPath, to: &str, subject: &str) {
    let mb = fetchkit::mailbox(conn).await;
    let mut m = HashMap::new();
    m.insert("to", Variant::from(vec![to.to_string()]));
    m.insert("subject", Variant::from(subject.to_string()));
    m.insert(
        "text",
        Variant::from("Outbox filler line.\r\n".repeat(2500)),
    );
    m.insert("signature", Variant::from(false));
    let _ = mb.send_message("", account, m).await;
}

/// The outbox (subject -> state) once no mail is queued or sending, at
/// most `limit` later.
pub async fn settled(conn: &Connection, limit: Duration) -> BTreeMap<String, String> {
    let mb = fetchkit::mailbox(conn).await;
    let start = Instant::now();
    loop {
        let mut f = HashMap::new();
        f.insert("folder", Variant::from("outbox"));
        let (page, _) = mb
            .list_messages("", f, 0, 1000)
            .await
            .expect("ListMessages");
        let states: BTreeMap<String, String> = page
            .iter()
            .map(|d| (get::<String>(d, "subject"), get::<String>(d, "state")))
            .collect();
        let busy = states.values().any(|s| s == "queued" || s == "sending");
        if !busy || start.elapsed() > limit {
            return states;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The sink's delivered mails: subject -> how many.
pub fn sink_counts(env: &Env, sink: &MailUser) -> BTreeMap<String, u32> {
    let dir = sink.maildir(env);
    let mut counts = BTreeMap::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries {
            let bytes = std::fs::read(e.expect("a maildir entry").path()).expect("read a mail");
            let text = String::from_utf8_lossy(&bytes);
            if let Some(s) = text.lines().find_map(|l| l.strip_prefix("Subject: ")) {
                *counts.entry(s.trim().to_string()).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// What the outbox check saw.
#[derive(Debug, Default)]
pub struct Figures {
    pub mails: usize,
    pub sent: usize,
    pub failed: usize,
    pub reached: usize,
    pub twice: usize,
}

/// Waits for the outbox to settle and the sent mails to arrive, then
/// asserts: none reached the sink twice, none stuck, each `sent` one
/// arrived.
pub async fn check(conn: &Connection, env: &Env, sink: &MailUser) -> Figures {
    let outbox = settled(conn, Duration::from_secs(120)).await;
    let start = Instant::now();
    let mut counts = sink_counts(env, sink);
    // Postfix delivers through its queue: wait until each sent one is in.
    while outbox
        .iter()
        .any(|(s, st)| st == "sent" && !counts.contains_key(s))
        && start.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
        counts = sink_counts(env, sink);
    }
    let twice: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "outbox mails sent twice: {twice:?}");
    for (subject, state) in &outbox {
        assert!(
            state == "sent" || state == "failed",
            "{subject} still {state}"
        );
        if state == "sent" {
            assert_eq!(
                counts.get(subject),
                Some(&1),
                "{subject}: sent, not delivered"
            );
        }
    }
    let by_state = |s: &str| outbox.values().filter(|v| *v == s).count();
    Figures {
        mails: outbox.len(),
        sent: by_state("sent"),
        failed: by_state("failed"),
        reached: counts.len(),
        twice: twice.len(),
    }
}
