//! The outbox against the real Postfix: a refusal (5xx) fails the mail
//! with the server's text, a deferral (4xx) and a server that is down
//! queue it again, a mail the server may have is never sent twice, a
//! restart resumes the queue, a kill -9 while sending resends only what
//! the server cannot have, and a signature error refuses the mail before
//! anything is queued.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sendkit;

use std::os::unix::process::ExitStatusExt;

use mail_parser::MessageParser;
use postfach::account::{Encryption, SettingValue};
use postfach::error::Error;
use postfach::send::message::MessageValue;
use postfach::send::policy::{self, NOT_RESENT};
use postfach::send::queue::unix_now;
use postfach::send::{deliver, queue_mail, resume, Outcome};
use postfach::signature::{Employee, Signature};
use postfach::store::{ListQuery, OutboxState, Visibility, OUTBOX};

use common::{create_user, Env, MailUser};
use sendkit::{delivered, draft, list, plain_port, s, sender, simple, Kit, Proxy, Relay};

fn subjects(mails: &[Vec<u8>]) -> Vec<String> {
    let mut out: Vec<String> = mails
        .iter()
        .map(|m| {
            let m = MessageParser::default().parse(m.as_slice()).unwrap();
            m.subject().unwrap_or("").to_string()
        })
        .collect();
    out.sort();
    out
}

