//! A fake IMAP server with an empty INBOX, for what the real Dovecot will
//! not do: swallow LOGOUT, greet with a chosen line, serve implicit TLS
//! with a plain rustls acceptor. It writes down every command it got, so a
//! test can assert on what the daemon said and in which order.
//!
//! Each connection: the greeting; CAPABILITY, LOGIN, SELECT/EXAMINE (an
//! empty INBOX, UIDVALIDITY 1), NOOP, UID commands, IDLE … DONE answered
//! OK; LOGOUT answered with BYE and OK, or, with
//! [`Options::swallow_logout`], never (the connection stays open until the
//! client closes it); anything else BAD.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{listen_tls, Conn, Log};

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The greeting line, without CRLF.
    pub greeting: &'static str,
    /// Implicit TLS with the run's server certificate.
    pub tls: bool,
    /// Never answer LOGOUT.
    pub swallow_logout: bool,
    /// The CAPABILITY list.
    pub caps: &'static str,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            greeting: "* OK fake IMAP ready",
            tls: false,
            swallow_logout: false,
            caps: "IMAP4rev1",
        }
    }
}

/// A running fake server on 127.0.0.1 (it lives as long as the test
/// process).
pub struct FakeImap {
    port: u16,
    log: Log,
    open: Arc<AtomicUsize>,
}

impl FakeImap {
    pub async fn start(options: Options) -> FakeImap {
        let open = Arc::new(AtomicUsize::new(0));
        let counted = open.clone();
        let (port, log) = listen_tls(options.tls, move |conn| {
            counted.fetch_add(1, Ordering::SeqCst);
            serve(conn, &options);
            counted.fetch_sub(1, Ordering::SeqCst);
        });
        FakeImap { port, log, open }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every command line received so far (tags stripped).
    pub fn commands(&self) -> Vec<String> {
        let lines = self.log.lock().unwrap();
        lines
            .iter()
            .map(|l| match l.split_once(' ') {
                Some((_, command)) => command.to_string(),
                None => l.clone(), // DONE has no tag
            })
            .collect()
    }

    /// How many commands so far start with `command` (any case).
    pub fn count(&self, command: &str) -> usize {
        let want = command.to_ascii_uppercase();
        self.commands()
            .iter()
            .filter(|c| c.to_ascii_uppercase().starts_with(&want))
            .count()
    }

    /// Connections not yet closed by the client.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

fn serve(mut c: Conn, o: &Options) {
    if !c.send(format!("{}\r\n", o.greeting).as_bytes()) {
        return;
    }
    let mut idle_tag: Option<String> = None;
    while let Some(line) = c.line() {
        if line.eq_ignore_ascii_case("DONE") {
            let tag = idle_tag.take().unwrap_or_default();
            if !c.send(format!("{tag} OK idle done\r\n").as_bytes()) {
                return;
            }
            continue;
        }
        let (tag, command) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let upper = command.to_ascii_uppercase();
        let name = upper.split(' ').next().unwrap_or("");
        let answer = match name {
            "CAPABILITY" => format!("* CAPABILITY {}\r\n{tag} OK caps\r\n", o.caps),
            "LOGIN" | "NOOP" | "UID" => format!("{tag} OK done\r\n"),
            "SELECT" | "EXAMINE" => format!(
                "* 0 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1] v\r\n* OK [UIDNEXT 1] n\r\n\
                 {tag} OK [READ-WRITE] opened\r\n"
            ),
            "IDLE" => {
                idle_tag = Some(tag.to_string());
                "+ idling\r\n".to_string()
            }
            "LOGOUT" if o.swallow_logout => continue,
            "LOGOUT" => {
                c.send(format!("* BYE see you\r\n{tag} OK bye\r\n").as_bytes());
                return;
            }
            _ => format!("{tag} BAD unknown command\r\n"),
        };
        if !c.send(answer.as_bytes()) {
            return;
        }
    }
}
