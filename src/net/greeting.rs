//! Clear text (STARTTLS, or no encryption) against a port that expects TLS
//! from the first byte.
//!
//! On an implicit-TLS port (993, 995, 465; RFC 8314 §3) the server says
//! nothing until the client's ClientHello, while an IMAP, POP3 or SMTP
//! server on a clear-text port greets first. A client waiting for the
//! greeting on the wrong port therefore waited the whole read timeout and
//! then reported a silent server. Instead, when no byte has come after a
//! short wait ([`GREETING_WAIT`]), a second connection sends a ClientHello:
//! a TLS record in answer (handshake 0x16 or alert 0x15, version 0x03)
//! tells the admin to choose TLS. Anything else, and the first connection
//! keeps waiting for its greeting as before: a slow greeting (servers that
//! look up the client's name first) costs only that probe.

use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{Timeouts, TlsContext};
use crate::error::{Error, Result};

/// How long a clear-text server may be silent before the TLS probe.
pub const GREETING_WAIT: Duration = Duration::from_secs(3);

/// Before reading a clear-text greeting on `tcp` (connected to
/// `host:port`): the error that this port expects TLS from the start, if
/// the server is silent and a probe finds TLS there (module docs).
pub async fn expect_greeting(
    tcp: &TcpStream,
    host: &str,
    port: u16,
    ctx: &TlsContext,
    t: &Timeouts,
) -> Result<()> {
    let wait = GREETING_WAIT.min(t.read);
    let mut first = [0u8; 1];
    // Data, end of stream or an error: the greeting read itself tells.
    if timeout(wait, tcp.peek(&mut first)).await.is_ok() {
        return Ok(());
    }
    if speaks_tls(host, port, ctx, wait.max(t.connect)).await {
        return Err(Error::Tls(format!(
            "{host}:{port} sent no greeting: this port expects TLS from the start \
             (implicit TLS) — choose TLS"
        )));
    }
    Ok(())
}

/// Whether `host:port` answers a ClientHello with a TLS record.
async fn speaks_tls(host: &str, port: u16, ctx: &TlsContext, wait: Duration) -> bool {
    let Ok(config) = ctx.config(None, false) else {
        return false;
    };
    let Ok(name) = ServerName::try_from(host.to_string()) else {
        return false;
    };
    let Ok(mut client) = rustls::ClientConnection::new(config, name) else {
        return false;
    };
    let mut hello = Vec::new();
    if client.write_tls(&mut hello).is_err() {
        return false;
    }
    let probe = async {
        let mut tcp = TcpStream::connect((host, port)).await.ok()?;
        tcp.write_all(&hello).await.ok()?;
        let mut head = [0u8; 2];
        tcp.read_exact(&mut head).await.ok()?;
        Some(head)
    };
    matches!(timeout(wait, probe).await, Ok(Some([0x15 | 0x16, 0x03])))
}
