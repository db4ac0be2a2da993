//! Scripted hostile mail servers on loopback for the daemon tests
//! (`fetch_limits`, `imap_quirks`): a POP3 server whose LIST sizes lie or
//! whose replies drip, an IMAP server that announces a huge literal or
//! keeps a command busy with harmless untagged lines, and one that answers
//! like GNU imap4d (imap4d.rs) or, without UIDNEXT, like Courier
//! (courier.rs). Each connection runs on a
//! thread of its own with blocking sockets, so a server that the daemon
//! drops simply ends; every command line seen is logged for the test.
#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

pub mod courier;
pub mod imap;
pub mod imap4d;
pub mod pop3;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zbus::Variant;

/// The command lines a server saw, over all its connections.
pub type Log = Arc<Mutex<Vec<String>>>;

/// Listens on a free loopback port and runs `serve` for each connection
/// on its own thread; returns the port and the command log.
pub fn listen<F>(serve: F) -> (u16, Log)
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
            let (serve, log) = (serve.clone(), log2.clone());
            std::thread::spawn(move || serve(Conn::new(tcp, log)));
        }
    });
    (port, log)
}

/// One connection of a scripted server.
pub struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
    log: Log,
}

impl Conn {
    fn new(tcp: TcpStream, log: Log) -> Conn {
        let w = tcp.try_clone().unwrap();
        Conn {
            r: BufReader::new(tcp),
            w,
            log,
        }
    }

    /// The next command line without CRLF; None when the client is gone.
    pub fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.r.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                let line = line.trim_end_matches(['\r', '\n']).to_string();
                self.log.lock().unwrap().push(line.clone());
                Some(line)
            }
        }
    }

    /// Writes `bytes`; false when the client is gone.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.w.write_all(bytes).is_ok()
    }

    /// Writes `bytes` one at a time with `every` between them, as long as
    /// the client reads; a server that drips.
    pub fn drip(&mut self, bytes: &[u8], every: Duration) {
        for b in bytes {
            std::thread::sleep(every);
            if !self.send(std::slice::from_ref(b)) {
                return;
            }
        }
    }
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
    let mut s = HashMap::new();
    s.insert("kind", Variant::from(kind.to_string()));
    s.insert("host", Variant::from("127.0.0.1"));
    s.insert("port", Variant::from(port));
    s.insert("encryption", Variant::from("none"));
    s.insert("address", Variant::from("anna@scripted.test"));
    s.insert("password", Variant::from("pw"));
    s.insert("tenant", Variant::from("mandant1"));
    s.insert("delete_on_server", Variant::from(delete));
    s.insert("poll_interval", Variant::from(0u32));
    s
}
