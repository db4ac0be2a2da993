//! The byte stream lettre's SMTP client runs on: our [`net::Stream`]
//! (so our trust roots, extra CA and SPKI pins apply) with a timeout per
//! reply and per write, and the STARTTLS prelude that happens before lettre takes
//! over.
//!
//! Why a prelude of our own: lettre's own STARTTLS takes lettre's TLS
//! parameters, which cannot carry our certificate verifier (pins,
//! readable verification errors, the shared session cache). So the
//! plain-text part — greeting, EHLO, STARTTLS, 220 — is spoken here, the
//! socket is upgraded by [`net::start_tls`], and lettre gets the TLS
//! stream. lettre begins every session by reading a greeting, while after
//! STARTTLS the server sends none (RFC 3207 §4.2: the client starts over
//! with EHLO and forgets what it learned before); the stream therefore
//! replays the server's original greeting to lettre, which then sends its
//! own EHLO over TLS. Bytes the server sent after its 220 to STARTTLS are
//! discarded with the plain-text reader, never read as if they came over
//! TLS (an attacker on the path could have put them there, RFC 3207 §6).

use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::Sleep;

use crate::error::{Error, Result};
use crate::net::{Stream, Timeouts};

/// Longest reply line read in the prelude (RFC 5321 §4.5.3.1.5: 512).
const MAX_LINE: u64 = 4096;
/// Most lines of one reply in the prelude.
const MAX_LINES: usize = 100;

/// How long one read or write may make no progress; shared so that the
/// session can lengthen it for the reply after the body.
#[derive(Debug, Clone)]
pub struct Patience(Arc<AtomicU64>);

impl Patience {
    pub fn new(d: Duration) -> Patience {
        Patience(Arc::new(AtomicU64::new(millis(d))))
    }

    pub fn set(&self, d: Duration) {
        self.0.store(millis(d), Ordering::Relaxed);
    }

    fn get(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::Relaxed))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// See the module docs.
#[derive(Debug)]
pub struct Wire {
    inner: Stream,
    peer: SocketAddr,
    /// The greeting to replay, and how much of it lettre has read.
    preface: Vec<u8>,
    served: usize,
    patience: Patience,
    /// The whole reply's timer: started by the first read that waits after
    /// a write, stopped only by the next write — a server that drips a
    /// byte at a time cannot stretch a reply (see [`Wire::poll_read`]).
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
    /// Set when a write may carry the end-of-data mark (see [`may_end_data`]).
    dot: Arc<AtomicBool>,
}

impl Wire {
    pub fn new(
        inner: Stream,
        peer: SocketAddr,
        preface: Vec<u8>,
        patience: Patience,
        dot: Arc<AtomicBool>,
    ) -> Wire {
        Wire {
            inner,
            peer,
            preface,
            served: 0,
            patience,
            read_timer: None,
            write_timer: None,
            dot,
        }
    }
}

/// Whether a write may put the end-of-data mark `CRLF.CRLF` on the wire.
/// lettre writes the dot-stuffed body (RFC 5321 §4.5.2: it never contains
/// the mark) and then the mark as a write of its own; a write that ends
/// with the mark, or is a short tail of it left by a partial write, counts.
/// Erring towards "yes" only ever makes a failure uncertain instead of
/// retried, never the other way round.
pub fn may_end_data(buf: &[u8]) -> bool {
    const MARK: &[u8] = b"\r\n.\r\n";
    buf.ends_with(MARK) || (buf.len() < MARK.len() && !buf.is_empty() && MARK.ends_with(buf))
}

/// Pending for longer than `patience` becomes a TimedOut error; any
/// progress stops the clock.
fn watch<T>(
    timer: &mut Option<Pin<Box<Sleep>>>,
    patience: &Patience,
    cx: &mut Context<'_>,
    poll: Poll<std::io::Result<T>>,
) -> Poll<std::io::Result<T>> {
    if poll.is_ready() {
        *timer = None;
        return poll;
    }
    let t = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(patience.get())));
    ready!(t.as_mut().poll(cx));
    *timer = None;
    Poll::Ready(Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "no answer from the SMTP server for {} s",
            patience.get().as_secs()
        ),
    )))
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        if me.served < me.preface.len() {
            let rest = &me.preface[me.served..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            me.served += n;
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut me.inner).poll_read(cx, buf) {
            Poll::Ready(r) => Poll::Ready(r),
            // Unlike a write's, the read timer is not reset by progress:
            // it bounds the whole reply, not each wait for a byte.
            Poll::Pending => {
                let t = me
                    .read_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(me.patience.get())));
                ready!(t.as_mut().poll(cx));
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no complete answer from the SMTP server in {} s",
                        me.patience.get().as_secs()
                    ),
                )))
            }
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        // A command or the body: what is read next is a new reply.
        me.read_timer = None;
        if may_end_data(buf) {
            me.dot.store(true, Ordering::SeqCst);
        }
        let poll = Pin::new(&mut me.inner).poll_write(cx, buf);
        watch(&mut me.write_timer, &me.patience, cx, poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let poll = Pin::new(&mut me.inner).poll_flush(cx);
        watch(&mut me.write_timer, &me.patience, cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let poll = Pin::new(&mut me.inner).poll_shutdown(cx);
        watch(&mut me.write_timer, &me.patience, cx, poll)
    }
}

