//! The guards of [`Stream`]'s read path over a real loopback socket.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::fetch::deadline::Budget;

/// A connected pair: our [`Stream`] and the server's socket.
async fn pair() -> (Stream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (Stream::plain(client.unwrap()), server.unwrap().0)
}

fn short(floor_ms: u64) -> Deadline {
    Deadline::start(Budget {
        floor: Duration::from_millis(floor_ms),
        min_rate: 1024,
    })
}

/// A silent server: the read fails at the deadline, long before any read
/// timeout, and says why.
#[tokio::test]
async fn a_watched_read_fails_at_the_deadline() {
    let (mut s, _server) = pair().await;
    let d = short(100);
    s.watch(&d);
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf))
        .await
        .expect("the read outlived its deadline");
    let e = r.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(e.to_string().contains("did not finish within"), "{e}");
}

/// Bytes read and commands flushed count as the deadline's work; once
/// the fetch drops its deadline, the stream waits as long as it is asked.
#[tokio::test]
async fn work_counts_and_the_watch_ends_with_the_fetch() {
    let (mut s, mut server) = pair().await;
    let d = short(60_000);
    s.watch(&d);
    let before = d.allowed();
    server.write_all(&[b'x'; 2048]).await.unwrap();
    let mut buf = [0u8; 4096];
    let mut got = 0;
    while got < 2048 {
        got += s.read(&mut buf).await.unwrap();
    }
    assert_eq!(d.allowed(), before + Duration::from_secs(2));
    s.write_all(b"A1 NOOP\r\n").await.unwrap();
    s.flush().await.unwrap();
    assert_eq!(d.allowed(), before + Duration::from_millis(2250));
    drop(d);
    let idle = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
    assert!(
        idle.is_err(),
        "a stream without a deadline gave up: {idle:?}"
    );
}

/// The literal guard through the stream: the read that completes the
/// announcement fails, and so does every read after it.
#[tokio::test]
async fn an_imap_stream_refuses_a_huge_literal() {
    let (s, mut server) = pair().await;
    let mut s = s.guard_imap_literals(1000);
    server
        .write_all(b"* 1 FETCH (BODY[] {500000000}\r\nFrom: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let e = s.read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("announced 500000000 bytes"), "{e}");
    let again = s.read(&mut buf).await.unwrap_err();
    assert_eq!(again.kind(), io::ErrorKind::InvalidData);
    // A POP3 stream (no guard) reads the same bytes as data.
    let (mut plain, mut server) = pair().await;
    server.write_all(b"{500000000}\r\n").await.unwrap();
    assert!(plain.read(&mut buf).await.unwrap() > 0);
}
