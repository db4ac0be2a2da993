//! net tests against a real rustls server on 127.0.0.1 with test-only
//! certificates from `testdata/` (see its README).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::account::{Account, SettingValue};

const CA: &[u8] = include_bytes!("testdata/ca.pem");
const LEAF: &[u8] = include_bytes!("testdata/leaf.pem");
const KEY: &[u8] = include_bytes!("testdata/leaf.key");
const OTHER: &[u8] = include_bytes!("testdata/other.pem");
const SELF_SIGNED: &[u8] = include_bytes!("testdata/self.pem");
const EXPIRED: &[u8] = include_bytes!("testdata/expired.pem");

fn der(pem: &[u8]) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem).unwrap()
}

/// A one-shot TLS server presenting `cert`; it writes "hello" and closes.
async fn tls_server(cert: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der(cert)], PrivateKeyDer::from_pem_slice(KEY).unwrap())
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        if let Ok(mut tls) = acceptor.accept(tcp).await {
            let _ = tls.write_all(b"hello").await;
            let _ = tls.shutdown().await;
        }
    });
    port
}

async fn handshake(
    cert: &'static [u8],
    host: &str,
    ctx: &TlsContext,
    pin: Option<&str>,
) -> Result<String> {
    let port = tls_server(cert).await;
    let t = Timeouts::default();
    let tcp = connect_tcp("127.0.0.1", port, &t).await?;
    let mut s = start_tls(tcp, host, ctx, pin, &t).await?;
    let mut got = String::new();
    s.read_to_string(&mut got).await.unwrap();
    Ok(got)
}

fn ca_ctx() -> TlsContext {
    TlsContext::from_pem(CA).unwrap()
}

fn tls_err(r: Result<String>) -> String {
    match r {
        Err(Error::Tls(m)) => m,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn trusted_certificate_connects() {
    assert_eq!(
        handshake(LEAF, "localhost", &ca_ctx(), None).await.unwrap(),
        "hello"
    );
    assert_eq!(
        handshake(LEAF, "127.0.0.1", &ca_ctx(), None).await.unwrap(),
        "hello"
    );
}

#[tokio::test]
async fn self_signed_names_its_issuer() {
    let m = tls_err(handshake(SELF_SIGNED, "localhost", &ca_ctx(), None).await);
    assert!(
        m.starts_with("TLS certificate not trusted: self-signed, issuer CN=selfsigned.test"),
        "{m}"
    );
}

#[tokio::test]
async fn unknown_ca_is_not_trusted() {
    let other_ca = TlsContext::from_pem(SELF_SIGNED).unwrap();
    let m = tls_err(handshake(LEAF, "localhost", &other_ca, None).await);
    assert!(
        m.starts_with("TLS certificate not trusted: issuer CN=postfach test CA"),
        "{m}"
    );
}

#[tokio::test]
async fn expired_certificate_is_named() {
    let m = tls_err(handshake(EXPIRED, "localhost", &ca_ctx(), None).await);
    assert!(m.starts_with("TLS certificate expired"), "{m}");
}

#[tokio::test]
async fn wrong_host_name_is_named() {
    let m = tls_err(handshake(OTHER, "localhost", &ca_ctx(), None).await);
    assert!(
        m.starts_with("certificate is for other.test, not localhost"),
        "{m}"
    );
}

#[tokio::test]
async fn pin_alone_decides() {
    let pin = spki_pin(der(SELF_SIGNED).as_ref()).unwrap();
    // A self-signed certificate for another name, no trusted roots at all.
    let ctx = TlsContext::from_pem(CA).unwrap();
    let ok = handshake(SELF_SIGNED, "mail.invalid", &ctx, Some(&pin)).await;
    assert_eq!(ok.unwrap(), "hello");
    // The "sha256/" prefix form is accepted too.
    let prefixed = format!("sha256/{pin}");
    assert!(handshake(SELF_SIGNED, "localhost", &ctx, Some(&prefixed))
        .await
        .is_ok());
}

#[tokio::test]
async fn pin_mismatch_is_refused_even_for_a_trusted_certificate() {
    let wrong = spki_pin(der(CA).as_ref()).unwrap();
    let m = tls_err(handshake(LEAF, "localhost", &ca_ctx(), Some(&wrong)).await);
    assert!(m.starts_with("server key does not match tls_pin"), "{m}");
    // All leaf certs share one key: the pin of the key is named for the admin.
    assert!(m.contains(&spki_pin(der(LEAF).as_ref()).unwrap()), "{m}");
}

#[test]
fn pin_is_of_the_key_not_the_certificate() {
    // self.pem and leaf.pem are different certificates over the same key.
    let a = spki_pin(der(SELF_SIGNED).as_ref()).unwrap();
    assert_eq!(a, spki_pin(der(LEAF).as_ref()).unwrap());
    assert_ne!(a, spki_pin(der(CA).as_ref()).unwrap());
    assert_eq!(a.len(), 44);
}

#[test]
fn extra_ca_file_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let e = TlsContext::new(Some(&missing)).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { ref key, .. } if key == "tls.extra_ca_file"));
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "no pem here").unwrap();
    assert!(TlsContext::new(Some(&junk)).is_err());
    let good = dir.path().join("ca.pem");
    std::fs::write(&good, CA).unwrap();
    assert!(TlsContext::new(Some(&good)).is_ok());
}

