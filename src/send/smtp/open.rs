//! Opening a submission session: TCP, TLS (implicit or STARTTLS), the
//! greeting and EHLO, the login.
//!
//! Two ways a server and the settings can disagree get an answer at once
//! instead of an error an admin cannot act on, as for IMAP and POP3
//! (docs/SERVERS.md):
//! - STARTTLS or clear text against an implicit-TLS port (465, RFC 8314
//!   §3): the server is silent until a ClientHello, so the client would
//!   wait the whole read timeout for a greeting. `net::expect_greeting`
//!   probes after a short silence and says "choose TLS".
//! - A server that refuses a resumed TLS session (Cyrus-like, an alert in
//!   answer to the ClientHello that offers it): the host is remembered
//!   (`net::resume`) and the session is opened once more at once without
//!   it, so the mail goes now and not at its next retry.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;

use super::failure::{self, Failure, Stage};
use super::wire::{self, Patience, Wire};
use super::{check_plaintext_login, transient, Login, Server, Session};
use crate::account::Encryption;
use crate::error::Error;
use crate::net::{self, Stream};

/// The address literal EHLO names us by (module docs of `send::smtp`).
fn client_id(local: SocketAddr) -> ClientId {
    match local.ip() {
        IpAddr::V4(v4) => ClientId::Ipv4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => ClientId::Ipv4(v4),
            None => ClientId::Ipv6(v6),
        },
    }
}

impl Session {
    /// Connect, secure, greet and log in (module docs). Every failure here
    /// is transient: it is the account's, not the mail's.
    pub async fn open(server: &Server<'_>, login: &Login<'_>) -> Result<Session, Failure> {
        let a = server.account;
        check_plaintext_login(a, login).map_err(transient)?;
        server
            .tls
            .retry_unresumed(&a.smtp_host, a.smtp_port, || open_once(server, login))
            .await
    }
}

async fn open_once(server: &Server<'_>, login: &Login<'_>) -> Result<Session, Failure> {
    let a = server.account;
    let t = &server.timeouts;
    let (host, port) = (a.smtp_host.as_str(), a.smtp_port);
    let tcp = net::connect_tcp(host, port, t).await.map_err(transient)?;
    let io = |e: std::io::Error| {
        transient(Error::connection_by(
            format!("SMTP connection to {host}: {e}"),
            e,
        ))
    };
    let peer = tcp.peer_addr().map_err(io)?;
    let hello = client_id(tcp.local_addr().map_err(io)?);
    let pin = Some(a.tls_pin.as_str()).filter(|p| !p.is_empty());
    if a.smtp_encryption != Encryption::Tls {
        net::expect_greeting(&tcp, host, port, server.tls, t)
            .await
            .map_err(transient)?;
    }
    let (stream, greeting) = match a.smtp_encryption {
        Encryption::Tls => (
            net::start_tls(tcp, host, server.tls, pin, t).await,
            Vec::new(),
        ),
        Encryption::Starttls => {
            let (tcp, greeting) =
                wire::starttls_prelude(Stream::plain(tcp), host, &hello.to_string(), t)
                    .await
                    .map_err(transient)?;
            (
                net::start_tls(tcp, host, server.tls, pin, t).await,
                greeting,
            )
        }
        Encryption::None => (Ok(Stream::plain(tcp)), Vec::new()),
    };
    let patience = Patience::new(t.read);
    let dot = Arc::new(AtomicBool::new(false));
    let wire = Wire::new(
        stream.map_err(transient)?,
        peer,
        greeting,
        patience.clone(),
        dot.clone(),
    );
    let conn = AsyncSmtpConnection::connect_with_transport(Box::new(wire), &hello)
        .await
        .map_err(|e| failure::classify(&e, Stage::Session, host, &[]))?;
    let mut s = Session {
        conn,
        host: host.to_string(),
        patience,
        read: t.read,
        dot,
    };
    if let Err(f) = s.login(a, login).await {
        s.conn.abort().await;
        return Err(f);
    }
    Ok(s)
}
