//! SMTP and TLS settings a server disagrees with, against the run's real
//! Postfix: a server that breaks TLS session resumption (behind
//! tests/common/resumption_breaker.rs, as Cyrus with
//! `tls_session_timeout: 0` does) and an encryption setting that does not
//! match the port (its implicit-TLS port says nothing until a ClientHello;
//! its clear-text ports greet at once). IMAP and POP3 have the same in
//! tls_resumption_refused.rs and tls_wrong_port.rs.
//!
//! The wrong-port cases use a read timeout far longer than the test may
//! take: a client that waits for the greeting hangs the test (bounded by
//! [`HANG`]) instead of passing slowly. No timing is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;
mod sendkit;

use std::time::Duration;

use common::resumption_breaker::ResumptionBreaker;
use common::{create_user, Env};
use postfach::account::Encryption;
use postfach::net::Timeouts;
use postfach::send::smtp::{Login, Server, Session};
use postfach::send::{deliver, queue_mail, Outcome};
use sendkit::{delivered, plain_port, sender, simple, Kit};

const HANG: Duration = Duration::from_secs(60);

/// Regression: SMTP marked a host that refused a resumed session, but the
/// mail that met the refusal waited for its next retry (30 s and more);
/// every second submission failed like that until the mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_resumption_is_retried_at_once_and_every_mail_goes() {
    let env = Env::get();
    let kit = Kit::new(env);
    let front = ResumptionBreaker::start(env.smtps_port).await;
    let from = create_user(env, "smtpresume");
    let to = create_user(env, "smtpresumeto");
    let a = kit.account(&from, Encryption::Tls, front.port(), true, &[]);
    for i in 1..=3 {
        let subject = format!("resumption {i}");
        let id = queue_mail(&kit.store, &a, &sender(), simple(&to.address, &subject))
            .await
            .unwrap();
        let outcome = deliver(&kit.store, &kit.transport, id).await.unwrap();
        assert!(matches!(outcome, Outcome::Sent(_)), "mail {i}: {outcome:?}");
    }
    assert_eq!(
        front.refused(),
        1,
        "no session was offered: the test proves nothing"
    );
    assert_eq!(front.passed(), 3);
    delivered(env, &to, 3).await;
}

/// The error of opening a session with `encryption` on Postfix's `port`.
async fn open_error(kit: &Kit, encryption: Encryption, port: u16) -> String {
    let env = Env::get();
    let from = create_user(env, "smtpwrongport");
    let a = kit.account(&from, encryption, port, false, &[]);
    let server = Server {
        account: &a,
        tls: &kit.transport.tls,
        timeouts: Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(600),
            ..Timeouts::default()
        },
    };
    let what = format!("{} on port {port}", encryption.as_str());
    let r = tokio::time::timeout(HANG, Session::open(&server, &Login::None))
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after {HANG:?}"));
    match r {
        Ok(_) => panic!("{what}: the session must fail"),
        Err(f) => f.error().to_string(),
    }
}

/// Regression: STARTTLS or clear text against the implicit-TLS port
/// waited the whole read timeout for a greeting.
#[tokio::test]
async fn starttls_or_clear_text_against_the_tls_port_says_choose_tls() {
    let env = Env::get();
    let kit = Kit::new(env);
    for encryption in [Encryption::Starttls, Encryption::None] {
        let e = open_error(&kit, encryption, env.smtps_port).await;
        assert!(
            e.contains("this port expects TLS from the start (implicit TLS) — choose TLS"),
            "{}: {e}",
            encryption.as_str()
        );
    }
}

/// TLS against a clear-text port names the mismatch, not rustls'
/// "received corrupt message of type InvalidContentType".
#[tokio::test]
async fn tls_against_a_clear_text_port_says_try_starttls() {
    let env = Env::get();
    let kit = Kit::new(env);
    for port in [env.smtp_port, plain_port()] {
        let e = open_error(&kit, Encryption::Tls, port).await;
        assert!(
            e.contains(&format!("the server does not speak TLS on port {port}"))
                && e.contains("try STARTTLS or the TLS port"),
            "port {port}: {e}"
        );
    }
}
