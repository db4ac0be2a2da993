//! The hostile mail corpus (tests/common/corpus.rs: the fixtures and some
//! two hundred crafted mails, a 50 MB line and 20 MB of base64 among them)
//! delivered to the run's Dovecot, fetched over IMAP and POP3, and shown
//! through every Mailbox method: each mail is stored byte for byte as the
//! server sent it, every call answers (a clear error at most), the daemon
//! never panics and stays on the bus. Parse time is printed per call kind
//! (slowest mail); the only bound is a hang guard.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
mod sendkit;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use postfach::dbus::proxy::MailboxProxy;
use zbus::{OwnedObjectPath, Variant};

use common::corpus::{corpus, Hostile};
use common::fetch::{self as fetchkit, get, Proto};
use common::Env;

/// A call that takes longer than this hangs (a guard, not a measure).
const HANG: Duration = Duration::from_secs(120);

/// The slowest answer per call kind, for the log.
#[derive(Default)]
struct Slowest(HashMap<&'static str, (Duration, String)>);

impl Slowest {
    fn note(&mut self, call: &'static str, took: Duration, mail: &str) {
        assert!(took < HANG, "{call} on {mail} took {took:?}");
        let e = self.0.entry(call).or_default();
        if took > e.0 {
            *e = (took, mail.to_string());
        }
    }
}

async fn timed<T>(
    slowest: &mut Slowest,
    call: &'static str,
    mail: &str,
    f: impl std::future::Future<Output = T>,
) -> T {
    let start = Instant::now();
    let out = tokio::time::timeout(HANG, f)
        .await
        .unwrap_or_else(|_| panic!("{call} on {mail} hangs"));
    slowest.note(call, start.elapsed(), mail);
    out
}

/// Stored id per corpus mail (by its bytes as `proto` sends them).
async fn stored_ids(
    mb: &MailboxProxy<'_>,
    account: &OwnedObjectPath,
    proto: Proto,
    mails: &[Hostile],
) -> Vec<u64> {
    let mut by_bytes = HashMap::new();
    for m in fetchkit::list_all(mb, account).await {
        let id = get::<u64>(&m, "id");
        let raw = fetchkit::raw(mb, id).await;
        assert!(
            by_bytes.insert(raw, id).is_none(),
            "the same bytes stored twice"
        );
    }
    assert_eq!(by_bytes.len(), mails.len(), "{proto:?}: stored count");
    mails
        .iter()
        .map(|h| {
            let want = fetchkit::as_sent(proto, &h.bytes);
            *by_bytes
                .get(&want)
                .unwrap_or_else(|| panic!("{proto:?}: {:?} is not stored byte for byte", h.name))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hostile_corpus_is_stored_exactly_and_every_mailbox_method_answers() {
    let env = Env::get();
    let mails = corpus(true);
    assert!(mails.len() >= 200, "{} mails", mails.len());
    let mut distinct = std::collections::HashSet::new();
    for h in &mails {
        assert!(distinct.insert(&h.bytes), "{:?} is not distinct", h.name);
    }
    let user = common::create_user(env, "hc");
    for h in &mails {
        common::drop_raw(env, &user, &h.bytes);
    }

    let state = tempfile::tempdir().unwrap();
    let daemon = fetchkit::start(state.path());
    let conn = fetchkit::bus(&daemon).await;
    let mb = fetchkit::mailbox(&conn).await;
    let n = mails.len() as u32;
    let mut slowest = Slowest::default();

    // Fetched over both protocols (two accounts on one mailbox).
    let mut imap_s = fetchkit::settings(Proto::Imap, &user, &user.password, false, 0);
    imap_s.insert("smtp_host", Variant::from("127.0.0.1"));
    imap_s.insert("smtp_port", Variant::from(sendkit::plain_port()));
    imap_s.insert("smtp_encryption", Variant::from("none"));
    imap_s.insert("smtp_login", Variant::from(false));
    let imap = fetchkit::create(&conn, imap_s).await;
    let pop3 = fetchkit::account_for(&conn, Proto::Pop3, &user, false, 0).await;
    for (proto, path) in [(Proto::Imap, &imap), (Proto::Pop3, &pop3)] {
        let acc = fetchkit::account(&conn, path).await;
        let got = timed(&mut slowest, "FetchNow", "all", acc.fetch_now()).await;
        assert_eq!(got.expect("FetchNow"), n, "{proto:?}");
        assert_eq!(acc.last_error().await.unwrap(), "", "{proto:?}");
        daemon.assert_running();
    }
    let pop3_ids = stored_ids(&mb, &pop3, Proto::Pop3, &mails).await;
    assert_eq!(pop3_ids.len(), mails.len());
    let ids = stored_ids(&mb, &imap, Proto::Imap, &mails).await;

    // Every Mailbox method on every mail, as the admin ("").
    let mut sent = Vec::new();
    for (i, (h, &id)) in mails.iter().zip(&ids).enumerate() {
        let name = h.name.as_str();
        let m = timed(&mut slowest, "GetMessage", name, mb.get_message("", id)).await;
        let m = m.unwrap_or_else(|e| panic!("GetMessage {name:?}: {e}"));
        assert_eq!(get::<u64>(&m, "id"), id);
        let raw = timed(&mut slowest, "GetRaw", name, fetchkit::raw(&mb, id)).await;
        assert_eq!(raw, fetchkit::as_sent(Proto::Imap, &h.bytes), "{name:?}");
        let contact = format!("corpus-contact-{i}");
        let r = timed(
            &mut slowest,
            "AssignToContact",
            name,
            mb.assign_to_contact("", id, &contact),
        );
        r.await
            .unwrap_or_else(|e| panic!("AssignToContact {name:?}: {e}"));
        let m = mb.get_message("", id).await.unwrap();
        assert_eq!(get::<String>(&m, "contact"), contact, "{name:?}");
        // The one assigned mail is the only one listed as assigned.
        let mut assigned = HashMap::new();
        assigned.insert("unassigned", Variant::from(false));
        let page = timed(
            &mut slowest,
            "ListMessages",
            name,
            mb.list_messages("", assigned, 0, 10),
        );
        let (page, total) = page.await.unwrap();
        assert_eq!((page.len(), total), (1, 1), "{name:?} as the assigned one");
        assert_eq!(get::<u64>(&page[0], "id"), id, "{name:?}");
        timed(&mut slowest, "Unassign", name, mb.unassign("", id))
            .await
            .unwrap();
        timed(&mut slowest, "SetRead", name, mb.set_read("", id, true))
            .await
            .unwrap();
        if i % 5 == 0 {
            // A reply threads on the hostile Message-ID and References.
            let mut reply = HashMap::new();
            reply.insert("to", Variant::from(vec![user.address.clone()]));
            reply.insert("subject", Variant::from(format!("Re: corpus {i}")));
            reply.insert("text", Variant::from("Antwort"));
            reply.insert("in_reply_to", Variant::from(id.to_string()));
            let r = mb.send_message("", &imap, reply);
            let out = timed(&mut slowest, "SendMessage", name, r).await;
            sent.push(out.unwrap_or_else(|e| panic!("SendMessage in reply to {name:?}: {e}")));
        }
        if i % 10 == 3 {
            let r = mb.delete_message("", id);
            timed(&mut slowest, "DeleteMessage", name, r)
                .await
                .unwrap_or_else(|e| panic!("DeleteMessage {name:?}: {e}"));
        }
    }
    daemon.assert_running();

    // Text search over hostile subjects, senders and recipients.
    for text in [
        "corpus",
        "example",
        "x",
        "\u{fffd}",
        "=?utf-8?",
        "\u{7f}\u{202e}",
    ] {
        let mut f = HashMap::new();
        f.insert("text", Variant::from(text));
        let r = mb.list_messages("", f, 0, 50);
        timed(&mut slowest, "ListMessages text", text, r)
            .await
            .unwrap_or_else(|e| panic!("ListMessages text {text:?}: {e}"));
    }
    // Every reply leaves the outbox (sent through the loopback Postfix).
    for id in sent {
        common::eventually("the reply sent", Duration::from_secs(120), || {
            let mb = mb.clone();
            async move {
                let m = mb.get_message("", id).await.unwrap();
                get::<String>(&m, "state") == "sent"
            }
        })
        .await;
    }
    daemon.assert_running();
    let mut report: Vec<_> = slowest.0.iter().collect();
    report.sort();
    for (call, (took, mail)) in report {
        eprintln!("slowest {call}: {took:?} ({mail})");
    }
}
