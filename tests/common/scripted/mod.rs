//! The one scripted fake server of the integration tests: for what the
//! real Dovecot and Postfix will not do — lie, drip, swallow LOGOUT, echo a
//! password, defer forever. [`listen`] accepts on a free loopback port and
//! runs a script per connection on a thread of its own with blocking
//! sockets (plain, or implicit TLS with the run's server certificate), so a
//! connection the daemon drops simply ends; every line the client sends is
//! logged for the test. The protocols are scripts on top of it:
//!
//! - [`pop3`]: LIST sizes that lie, replies that drip;
//! - [`imap`]: a huge literal announced, a command kept busy by untagged lines;
//! - [`imap4d`]: GNU imap4d's quirks (unreadable empty partial fetch, IDLE
//!   that never pushes);
//! - [`courier`]: Courier-IMAP's SELECT without UIDNEXT;
//! - [`courier_folders`]: Courier's `INBOX.` folders without SPECIAL-USE;
//! - [`mbox`]: imap4d's mbox INBOX renumbered in every session;
//! - [`fake_imap`]: an empty INBOX that can swallow LOGOUT or speak TLS;
//! - [`echo`]: a login refused with the client's own login line (secrets);
//! - SMTP scripts live with their tests (`smtp_hostile`, `send_smtp`).
#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

pub mod courier;
pub mod courier_folders;
pub mod echo;
pub mod fake_imap;
pub mod imap;
pub mod imap4d;
pub mod mbox;
pub mod pop3;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zbus::Variant;

use super::{Env, Settings};

/// The lines a server's clients sent, over all its connections.
pub type Log = Arc<Mutex<Vec<String>>>;

/// What travels on a connection: a TCP stream or TLS over one.
pub trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

/// Listens on a free loopback port and runs `serve` for each connection
/// on its own thread; returns the port and the log of client lines.
pub fn listen<F>(serve: F) -> (u16, Log)
where
    F: Fn(Conn) + Send + Sync + 'static,
{
    listen_on(None, serve)
}

/// [`listen`] with implicit TLS (the run's server certificate) when `tls`.
pub fn listen_tls<F>(tls: bool, serve: F) -> (u16, Log)
where
    F: Fn(Conn) + Send + Sync + 'static,
{
    listen_on(tls.then(server_config), serve)
}

fn listen_on<F>(tls: Option<Arc<rustls::ServerConfig>>, serve: F) -> (u16, Log)
where
    F: Fn(Conn) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let serve = Arc::new(serve);
    let log2 = log.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (serve, log, tls) = (serve.clone(), log2.clone(), tls.clone());
            std::thread::spawn(move || {
                let io: Box<dyn Io> = match tls {
                    // The handshake runs on the first read or write; a
                    // failed one reads as a client that left.
                    Some(config) => {
                        let Ok(server) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        Box::new(rustls::StreamOwned::new(server, tcp))
                    }
                    None => Box::new(tcp),
                };
                serve(Conn::new(io, log))
            });
        }
    });
    (port, log)
}

/// One connection of a scripted server.
pub struct Conn {
    io: Box<dyn Io>,
    /// Bytes read but not yet returned as a line.
    pending: Vec<u8>,
    log: Log,
}

impl Conn {
    fn new(io: Box<dyn Io>, log: Log) -> Conn {
        Conn {
            io,
            pending: Vec::new(),
            log,
        }
    }

    /// The next line without CRLF, logged; None when the client is gone.
    pub fn line(&mut self) -> Option<String> {
        let line = self.quiet_line()?;
        self.log.lock().unwrap().push(line.clone());
        Some(line)
    }

    /// The next line without CRLF, not logged (a mail body line); None
    /// when the client is gone.
    pub fn quiet_line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.pending.drain(..=end).collect();
                let text = String::from_utf8_lossy(&raw);
                return Some(text.trim_end_matches(['\r', '\n']).to_string());
            }
            let mut chunk = [0u8; 4096];
            match self.io.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Writes `bytes`; false when the client is gone.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.io.write_all(bytes).is_ok() && self.io.flush().is_ok()
    }

    /// Writes `bytes` one at a time with `every` before each, as long as
    /// the client reads; a server that drips.
    pub fn drip(&mut self, bytes: &[u8], every: Duration) {
        for b in bytes {
            std::thread::sleep(every);
            if !self.send(std::slice::from_ref(b)) {
                return;
            }
        }
    }

    /// Reads until the client closes; a server that never answers.
    pub fn drain(&mut self) {
        while self.quiet_line().is_some() {}
    }
}

/// The run's server certificate and key, for implicit TLS.
fn server_config() -> Arc<rustls::ServerConfig> {
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
    Arc::new(config)
}

/// A loopback port nobody listens on (bound, read, closed): connecting
/// to it is refused at once.
pub fn closed_port() -> u16 {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    closed.local_addr().unwrap().port()
}

/// A listener that accepts (in the kernel's backlog) and never says a
/// word: a server that hangs. Keep it alive as long as the test needs it.
pub fn silent() -> (TcpListener, u16) {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    (silent, port)
}

/// A mail of `len` (at least 24) bytes in lines of at most 78 characters,
/// none starting with a dot, the last ending in CRLF: the same bytes every
/// time, so the test can rebuild what the daemon must have stored.
pub fn generated(len: usize, tag: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(b"Subject: generated\r\n\r\n");
    while out.len() < len {
        // Never leave a last line of one byte: every line ends in CRLF.
        let n = match len - out.len() {
            79 => 77,
            rest => rest.min(78),
        };
        out.extend(std::iter::repeat_n(tag, n.saturating_sub(2)));
        out.extend_from_slice(&b"\r\n"[..n.min(2)]);
    }
    out.truncate(len);
    out
}

/// Account settings for a scripted server on loopback (clear text is
/// allowed there).
pub fn settings(kind: &str, port: u16, delete: bool) -> HashMap<&'static str, Variant<'static>> {
    Settings::on_loopback(kind, port, "anna@scripted.test")
        .with("password", "pw")
        .with("tenant", "mandant1")
        .with("delete_on_server", delete)
        .dbus()
}