/// Send a last mail and wait for it: whatever was to arrive before it
/// through the same Postfix has had its chance.
async fn sentinel(kit: &Kit, from: &MailUser, to: &MailUser, n: usize) -> Vec<Vec<u8>> {
    let a = kit.account(from, Encryption::None, plain_port(), false, &[]);
    let id = queue_mail(
        &kit.store,
        &a,
        &sender(),
        simple(&to.address, "zz sentinel"),
    )
    .await
    .unwrap();
    assert!(matches!(
        deliver(&kit.store, &kit.transport, id).await.unwrap(),
        Outcome::Sent(_)
    ));
    delivered(Env::get(), to, n).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_fails_the_mail_with_the_servers_text() {
    let env = Env::get();
    let kit = Kit::new(env);
    let from = create_user(env, "sender");
    let to = create_user(env, "rcpt");
    let a = kit.account(&from, Encryption::Starttls, env.smtp_port, true, &[]);
    let rejected = format!("rejected@{}", env.domain);
    let d = draft(vec![
        ("to", list(&[&to.address, &rejected])),
        ("subject", s("refused")),
        ("signature", MessageValue::Bool(false)),
    ]);
    let id = queue_mail(&kit.store, &a, &sender(), d).await.unwrap();
    let Outcome::Failed(e) = deliver(&kit.store, &kit.transport, id).await.unwrap() else {
        panic!("not failed")
    };
    assert!(e.contains("refused the mail: 550 5.1.1 <rejected@"), "{e}");
    assert!(e.contains("mailbox unavailable"), "{e}");
    assert!(!e.contains(&from.password));
    let rec = kit.store.outbox_record(id).unwrap().unwrap();
    assert_eq!(
        (rec.state, rec.error.as_str()),
        (OutboxState::Failed, e.as_str())
    );
    // Failed is final.
    assert_eq!(
        deliver(&kit.store, &kit.transport, id).await.unwrap(),
        Outcome::Skipped
    );
    // Nobody got the refused mail, not even the accepted recipient.
    assert_eq!(
        subjects(&sentinel(&kit, &from, &to, 1).await),
        ["zz sentinel"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferrals_and_bad_logins_stay_queued_with_backoff() {
    let env = Env::get();
    let kit = Kit::new(env);
    let from = create_user(env, "sender");
    let a = kit.account(&from, Encryption::Tls, env.smtps_port, true, &[]);
    let deferred = format!("deferred@{}", env.domain);
    let id = queue_mail(&kit.store, &a, &sender(), simple(&deferred, "later"))
        .await
        .unwrap();
    let before = unix_now();
    let Outcome::Retry(at, e) = deliver(&kit.store, &kit.transport, id).await.unwrap() else {
        panic!("not retried")
    };
    assert!(e.contains("deferred the mail: 450 4.2.1"), "{e}");
    assert!(
        at >= before + policy::FIRST_RETRY.as_secs() as i64,
        "{at} {before}"
    );
    let rec = kit.store.outbox_record(id).unwrap().unwrap();
    assert_eq!(
        (rec.state, rec.attempts, rec.next_at),
        (OutboxState::Queued, 1, at)
    );
    let Outcome::Retry(at2, _) = deliver(&kit.store, &kit.transport, id).await.unwrap() else {
        panic!("not retried")
    };
    assert!(at2 - unix_now() >= 59, "the second wait doubles: {at2}");

    let mut wrong = create_user(env, "sender");
    wrong.password = "not-the-password-4711".into();
    let b = kit.account(&wrong, Encryption::Tls, env.smtps_port, true, &[]);
    let id = queue_mail(&kit.store, &b, &sender(), simple("x@example.com", "x"))
        .await
        .unwrap();
    let Outcome::Retry(_, e) = deliver(&kit.store, &kit.transport, id).await.unwrap() else {
        panic!("not retried")
    };
    assert!(e.contains("refused the SMTP login: 535"), "{e}");
    assert!(!e.contains("not-the-password-4711"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_up_delivers_exactly_once() {
    let env = Env::get();
    let kit = Kit::new(env);
    let from = create_user(env, "sender");
    let to = create_user(env, "rcpt");
    let mut proxy = Proxy::reserve(plain_port()).await;
    let a = kit.account(&from, Encryption::None, proxy.port, false, &[]);
    let id = queue_mail(&kit.store, &a, &sender(), simple(&to.address, "once"))
        .await
        .unwrap();
    let Outcome::Retry(_, e) = deliver(&kit.store, &kit.transport, id).await.unwrap() else {
        panic!("not retried")
    };
    assert!(e.contains("connection refused"), "{e}");
    assert_eq!(
        kit.store.outbox_record(id).unwrap().unwrap().state,
        OutboxState::Queued
    );
    proxy.up(Relay::Pass).await;
    assert!(matches!(
        deliver(&kit.store, &kit.transport, id).await.unwrap(),
        Outcome::Sent(_)
    ));
    assert_eq!(
        deliver(&kit.store, &kit.transport, id).await.unwrap(),
        Outcome::Skipped
    );
    let rec = kit.store.outbox_record(id).unwrap().unwrap();
    assert_eq!((rec.state, rec.attempts), (OutboxState::Sent, 2));
    assert_eq!(
        subjects(&sentinel(&kit, &from, &to, 2).await),
        ["once", "zz sentinel"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_the_server_may_have_is_not_sent_again() {
    let env = Env::get();
    let kit = Kit::new(env);
    let from = create_user(env, "sender");
    let to = create_user(env, "rcpt");
    let mut proxy = Proxy::reserve(plain_port()).await;
    proxy.up(Relay::CutAfterDot).await;
    let a = kit.account(&from, Encryption::None, proxy.port, false, &[]);
    let id = queue_mail(&kit.store, &a, &sender(), simple(&to.address, "maybe"))
        .await
        .unwrap();
    let Outcome::Failed(e) = deliver(&kit.store, &kit.transport, id).await.unwrap() else {
        panic!("not failed")
    };
    assert!(
        e.contains("may have accepted it") && e.ends_with(NOT_RESENT),
        "{e}"
    );
    assert_eq!(
        deliver(&kit.store, &kit.transport, id).await.unwrap(),
        Outcome::Skipped
    );
    // Postfix did have it: it arrives, once.
    assert_eq!(
        subjects(&sentinel(&kit, &from, &to, 2).await),
        ["maybe", "zz sentinel"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_the_queue() {
    let env = Env::get();
    let mut kit = Kit::new(env);
    let from = create_user(env, "sender");
    let to = create_user(env, "rcpt");
    let mut proxy = Proxy::reserve(plain_port()).await;
    let a = kit.account(&from, Encryption::None, proxy.port, false, &[]);
    let mut ids = Vec::new();
    for subject in ["a queued", "b interrupted", "c handed over"] {
        ids.push(
            queue_mail(&kit.store, &a, &sender(), simple(&to.address, subject))
                .await
                .unwrap(),
        );
    }
    assert!(matches!(
        deliver(&kit.store, &kit.transport, ids[0]).await.unwrap(),
        Outcome::Retry(..)
    ));
    // The daemon stopped during the attempts of b (before its body) and c
    // (after the body began): the records as the attempt left them.
    let now = unix_now();
    let b = policy::start(&kit.store.outbox_record(ids[1]).unwrap().unwrap(), now);
    kit.store
        .set_outbox_record(ids[1], OutboxState::Queued, &b)
        .unwrap();
    let c = policy::body_started(&policy::start(
        &kit.store.outbox_record(ids[2]).unwrap().unwrap(),
        now,
    ));
    kit.store
        .set_outbox_record(ids[2], OutboxState::Queued, &c)
        .unwrap();

    kit = kit.reopen();
    let due = resume(&kit.store, unix_now()).unwrap();
    let mut due_ids: Vec<u64> = due.iter().map(|p| p.id).collect();
    due_ids.sort();
    assert_eq!(due_ids, [ids[0], ids[1]]);
    assert!(due.iter().all(|p| p.account == a.id));
    let c = kit.store.outbox_record(ids[2]).unwrap().unwrap();
    assert_eq!(c.state, OutboxState::Failed);
    assert!(c.error.contains(NOT_RESENT), "{}", c.error);

    proxy.up(Relay::Pass).await;
    for p in &due {
        assert!(matches!(
            deliver(&kit.store, &kit.transport, p.id).await.unwrap(),
            Outcome::Sent(_)
        ));
    }
    assert!(resume(&kit.store, unix_now()).unwrap().is_empty());
    assert_eq!(
        subjects(&sentinel(&kit, &from, &to, 3).await),
        ["a queued", "b interrupted", "zz sentinel"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_error_refuses_the_mail_before_it_is_queued() {
    let env = Env::get();
    let kit = Kit::new(env);
    let from = create_user(env, "sender");
    let a = kit.account(&from, Encryption::None, plain_port(), false, &[]);
    let outbox_total = || {
        let q = ListQuery::new(Visibility::All, OUTBOX);
        kit.store.list_messages(&q).unwrap().1
    };
    let sig = Signature::new("@Vorname@", "<p>@Vorname@</p>@Bild(1,10,10)@").unwrap();
    kit.store.set_signature("t1", "", &sig).unwrap();
    let signed = || draft(vec![("to", list(&["x@example.com"])), ("text", s("Hallo"))]);
    // No employee linked to the user.
    let e = queue_mail(&kit.store, &a, &sender(), signed())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no employee is linked"), "{e}");
    // An employee without picture 1.
    let f = [("Vorname".to_string(), SettingValue::Str("Max".into()))];
    kit.store
        .set_employee("t1", "mm", &Employee::new(&f, Vec::new()).unwrap())
        .unwrap();
    let e = queue_mail(&kit.store, &a, &sender(), signed())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("has no image 1"), "{e}");
    assert_eq!(outbox_total(), 0, "nothing was queued");
    assert!(resume(&kit.store, unix_now()).unwrap().is_empty());
    // Without the signature the mail goes.
    let d = draft(vec![
        ("to", list(&["x@example.com"])),
        ("signature", MessageValue::Bool(false)),
    ]);
    queue_mail(&kit.store, &a, &sender(), d).await.unwrap();
    assert_eq!(outbox_total(), 1);
}

/// `smtp_host` emptied, as an admin may do after accounts were created.
fn clear_smtp_host(kit: &Kit, id: &str) {
    kit.store
        .update_account(id, |cur| {
            let mut next = cur.clone();
            next.smtp_host = String::new();
            Ok((next, Default::default()))
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_without_smtp_server_cannot_send() {
    let env = Env::get();
    let kit = Kit::new(env);
    let from = create_user(env, "sender");
    let a = kit.account(&from, Encryption::None, plain_port(), false, &[]);
    // Queued while it had a server, then the server was cleared: the
    // mail waits, queued, for the server to be set again.
    let id = queue_mail(&kit.store, &a, &sender(), simple("x@example.com", "x"))
        .await
        .unwrap();
    clear_smtp_host(&kit, &a.id);
    let Outcome::Retry(_, e) = deliver(&kit.store, &kit.transport, id).await.unwrap() else {
        panic!("not retried")
    };
    assert!(e.contains("no SMTP server is set"), "{e}");
    assert_eq!(
        kit.store.outbox_record(id).unwrap().unwrap().state,
        OutboxState::Queued
    );
    // A new mail is refused before it is queued.
    let a = kit.store.account(&a.id).unwrap().unwrap();
    let e = queue_mail(&kit.store, &a, &sender(), simple("x@example.com", "y"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument { key, .. } if key == "smtp_host"),
        "{e:?}"
    );
    let q = ListQuery::new(Visibility::All, OUTBOX);
    assert_eq!(kit.store.list_messages(&q).unwrap().1, 1, "only the first");
}

/// The process `kill9_while_sending` kills: one delivery of the outbox
/// mail named by the environment, from the store named there. Run only
/// as that child (`--ignored`), never on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of the kill -9 tests"]
async fn kill9_child_delivers() {
    let dir = std::env::var("POSTFACH_TEST_SEND_STORE").unwrap();
    let id: u64 = std::env::var("POSTFACH_TEST_SEND_ID")
        .unwrap()
        .parse()
        .unwrap();
    let store = std::sync::Arc::new(postfach::store::Store::open(dir.as_ref()).unwrap());
    let transport = sendkit::transport(Env::get());
    // The parent kills this process while the attempt hangs in the relay.
    let outcome = deliver(&store, &transport, id).await;
    panic!("the delivery ended before the kill: {outcome:?}");
}

/// Queue a mail, deliver it in a child process through a relay in `mode`,
/// kill -9 the child once the relay holds, and reopen the store.
async fn kill9_while_sending(mode: Relay) -> (Kit, MailUser, MailUser, u64, Proxy) {
    let env = Env::get();
    let kit = Kit::new(env);
    let from = create_user(env, "sender");
    let to = create_user(env, "rcpt");
    let mut proxy = Proxy::reserve(plain_port()).await;
    proxy.up(mode).await;
    let a = kit.account(&from, Encryption::None, proxy.port, false, &[]);
    let id = queue_mail(&kit.store, &a, &sender(), simple(&to.address, "kill9"))
        .await
        .unwrap();
    let (dir, transport) = kit.close();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "kill9_child_delivers",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("POSTFACH_TEST_SEND_STORE", dir.path())
        .env("POSTFACH_TEST_SEND_ID", id.to_string())
        .spawn()
        .unwrap();
    let guard = std::time::Duration::from_secs(120);
    let held = tokio::time::timeout(guard, proxy.held.notified()).await;
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    held.expect("the child's delivery reached the relay's hold");
    assert_eq!(status.signal(), Some(9), "killed, not ended: {status:?}");
    proxy.down();
    (Kit::open(dir, transport), from, to, id, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_before_the_body_sends_the_mail_after_restart() {
    let (kit, from, to, id, mut proxy) = kill9_while_sending(Relay::HoldAtData).await;
    let rec = kit.store.outbox_record(id).unwrap().unwrap();
    assert_eq!((rec.state, rec.body_started), (OutboxState::Sending, false));
    let due = resume(&kit.store, unix_now()).unwrap();
    assert_eq!(due.iter().map(|p| p.id).collect::<Vec<_>>(), [id]);
    proxy.up(Relay::Pass).await;
    assert!(matches!(
        deliver(&kit.store, &kit.transport, id).await.unwrap(),
        Outcome::Sent(_)
    ));
    assert_eq!(kit.store.outbox_record(id).unwrap().unwrap().attempts, 2);
    assert_eq!(
        subjects(&sentinel(&kit, &from, &to, 2).await),
        ["kill9", "zz sentinel"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_after_the_dot_fails_the_mail_and_never_resends_it() {
    let (kit, from, to, id, _proxy) = kill9_while_sending(Relay::HoldAfterDot).await;
    let rec = kit.store.outbox_record(id).unwrap().unwrap();
    assert_eq!((rec.state, rec.body_started), (OutboxState::Sending, true));
    assert!(resume(&kit.store, unix_now()).unwrap().is_empty());
    let rec = kit.store.outbox_record(id).unwrap().unwrap();
    assert_eq!(rec.state, OutboxState::Failed);
    assert!(rec.error.ends_with(NOT_RESENT), "{}", rec.error);
    assert_eq!(
        deliver(&kit.store, &kit.transport, id).await.unwrap(),
        Outcome::Skipped
    );
    // Postfix had it: it arrived, once.
    assert_eq!(
        subjects(&sentinel(&kit, &from, &to, 2).await),
        ["kill9", "zz sentinel"]
    );
}
