//! The encryption setting and the port disagree: errors an admin can act
//! on, and no waiting for a greeting that cannot come. Against the run's
//! real Dovecot: its implicit-TLS ports (IMAPS, POP3S) say nothing until a
//! ClientHello; its clear-text ports greet at once.
//!
//! The read timeout here is far longer than the test may take: a client
//! that waits for the greeting on a TLS port hangs the test (bounded by
//! [`HANG`]) instead of passing slowly. No timing is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::{Env, Settings};
use postfach::account::Account;
use postfach::net::{self, Timeouts, TlsContext};

const HANG: Duration = Duration::from_secs(60);

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(10),
        read: Duration::from_secs(600),
        ..Timeouts::default()
    }
}

fn account(kind: &str, port: u16, encryption: &str) -> Account {
    let pairs = Settings::new()
        .with("kind", kind)
        .with("host", "localhost")
        .with("port", port)
        .with("encryption", encryption)
        .with("address", "anna@wrong-port.test")
        .pairs();
    Account::create("wrongport".into(), &pairs).unwrap().0
}

fn tls() -> TlsContext {
    TlsContext::new(Some(&Env::get().ca)).unwrap()
}

async fn imap_error(port: u16, encryption: &str) -> String {
    let a = account("imap", port, encryption);
    let r = tokio::time::timeout(
        HANG,
        postfach::imap::session::connect(&a, &tls(), &timeouts()),
    )
    .await
    .unwrap_or_else(|_| panic!("{encryption} on port {port}: still waiting after {HANG:?}"));
    match r {
        Ok(_) => panic!("{encryption} on port {port}: the connection must fail"),
        Err(e) => e.to_string(),
    }
}

async fn pop3_error(port: u16, encryption: &str) -> String {
    let a = account("pop3", port, encryption);
    let t = timeouts();
    let open = async {
        let tcp = net::connect_tcp("localhost", port, &t).await?;
        postfach::pop3::fetch::open(tcp, &a, &tls(), &t).await
    };
    let r = tokio::time::timeout(HANG, open)
        .await
        .unwrap_or_else(|_| panic!("{encryption} on port {port}: still waiting after {HANG:?}"));
    match r {
        Ok(_) => panic!("{encryption} on port {port}: the connection must fail"),
        Err(e) => e.to_string(),
    }
}

const CHOOSE_TLS: &str = "this port expects TLS from the start (implicit TLS) — choose TLS";

/// Regression: STARTTLS against IMAPS waited the whole read timeout.
#[tokio::test]
async fn starttls_or_clear_text_against_a_tls_port_says_choose_tls() {
    let env = Env::get();
    for encryption in ["starttls", "none"] {
        let e = imap_error(env.imaps_port, encryption).await;
        assert!(e.contains(CHOOSE_TLS), "IMAP {encryption}: {e}");
        let e = pop3_error(env.pop3s_port, encryption).await;
        assert!(e.contains(CHOOSE_TLS), "POP3 {encryption}: {e}");
    }
}

/// Regression: TLS against the clear-text IMAP port read "received corrupt
/// message of type InvalidContentType".
#[tokio::test]
async fn tls_against_a_clear_text_port_says_try_starttls() {
    let env = Env::get();
    let want = "the server does not speak TLS on port";
    let e = imap_error(env.imap_port, "tls").await;
    assert!(
        e.contains(want) && e.contains("try STARTTLS or the TLS port"),
        "IMAP: {e}"
    );
    let e = pop3_error(env.pop3_port, "tls").await;
    assert!(e.contains(want), "POP3: {e}");
}

/// The right pairs still connect (the wait before the probe is no error).
#[tokio::test]
async fn matching_ports_still_connect() {
    let env = Env::get();
    for (port, encryption) in [(env.imaps_port, "tls"), (env.imap_port, "starttls")] {
        let a = account("imap", port, encryption);
        let client = postfach::imap::session::connect(&a, &tls(), &timeouts()).await;
        assert!(client.is_ok(), "{encryption} on {port}: {:?}", client.err());
    }
}
