//! Hostile SMTP servers against the outbox's delivery: a scripted server
//! on loopback that goes silent, defers forever, drops the connection
//! after the final dot, answers the dot with a megabyte of reply, or
//! refuses the STARTTLS it offered. Each case must end in a clear outbox
//! state (`src/send/policy.rs`) and never hand the server the same mail
//! twice: the server counts the bodies it received.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sendkit;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postfach::account::Encryption;
use postfach::send::queue::unix_now;
use postfach::send::{deliver, policy, queue_mail, Outcome};
use postfach::store::{OutboxRecord, OutboxState};

use common::scripted::{self, Conn};
use common::{create_user, Env};
use sendkit::{sender, simple, Kit};

/// What the scripted server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    /// Accept and say nothing, ever; read until the client closes.
    Silent,
    /// A 4xx at one step of every session; the step moves on with each
    /// connection: greeting, EHLO, MAIL, RCPT, DATA, the final dot.
    Defer,
    /// Take the whole body and its final dot, then close the connection
    /// without a reply.
    CutAfterDot,
    /// Answer the final dot with about 1 MB of `250-` lines, then `250`.
    HugeReply,
    /// Offer STARTTLS and AUTH, then refuse STARTTLS with 454 (a path
    /// that strips TLS).
    RefuseTls,
}

/// The steps [`Script::Defer`] refuses, in order, and what it says.
const DEFERRALS: [&str; 6] = [
    "421 4.3.2 hostile: service not available, try later",
    "421 4.7.0 hostile: too busy for EHLO",
    "450 4.7.1 hostile: greylisted, try again later",
    "450 4.2.0 hostile: mailbox busy",
    "451 4.3.0 hostile: no DATA now",
    "451 4.3.0 hostile: queue full after the dot",
];

/// What the server saw, over all its connections.
#[derive(Debug, Default)]
struct Seen {
    connections: AtomicUsize,
    /// Connections that ended because the client closed (EOF or reset).
    closed_by_client: AtomicUsize,
    /// Complete bodies received (DATA transactions up to the final dot).
    bodies: AtomicUsize,
    /// Bodies answered with 250.
    accepted: AtomicUsize,
    commands: Mutex<Vec<String>>,
}

/// A scripted server on loopback (tests/common/scripted), serving every
/// connection by `script`.
fn hostile(script: Script) -> (u16, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let (port, _lines) = scripted::listen(move |conn| {
        let n = s.connections.fetch_add(1, Ordering::SeqCst);
        serve(conn, script, n, &s);
    });
    (port, seen)
}

