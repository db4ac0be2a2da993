//! TLS session resumption (RFC 8446 §2.2): a later connection of the same
//! context resumes instead of repeating the full handshake, and a pinned
//! connection never resumes a session that was verified the webpki way
//! (each trust has its own session store).
//!
//! The server is a rustls acceptor on loopback with the run's server
//! certificate, not Dovecot: Dovecot's login processes each have their own
//! ticket key, so whether it resumes depends on which process accepts — a
//! fact about the server, not about our client. (The bench shows what the
//! test Dovecot makes of it.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Env;
use postfach::net::{self, Timeouts, TlsContext};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::HandshakeKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(10),
        read: Duration::from_secs(30),
        ..Timeouts::default()
    }
}

/// A TLS server with the run's certificate that greets every connection
/// like an IMAP server; returns its port.
async fn server() -> u16 {
    let env = Env::get();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&env.cert)
        .expect("server certificate")
        .map(|c| c.expect("PEM"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(env.dir.join("tls/server.key")).expect("server key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"* OK ready\r\n").await;
                    let _ = tls.flush().await;
                    let mut rest = Vec::new();
                    let _ = tls.read_to_end(&mut rest).await;
                }
            });
        }
    });
    port
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
    let port = server().await;
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
