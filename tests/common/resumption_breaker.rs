//! A TCP front for a TLS server that answers every ClientHello offering a
//! session to resume (a `pre_shared_key` extension, RFC 8446 §4.2.11) with
//! a fatal `internal_error` alert, as Cyrus imapd does with
//! `tls_session_timeout: 0`; every other connection is passed through to
//! the server behind it. It counts both.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// TLS 1.2 record: alert, fatal (2), internal_error (80).
const INTERNAL_ERROR: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50];
/// The `pre_shared_key` extension's type.
const PRE_SHARED_KEY: u16 = 41;

#[derive(Default)]
struct Counts {
    refused: AtomicUsize,
    passed: AtomicUsize,
}

/// A running front on 127.0.0.1; stops when dropped.
pub struct ResumptionBreaker {
    port: u16,
    counts: Arc<Counts>,
    accept: JoinHandle<()>,
}

impl ResumptionBreaker {
    /// Fronts the TLS server on 127.0.0.1:`upstream`.
    pub async fn start(upstream: u16) -> ResumptionBreaker {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        let accept = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(front(tcp, upstream, c.clone()));
            }
        });
        ResumptionBreaker {
            port,
            counts,
            accept,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Handshakes refused because they offered a session.
    pub fn refused(&self) -> usize {
        self.counts.refused.load(Ordering::SeqCst)
    }

    /// Connections passed through to the server.
    pub fn passed(&self) -> usize {
        self.counts.passed.load(Ordering::SeqCst)
    }
}

impl Drop for ResumptionBreaker {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn front(mut tcp: TcpStream, upstream: u16, counts: Arc<Counts>) {
    let Some(hello) = first_record(&tcp).await else {
        return;
    };
    if offers_session(&hello) {
        counts.refused.fetch_add(1, Ordering::SeqCst);
        let _ = tcp.write_all(&INTERNAL_ERROR).await;
        let _ = tcp.shutdown().await;
        return;
    }
    counts.passed.fetch_add(1, Ordering::SeqCst);
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut server).await;
}

/// The first TLS record, left unread in the socket (peeked).
async fn first_record(tcp: &TcpStream) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 5 + 16 * 1024];
    let mut want = 5;
    loop {
        let n = tcp.peek(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        if n >= 5 {
            want = 5 + usize::from(u16::from_be_bytes([buf[3], buf[4]]));
        }
        if n >= want {
            buf.truncate(want);
            return Some(buf);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Whether a ClientHello record carries a `pre_shared_key` extension
/// (RFC 8446 §4.1.2 layout).
fn offers_session(record: &[u8]) -> bool {
    match record.get(5..) {
        Some([1, _, _, _, body @ ..]) => has_psk(body).unwrap_or(false),
        _ => false,
    }
}

fn has_psk(body: &[u8]) -> Option<bool> {
    let u8_at = |p: usize| body.get(p).map(|b| usize::from(*b));
    let u16_at = |p: usize| Some(u8_at(p)? << 8 | u8_at(p + 1)?);
    let mut p = 2 + 32; // legacy_version, random
    p += 1 + u8_at(p)?; // legacy_session_id
    p += 2 + u16_at(p)?; // cipher_suites
    p += 1 + u8_at(p)?; // legacy_compression_methods
    let end = p + 2 + u16_at(p)?;
    p += 2;
    while p + 4 <= end {
        if u16_at(p)? == usize::from(PRE_SHARED_KEY) {
            return Some(true);
        }
        p += 4 + u16_at(p + 2)?;
    }
    Some(false)
}