fn serve(mut c: Conn, script: Script, n: usize, seen: &Seen) {
    if script == Script::Silent {
        c.drain();
        seen.closed_by_client.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let defer = |step: usize| script == Script::Defer && n % DEFERRALS.len() == step;
    let say = |step: usize, ok: &'static str| {
        if defer(step) {
            format!("{}\r\n", DEFERRALS[step])
        } else {
            ok.to_string()
        }
    };
    if !c.send(say(0, "220 hostile ESMTP\r\n").as_bytes()) {
        return;
    }
    loop {
        let Some(line) = c.line() else {
            seen.closed_by_client.fetch_add(1, Ordering::SeqCst);
            return;
        };
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        seen.commands.lock().unwrap().push(verb.clone());
        let answer = match verb.as_str() {
            "EHLO" | "HELO" if script == Script::RefuseTls => {
                "250-hostile\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n".to_string()
            }
            "EHLO" | "HELO" => say(1, "250-hostile\r\n250 8BITMIME\r\n"),
            "STARTTLS" if script == Script::RefuseTls => {
                "454 4.7.0 hostile: TLS not available\r\n".to_string()
            }
            "MAIL" => say(2, "250 2.1.0 ok\r\n"),
            "RCPT" => say(3, "250 2.1.5 ok\r\n"),
            "DATA" if defer(4) => say(4, ""),
            "DATA" => {
                if !c.send(b"354 end with <CRLF>.<CRLF>\r\n") {
                    return;
                }
                if !read_body(&mut c) {
                    seen.closed_by_client.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                seen.bodies.fetch_add(1, Ordering::SeqCst);
                match script {
                    Script::CutAfterDot => return, // dropped: closed, no reply
                    Script::HugeReply => huge_reply(),
                    _ if defer(5) => say(5, ""),
                    _ => {
                        seen.accepted.fetch_add(1, Ordering::SeqCst);
                        "250 2.0.0 Ok: queued as HOSTILE1\r\n".to_string()
                    }
                }
            }
            "QUIT" => {
                c.send(b"221 2.0.0 bye\r\n");
                return;
            }
            "RSET" | "NOOP" => "250 2.0.0 ok\r\n".to_string(),
            _ => "502 5.5.2 not here\r\n".to_string(),
        };
        if !c.send(answer.as_bytes()) {
            // The client gave up on the reply (HugeReply) and closed.
            seen.closed_by_client.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
}

/// Read the body up to its final dot; false if the connection ended first.
fn read_body(c: &mut Conn) -> bool {
    while let Some(line) = c.quiet_line() {
        if line == "." {
            return true;
        }
    }
    false
}

/// About 1 MB of continuation lines (each under 1000 bytes, as RFC 5321
/// §4.5.3.1.5 allows), then the final `250` line.
fn huge_reply() -> String {
    let line = format!("250-{}\r\n", "x".repeat(500));
    let mut r = line.repeat((1 << 20) / line.len() + 1);
    r.push_str("250 2.0.0 Ok: queued as HOSTILE2\r\n");
    r
}

/// A store with an account sending through the scripted server, and one
/// queued mail.
async fn queued(port: u16, enc: Encryption, read: Duration) -> (Kit, u64) {
    let env = Env::get();
    let mut kit = Kit::new(env);
    kit.transport.timeouts.read = read;
    kit.transport.timeouts.connect = read;
    let from = create_user(env, "sender");
    let a = kit.account(&from, enc, port, false, &[]);
    let id = queue_mail(
        &kit.store,
        &a,
        &sender(),
        simple("x@example.com", "hostile"),
    )
    .await
    .unwrap();
    (kit, id)
}

/// One attempt; the guard only turns a hang into a test failure.
async fn attempt(kit: &Kit, id: u64) -> Outcome {
    let guard = Duration::from_secs(120);
    tokio::time::timeout(guard, deliver(&kit.store, &kit.transport, id))
        .await
        .expect("the delivery must end")
        .unwrap()
}

fn record(kit: &Kit, id: u64) -> OutboxRecord {
    kit.store.outbox_record(id).unwrap().unwrap()
}

/// Wait (bounded) until the server has seen `n` connections closed by the
/// client.
async fn closed(seen: &Seen, n: usize) {
    for _ in 0..600 {
        if seen.closed_by_client.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} of {n} connections closed by the client",
        seen.closed_by_client.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greeting_that_never_comes_times_out_queues_and_closes() {
    for (i, enc) in [Encryption::None, Encryption::Starttls, Encryption::Tls]
        .into_iter()
        .enumerate()
    {
        let (port, seen) = hostile(Script::Silent);
        let (kit, id) = queued(port, enc, Duration::from_secs(2)).await;
        let Outcome::Retry(_, e) = attempt(&kit, id).await else {
            panic!("{enc:?}: not retried");
        };
        assert!(
            e.contains(" 2 s"),
            "{enc:?}: the error names the timeout: {e}"
        );
        let rec = record(&kit, id);
        assert_eq!(
            (rec.state, rec.attempts, rec.body_started),
            (OutboxState::Queued, 1, false),
            "{enc:?}"
        );
        assert_eq!(rec.error, e);
        // A clear-text session probes a silent server once for implicit
        // TLS (net::greeting) on a second connection.
        let want = if enc == Encryption::Tls { 1 } else { 2 };
        closed(&seen, want).await;
        assert_eq!(seen.connections.load(Ordering::SeqCst), want, "case {i}");
        assert_eq!(seen.bodies.load(Ordering::SeqCst), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_at_every_step_stays_queued_until_it_gives_up() {
    let (port, seen) = hostile(Script::Defer);
    let (kit, id) = queued(port, Encryption::None, Duration::from_secs(20)).await;
    for (i, deferral) in DEFERRALS.iter().enumerate() {
        let before = unix_now();
        let outcome = attempt(&kit, id).await;
        let after = unix_now();
        let rec = record(&kit, id);
        let attempts = u32::try_from(i + 1).unwrap();
        assert_eq!(
            (rec.state, rec.attempts),
            (OutboxState::Queued, attempts),
            "{deferral}: {outcome:?}"
        );
        let code = &deferral[..3];
        assert!(rec.error.contains(code), "{deferral}: {}", rec.error);
        assert!(
            rec.error.contains("hostile:"),
            "the server's text: {}",
            rec.error
        );
        let wait = i64::try_from(policy::backoff(attempts).as_secs()).unwrap();
        assert!(
            (before + wait..=after + wait).contains(&rec.next_at),
            "backoff after {attempts} attempts: {} not {wait} s after {before}",
            rec.next_at
        );
        assert_eq!(outcome, Outcome::Retry(rec.next_at, rec.error.clone()));
    }
    // Past GIVE_UP since it was queued: the next deferral fails it, with
    // the last reply.
    let mut rec = record(&kit, id);
    rec.queued_at = unix_now() - i64::try_from(policy::GIVE_UP.as_secs()).unwrap() - 60;
    kit.store
        .set_outbox_record(id, OutboxState::Queued, &rec)
        .unwrap();
    let outcome = attempt(&kit, id).await;
    let rec = record(&kit, id);
    assert_eq!((rec.state, rec.attempts), (OutboxState::Failed, 7));
    assert!(
        rec.error.contains("gave up after 7 attempts"),
        "{}",
        rec.error
    );
    assert!(
        rec.error.contains(&DEFERRALS[0][4..]),
        "the last reply: {}",
        rec.error
    );
    assert_eq!(outcome, Outcome::Failed(rec.error.clone()));
    // Failed is final: no further session.
    assert_eq!(attempt(&kit, id).await, Outcome::Skipped);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 7);
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 0);
    // Only the after-the-dot deferral got a body, and the server said 451.
    assert_eq!(seen.bodies.load(Ordering::SeqCst), 1);
}

/// Two attempts at a mail the server may have; the second must not start.
async fn uncertain(script: Script) -> (Kit, u64, Arc<Seen>, String) {
    let (port, seen) = hostile(script);
    let (kit, id) = queued(port, Encryption::None, Duration::from_secs(20)).await;
    let Outcome::Failed(e) = attempt(&kit, id).await else {
        panic!("{script:?}: not failed");
    };
    let rec = record(&kit, id);
    assert_eq!(
        (rec.state, rec.attempts, rec.body_started),
        (OutboxState::Failed, 1, true)
    );
    assert_eq!(rec.error, e);
    assert!(e.contains(policy::NOT_RESENT), "{e}");
    assert_eq!(attempt(&kit, id).await, Outcome::Skipped);
    assert_eq!(record(&kit, id), rec, "the second call changed nothing");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    assert_eq!(
        seen.bodies.load(Ordering::SeqCst),
        1,
        "one DATA transaction"
    );
    (kit, id, seen, e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_after_the_dot_fails_the_mail_once() {
    let (_kit, _id, _seen, e) = uncertain(Script::CutAfterDot).await;
    assert!(e.contains("may have accepted it"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_reply_to_the_dot_is_cut_off_and_not_resent() {
    let (_kit, _id, seen, e) = uncertain(Script::HugeReply).await;
    // lettre stops reading a reply at 100 kB: the client closes instead of
    // taking the megabyte in.
    assert!(e.contains("SMTP response too large"), "{e}");
    assert!(e.len() < 2 * postfach::send::smtp::MAX_TEXT, "{e}");
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dripping_greeting_before_starttls_times_out_as_a_whole() {
    // A greeting line every 1.5 s: each within the 2 s read timeout, the
    // reply never complete. Timed per line, the prelude would take 100
    // lines (150 s) to give up.
    let lines = Arc::new(AtomicUsize::new(0));
    let sent = lines.clone();
    let (port, _) = scripted::listen(move |mut c| {
        while c.send(b"220-hostile\r\n") {
            sent.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1500));
        }
    });
    let (kit, id) = queued(port, Encryption::Starttls, Duration::from_secs(2)).await;
    let Outcome::Retry(_, e) = attempt(&kit, id).await else {
        panic!("not retried");
    };
    assert!(
        e.contains("no complete answer from the SMTP server in 2 s"),
        "{e}"
    );
    assert_eq!(record(&kit, id).state, OutboxState::Queued);
    let n = lines.load(Ordering::SeqCst);
    assert!(
        n < 10,
        "gave up after {n} lines, not after the whole reply's time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_starttls_keeps_the_mail_queued_and_the_password_home() {
    let (port, seen) = hostile(Script::RefuseTls);
    let env = Env::get();
    let kit = Kit::new(env);
    let from = create_user(env, "sender");
    let a = kit.account(&from, Encryption::Starttls, port, true, &[]);
    let id = queue_mail(&kit.store, &a, &sender(), simple("x@example.com", "x"))
        .await
        .unwrap();
    let Outcome::Retry(_, e) = attempt(&kit, id).await else {
        panic!("not retried");
    };
    assert!(e.contains("454"), "{e}");
    assert_eq!(record(&kit, id).state, OutboxState::Queued);
    let heard = seen.commands.lock().unwrap().clone();
    assert!(
        heard
            .iter()
            .all(|c| ["EHLO", "STARTTLS", "QUIT"].contains(&c.as_str())),
        "nothing past STARTTLS in clear: {heard:?}"
    );
    assert!(heard.contains(&"STARTTLS".to_string()), "{heard:?}");
    assert_eq!(seen.bodies.load(Ordering::SeqCst), 0);
}
