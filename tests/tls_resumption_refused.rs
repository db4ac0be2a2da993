//! A server that answers a resumed TLS session with an alert (Cyrus imapd
//! with `tls_session_timeout: 0` sends `internal_error`): the connection
//! that offered the session is made again without it, the host is
//! remembered so no later connection offers one there, and an account on
//! such a server fetches every time, not every second time.
//!
//! The server is tests/common/scripted's fake IMAP server over TLS behind a front
//! that refuses every ClientHello with a `pre_shared_key` extension
//! (tests/common/resumption_breaker.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::resumption_breaker::ResumptionBreaker;
use common::scripted::fake_imap::{FakeImap, Options};
use common::{fetch, Daemon, Env, Settings};
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

async fn server() -> (FakeImap, ResumptionBreaker) {
    let fake = FakeImap::start(Options {
        greeting: "* OK ready",
        tls: true,
        ..Options::default()
    })
    .await;
    let front = ResumptionBreaker::start(fake.port()).await;
    (fake, front)
}

/// One connection: TCP, TLS, the greeting (TLS 1.3 tickets come with the
/// first data); how the handshake went.
async fn connect_once(port: u16, tls: &TlsContext) -> postfach::error::Result<HandshakeKind> {
    let t = timeouts();
    let tcp = net::connect_tcp("127.0.0.1", port, &t).await?;
    let mut stream = net::start_tls(tcp, "localhost", tls, None, &t).await?;
    let mut greeting = [0u8; 64];
    let n = stream.read(&mut greeting).await.expect("greeting");
    assert_eq!(&greeting[..n], b"* OK ready\r\n");
    Ok(stream.tls().unwrap().get_ref().1.handshake_kind().unwrap())
}

async fn connect(port: u16, tls: &TlsContext) -> postfach::error::Result<HandshakeKind> {
    tls.retry_unresumed("localhost", port, || connect_once(port, tls))
        .await
}

#[tokio::test]
async fn a_refused_resumption_is_retried_once_and_not_offered_again() {
    let (_fake, front) = server().await;
    let tls = TlsContext::new(Some(&Env::get().ca)).unwrap();
    assert_eq!(
        connect(front.port(), &tls).await.unwrap(),
        HandshakeKind::Full
    );
    assert_eq!(front.refused(), 0);
    // The second connection offers the first one's session, is refused,
    // and is made again in full.
    assert_eq!(
        connect(front.port(), &tls).await.unwrap(),
        HandshakeKind::Full
    );
    assert_eq!(
        front.refused(),
        1,
        "no session was offered: the test proves nothing"
    );
    // From now on no session is offered there, even without the retry.
    assert_eq!(
        connect_once(front.port(), &tls).await.unwrap(),
        HandshakeKind::Full
    );
    assert_eq!(
        connect(front.port(), &tls).await.unwrap(),
        HandshakeKind::Full
    );
    assert_eq!(front.refused(), 1);
    assert_eq!(front.passed(), 4);
}

/// Regression: every second fetch of an account on such a server failed
/// with the server's alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_on_a_server_refusing_resumption_fetches_every_time() {
    let env = Env::get();
    let (fake, front) = server().await;
    let state = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(state.path(), &fetch::config(env));
    let conn = fetch::bus(&daemon).await;
    let s = Settings::on_loopback("imap", front.port(), "anna@resume.test")
        .with("host", "localhost")
        .with("encryption", "tls")
        .with("password", "pw")
        .with("tenant", "mandant1")
        .with("delete_on_server", false)
        .dbus();
    let path = fetch::create(&conn, s).await;
    let acc = fetch::account(&conn, &path).await;
    for round in 1..=3 {
        let r = acc.fetch_now().await;
        assert_eq!(
            r.as_ref().ok(),
            Some(&0),
            "fetch {round}: {r:?}\n{}",
            daemon.log()
        );
        assert_eq!(acc.last_error().await.unwrap(), "", "fetch {round}");
    }
    assert_eq!(front.refused(), 1, "{}", daemon.log());
    assert!(fake.count("LOGIN") >= 3);
}
