//! A POP3 server whose mails may lie about their size or drip.

use std::time::Duration;

use super::{generated, listen, Conn, Log};

/// What RETR sends for a mail.
#[derive(Clone)]
pub enum Body {
    /// These bytes (no line may start with a dot).
    Bytes(Vec<u8>),
    /// [`generated`] bytes of this length.
    Generated(usize),
    /// "+OK", then a byte a second.
    Drip,
}

#[derive(Clone)]
pub struct Mail {
    /// What LIST says.
    pub listed: u64,
    pub uidl: String,
    pub body: Body,
}

/// Starts the server; `drip_greeting`: the greeting comes a byte a second.
pub fn start(drip_greeting: bool, mails: Vec<Mail>) -> (u16, Log) {
    listen(move |conn| session(conn, drip_greeting, &mails))
}

fn session(mut c: Conn, drip_greeting: bool, mails: &[Mail]) {
    if drip_greeting {
        c.drip(&[b'+'; 100_000], Duration::from_secs(1));
        return;
    }
    c.send(b"+OK scripted POP3 ready\r\n");
    while let Some(line) = c.line() {
        let mut words = line.split_ascii_whitespace();
        let cmd = words.next().unwrap_or("").to_ascii_uppercase();
        let arg = words.next().and_then(|n| n.parse::<usize>().ok());
        let mail = arg
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| mails.get(i));
        let ok = match (cmd.as_str(), mail) {
            ("CAPA", _) => c.send(b"+OK\r\nUIDL\r\nUSER\r\n.\r\n"),
            ("USER", _) | ("PASS", _) | ("DELE", Some(_)) | ("NOOP", _) => c.send(b"+OK\r\n"),
            ("LIST", _) | ("UIDL", _) => {
                let mut out = String::from("+OK\r\n");
                for (i, m) in mails.iter().enumerate() {
                    let v = if cmd == "LIST" {
                        m.listed.to_string()
                    } else {
                        m.uidl.clone()
                    };
                    out.push_str(&format!("{} {v}\r\n", i + 1));
                }
                out.push_str(".\r\n");
                c.send(out.as_bytes())
            }
            ("RETR", Some(m)) => retr(&mut c, &m.body),
            ("QUIT", _) => {
                c.send(b"+OK bye\r\n");
                return;
            }
            _ => c.send(b"-ERR unknown\r\n"),
        };
        if !ok {
            return;
        }
    }
}

fn retr(c: &mut Conn, body: &Body) -> bool {
    if !c.send(b"+OK message follows\r\n") {
        return false;
    }
    let sent = match body {
        Body::Bytes(b) => c.send(b),
        Body::Generated(len) => {
            let all = generated(*len, b'g');
            all.chunks(1 << 20).all(|piece| c.send(piece))
        }
        Body::Drip => {
            c.drip(&[b'x'; 100_000], Duration::from_secs(1));
            return false;
        }
    };
    sent && c.send(b".\r\n")
}