#[tokio::test]
async fn refused_connection_is_worded() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let e = connect_tcp("127.0.0.1", port, &Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Connection");
    assert_eq!(
        e.to_string(),
        format!("connection refused by 127.0.0.1:{port}")
    );
    // The I/O error stays reachable as the cause.
    let cause = std::error::Error::source(&e).expect("the refusal as source");
    assert!(
        cause.to_string().to_lowercase().contains("refused"),
        "{cause}"
    );
}

#[test]
fn loopback_hosts() {
    for h in [
        "127.0.0.1",
        "127.3.2.1",
        "::1",
        "[::1]",
        "localhost",
        "LocalHost",
    ] {
        assert!(is_loopback_host(h), "{h}");
    }
    for h in [
        "128.0.0.1",
        "10.0.0.1",
        "::2",
        "localhost.example",
        "mail.example.com",
    ] {
        assert!(!is_loopback_host(h), "{h}");
    }
}

fn account(host: &str, enc: &str, allow: bool) -> Account {
    let s = |v: &str| SettingValue::Str(v.into());
    let settings = vec![
        ("kind".to_string(), s("pop3")),
        ("address".to_string(), s("a@example.com")),
        ("host".to_string(), s(host)),
        ("encryption".to_string(), s(enc)),
        (
            "allow_plaintext_auth".to_string(),
            SettingValue::Bool(allow),
        ),
    ];
    Account::create("a1".into(), &settings).unwrap().0
}

#[test]
fn plaintext_rule() {
    assert!(check_plaintext_auth(&account("127.0.0.1", "none", false)).is_ok());
    assert!(check_plaintext_auth(&account("mail.example.com", "tls", false)).is_ok());
    assert!(check_plaintext_auth(&account("mail.example.com", "starttls", false)).is_ok());
    assert!(check_plaintext_auth(&account("mail.example.com", "none", true)).is_ok());
    let e = check_plaintext_auth(&account("mail.example.com", "none", false)).unwrap_err();
    assert!(matches!(e, Error::Tls(ref m) if m.contains("clear text to mail.example.com")));
}

const SNAKEOIL: &[u8] = include_bytes!("testdata/snakeoil.pem");
const SELF_LOCALHOST: &[u8] = include_bytes!("testdata/selflocal.pem");

/// A context whose "system store" is the CA and a snakeoil certificate,
/// loaded as `TlsContext::new` loads the system store.
fn store_with_snakeoil(filter: bool) -> TlsContext {
    let certs = vec![der(CA), der(SNAKEOIL)];
    let certs = if filter {
        verify::without_snakeoil(certs, Some(SNAKEOIL))
    } else {
        certs
    };
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certs);
    TlsContext::with_roots(roots).unwrap()
}

/// Regression: Debian's snakeoil (CN=localhost) in the system store made
/// every other self-signed CN=localhost server read "BadSignature".
#[tokio::test]
async fn a_snakeoil_in_the_system_store_is_no_ca() {
    let m = tls_err(
        handshake(
            SELF_LOCALHOST,
            "localhost",
            &store_with_snakeoil(false),
            None,
        )
        .await,
    );
    assert!(m.contains("BadSignature"), "the flaw as it was: {m}");
    let m = tls_err(
        handshake(
            SELF_LOCALHOST,
            "localhost",
            &store_with_snakeoil(true),
            None,
        )
        .await,
    );
    assert!(
        m.starts_with("TLS certificate not trusted: self-signed, issuer CN=localhost"),
        "{m}"
    );
    // The other roots stay.
    let ok = handshake(LEAF, "localhost", &store_with_snakeoil(true), None).await;
    assert_eq!(ok.unwrap(), "hello");
}

#[test]
fn snakeoil_and_its_subject_are_left_out_of_the_system_store() {
    // OTHER is CA-signed, but its subject is CN=localhost too.
    let all = vec![
        der(CA),
        der(SNAKEOIL),
        der(SELF_LOCALHOST),
        der(OTHER),
        der(SELF_SIGNED),
    ];
    let kept = verify::without_snakeoil(all.clone(), Some(SNAKEOIL));
    assert_eq!(kept, vec![der(CA), der(SELF_SIGNED)]);
    assert_eq!(verify::without_snakeoil(all.clone(), None), all);
}

/// Regression: TLS against a clear-text port read "received corrupt
/// message of type InvalidContentType".
#[tokio::test]
async fn tls_against_a_clear_text_port_says_so() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let _ = tcp
            .write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n")
            .await;
        let mut sink = [0u8; 512];
        let _ = tcp.read(&mut sink).await;
    });
    let t = Timeouts::default();
    let tcp = connect_tcp("127.0.0.1", port, &t).await.unwrap();
    let e = start_tls(tcp, "localhost", &ca_ctx(), None, &t)
        .await
        .err()
        .unwrap();
    let m = e.to_string();
    assert!(
        m.contains(&format!(
            "the server does not speak TLS on port {port} — try STARTTLS or the TLS port"
        )),
        "{m}"
    );
}
