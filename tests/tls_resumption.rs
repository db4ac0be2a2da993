//! TLS session resumption (RFC 8446 §2.2): a later connection of the same
//! context resumes instead of repeating the full handshake, and a pinned
//! connection never resumes a session that was verified the webpki way
//! (each trust has its own session store).
//!
//! The server is tests/common's fake IMAP server over TLS (a rustls
//! acceptor with the run's server certificate), not Dovecot: Dovecot's login processes each have their own
//! ticket key, so whether it resumes depends on which process accepts — a
//! fact about the server, not about our client. (The bench shows what the
//! test Dovecot makes of it.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::scripted::fake_imap::{FakeImap, Options};
use common::Env;
use postfach::net::{self, Timeouts, TlsContext};
use rustls::HandshakeKind;
use tokio::io::AsyncReadExt;

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(10),
        read: Duration::from_secs(30),
        ..Timeouts::default()
    }
}

/// A TLS server with the run's certificate that greets every connection
/// like an IMAP server; returns it (its port stays open while it lives).
async fn server() -> FakeImap {
    FakeImap::start(Options {
        greeting: "* OK ready",
        tls: true,
        ..Options::default()
    })
    .await
}

/// Connects and reads the greeting (TLS 1.3 session tickets come after the
/// handshake, before the first data); returns how the handshake went.
async fn connect(port: u16, tls: &TlsContext, pin: Option<&str>) -> HandshakeKind {
    let t = timeouts();
    let tcp = net::connect_tcp("127.0.0.1", port, &t)
        .await
        .expect("connect");
    let mut stream = net::start_tls(tcp, "localhost", tls, pin, &t)
        .await
        .expect("TLS handshake");
    let mut greeting = [0u8; 64];
    let n = stream.read(&mut greeting).await.expect("greeting");
    assert_eq!(&greeting[..n], b"* OK ready\r\n");
    stream
        .tls()
        .expect("a TLS stream")
        .get_ref()
        .1
        .handshake_kind()
        .expect("handshake done")
}

#[tokio::test]
async fn later_connections_resume_within_one_trust_only() {
    let env = Env::get();
    let fake = server().await;
    let port = fake.port();
    let tls = TlsContext::new(Some(&env.ca)).expect("tls context");
    assert_eq!(connect(port, &tls, None).await, HandshakeKind::Full);
    assert_eq!(connect(port, &tls, None).await, HandshakeKind::Resumed);
    // A clone (what every account task holds) shares the sessions.
    let clone = tls.clone();
    assert_eq!(connect(port, &clone, None).await, HandshakeKind::Resumed);

    // The same host with a pin: its own store, so a full handshake first,
    // then resumption among connections with that pin.
    let pin = Some(env.pin.as_str());
    assert_eq!(connect(port, &tls, pin).await, HandshakeKind::Full);
    assert_eq!(connect(port, &tls, pin).await, HandshakeKind::Resumed);

    // Another context (a daemon restart, a connection test) starts empty.
    let fresh = TlsContext::new(Some(&env.ca)).expect("tls context");
    assert_eq!(connect(port, &fresh, None).await, HandshakeKind::Full);
}