impl lettre::transport::smtp::client::AsyncTokioStream for Wire {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

/// One reply of the prelude: code, and the raw bytes of all its lines.
/// `read` bounds the whole reply, as [`Wire`] does: a server sending one
/// line just within it cannot stretch the reply to `MAX_LINES` times it.
async fn reply(c: &mut BufReader<Stream>, t: &Timeouts) -> Result<(u16, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + t.read;
    let mut all = Vec::new();
    for _ in 0..MAX_LINES {
        let start = all.len();
        let mut line = (&mut *c).take(MAX_LINE);
        match tokio::time::timeout_at(deadline, line.read_until(b'\n', &mut all)).await {
            Err(_) => {
                return Err(Error::connection(format!(
                    "no complete answer from the SMTP server in {} s",
                    t.read.as_secs()
                )))
            }
            Ok(Err(e)) => {
                return Err(Error::connection_by(
                    format!("SMTP connection broke: {e}"),
                    e,
                ))
            }
            Ok(Ok(0)) => {
                return Err(Error::connection(
                    "the SMTP server closed the connection".into(),
                ))
            }
            Ok(Ok(_)) => {}
        }
        let line = &all[start..];
        let code = line
            .get(..3)
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<u16>().ok());
        let Some(code) = code else {
            return Err(Error::connection(
                "the SMTP server sent something that is not a reply".into(),
            ));
        };
        if line.get(3) != Some(&b'-') {
            return Ok((code, all));
        }
    }
    Err(Error::connection(
        "the SMTP server sent a reply of too many lines".into(),
    ))
}

fn text_of(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let joined: Vec<&str> = s.lines().map(|l| l.get(4..).unwrap_or("").trim()).collect();
    super::failure::cap(&joined.join(" "))
}

async fn send_line(c: &mut BufReader<Stream>, line: &str, t: &Timeouts) -> Result<(u16, Vec<u8>)> {
    let w = c.get_mut();
    let write = async {
        w.write_all(line.as_bytes()).await?;
        w.write_all(b"\r\n").await?;
        w.flush().await
    };
    match tokio::time::timeout(t.read, write).await {
        Ok(Ok(())) => reply(c, t).await,
        Ok(Err(e)) => Err(Error::connection_by(
            format!("SMTP connection broke: {e}"),
            e,
        )),
        Err(_) => Err(Error::connection(
            "the SMTP server does not take data".into(),
        )),
    }
}

/// The plain-text part of a STARTTLS session (module docs): returns the
/// socket, ready for the TLS handshake, and the greeting to replay.
pub async fn starttls_prelude(
    stream: Stream,
    host: &str,
    hello: &str,
    t: &Timeouts,
) -> Result<(tokio::net::TcpStream, Vec<u8>)> {
    let mut c = BufReader::new(stream);
    let (code, greeting) = reply(&mut c, t).await?;
    if code != 220 {
        return Err(Error::connection(format!(
            "{host} greeted with {code} {}",
            text_of(&greeting)
        )));
    }
    let (code, caps) = send_line(&mut c, &format!("EHLO {hello}"), t).await?;
    if code != 250 {
        return Err(Error::connection(format!(
            "{host} answered EHLO with {code} {}",
            text_of(&caps)
        )));
    }
    let offered = String::from_utf8_lossy(&caps).lines().any(|l| {
        l.get(4..)
            .is_some_and(|k| k.trim().eq_ignore_ascii_case("STARTTLS"))
    });
    if !offered {
        return Err(Error::Tls(format!(
            "{host}: the SMTP server does not offer STARTTLS (smtp_encryption is starttls)"
        )));
    }
    let (code, text) = send_line(&mut c, "STARTTLS", t).await?;
    if code != 220 {
        return Err(Error::Tls(format!(
            "{host} refused STARTTLS: {code} {}",
            text_of(&text)
        )));
    }
    // Dropping the reader discards anything sent after the 220.
    let Some(tcp) = c.into_inner().into_plain() else {
        return Err(Error::Tls("STARTTLS on a TLS connection".into()));
    };
    Ok((tcp, greeting))
}
