//! [`Stream`]: a connected socket, plain or TLS, with two optional guards
//! in its read path for sessions whose reader we do not own (async-imap):
//! the IMAP literal guard ([`super::literal`]) and a fetch's deadline
//! ([`crate::fetch::deadline`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, BufWriter, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::literal::LiteralGuard;
use crate::fetch::deadline::{Deadline, WeakDeadline};

/// A connected stream, plain or TLS. Implements AsyncRead + AsyncWrite +
/// Unpin + Send + Debug (async-imap needs Debug).
///
/// Writes are buffered until a flush: async-imap writes a command as three
/// pieces (tag, command, CRLF), and without a buffer each became a TLS
/// record and a segment of its own, which the server then decrypts (a
/// Dovecot login process) and forwards piece by piece. Every writer here
/// flushes when a command is complete, as a line protocol must. The buffer
/// is [`WRITE_BUFFER`] bytes, not tokio's default 8 KiB: a daemon holds a
/// stream per idling account (1,000 idle accounts: 8 MB of buffers at the
/// default), and a longer write (a UID set, a literal) bypasses the buffer.
///
/// An IMAP session turns on [`Stream::guard_imap_literals`] when it
/// connects, and a fetch [`Stream::watch`]es its deadline while it runs;
/// POP3 needs neither (its reader is ours and does both itself).
#[derive(Debug)]
pub struct Stream {
    io: Io,
    literals: Option<LiteralGuard>,
    deadline: Watch,
}

#[derive(Debug)]
enum Io {
    Plain(BufWriter<TcpStream>),
    Tls(Box<BufWriter<tokio_rustls::client::TlsStream<TcpStream>>>),
}

/// Bytes a [`Stream`] buffers before writing; see there.
pub const WRITE_BUFFER: usize = 1024;

/// The deadline a stream enforces while its fetch runs, and the timer
/// that wakes a read or write waiting past it.
#[derive(Debug, Default)]
struct Watch {
    deadline: WeakDeadline,
    timer: Option<Pin<Box<Sleep>>>,
    /// Bytes written since the last flush: the flush sends a command.
    written: bool,
}

impl Stream {
    /// A plain connection.
    pub fn plain(tcp: TcpStream) -> Stream {
        Stream::new(Io::Plain(BufWriter::with_capacity(WRITE_BUFFER, tcp)))
    }

    /// A TLS connection (after the handshake).
    pub(super) fn tls_stream(tls: tokio_rustls::client::TlsStream<TcpStream>) -> Stream {
        Stream::new(Io::Tls(Box::new(BufWriter::with_capacity(
            WRITE_BUFFER,
            tls,
        ))))
    }

    fn new(io: Io) -> Stream {
        Stream {
            io,
            literals: None,
            deadline: Watch::default(),
        }
    }

    /// Refuse IMAP literals above `limit` bytes before they are read
    /// (see [`super::literal`]). For IMAP sessions only: the scanner
    /// follows IMAP framing.
    pub fn guard_imap_literals(mut self, limit: u64) -> Stream {
        self.literals = Some(LiteralGuard::new(limit));
        self
    }

    /// Fail reads and writes once `deadline` passes, and count the bytes
    /// read and the commands flushed as its work, for as long as the
    /// fetch holds the deadline (a kept session then idles without one).
    pub fn watch(&mut self, deadline: &Deadline) {
        self.deadline = Watch {
            deadline: deadline.downgrade(),
            timer: None,
            written: false,
        };
    }

    /// The socket of a plain connection, for STARTTLS/STLS; None for TLS.
    /// Call it after a flush: unflushed bytes would be lost.
    pub fn into_plain(self) -> Option<TcpStream> {
        match self.io {
            Io::Plain(s) => Some(s.into_inner()),
            Io::Tls(_) => None,
        }
    }

    /// The TLS session of a TLS connection.
    pub fn tls(&self) -> Option<&tokio_rustls::client::TlsStream<TcpStream>> {
        match &self.io {
            Io::Plain(_) => None,
            Io::Tls(s) => Some(s.get_ref()),
        }
    }
}

impl Watch {
    /// The fetch's deadline while it runs; forgets it (and its timer)
    /// once the fetch is over.
    fn get(&mut self) -> Option<Deadline> {
        let d = self.deadline.get();
        if d.is_none() {
            self.timer = None;
        }
        d
    }

    /// Err once the deadline has passed; else arranges a wake-up for it
    /// (the caller is about to return Pending). The deadline moves on as
    /// work arrives, so a timer that fires before it is set again.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(d) = self.get() else {
            return Poll::Pending;
        };
        loop {
            if d.passed() {
                return Poll::Ready(Err(expired(&d)));
            }
            let at = d.at();
            let timer = match &mut self.timer {
                Some(t) => {
                    if t.deadline() != at {
                        t.as_mut().reset(at);
                    }
                    t
                }
                None => self.timer.insert(Box::pin(tokio::time::sleep_until(at))),
            };
            ready!(timer.as_mut().poll(cx));
            if d.at() <= at {
                return Poll::Ready(Err(expired(&d)));
            }
        }
    }

    /// Err when the deadline passed before the call.
    fn check(&mut self) -> io::Result<()> {
        match self.get() {
            Some(d) if d.passed() => Err(expired(&d)),
            _ => Ok(()),
        }
    }
}

fn expired(d: &Deadline) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, d.explain())
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(r) = this.literals.as_ref().and_then(LiteralGuard::refused) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                r.to_string(),
            )));
        }
        this.deadline.check()?;
        let before = buf.filled().len();
        let polled = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        match polled {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if let Some(g) = &mut this.literals {
                    if let Err(r) = g.scan(new) {
                        // Not a byte of it reaches the reader.
                        buf.set_filled(before);
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            r.to_string(),
                        )));
                    }
                }
                if let Some(d) = this.deadline.get() {
                    d.arrived(new.len() as u64);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                ready!(this.deadline.poll_expired(cx))?;
                Poll::Pending
            }
            other => other,
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.deadline.check()?;
        let polled = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        };
        match polled {
            Poll::Ready(Ok(n)) => {
                this.deadline.written |= n > 0;
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                ready!(this.deadline.poll_expired(cx))?;
                Poll::Pending
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.deadline.check()?;
        let polled = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        };
        match polled {
            Poll::Ready(Ok(())) => {
                if std::mem::take(&mut this.deadline.written) {
                    if let Some(d) = this.deadline.get() {
                        d.command();
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                ready!(this.deadline.poll_expired(cx))?;
                Poll::Pending
            }
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests;
