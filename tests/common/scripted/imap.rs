//! An IMAP server with one mail in INBOX whose body FETCH is hostile.

use std::time::Duration;

use super::{listen, Conn, Log};

/// What the body `UID FETCH` gets.
#[derive(Clone)]
pub enum Body {
    /// A FETCH response announcing a literal of this many bytes, a few of
    /// them, then nothing until the client leaves.
    HugeLiteral(u64),
    /// An unsolicited FETCH (a flag change) a second, never the tagged
    /// reply: each is harmless, and each resets a read timeout.
    UntaggedDrip,
}

/// Starts the server; the mail is listed with RFC822.SIZE `listed`.
pub fn start(listed: u64, body: Body) -> (u16, Log) {
    listen(move |conn| session(conn, listed, &body))
}

fn session(mut c: Conn, listed: u64, body: &Body) {
    c.send(b"* OK [CAPABILITY IMAP4rev1] scripted IMAP ready\r\n");
    while let Some(line) = c.line() {
        let mut words = line.split_ascii_whitespace();
        let tag = words.next().unwrap_or("*").to_string();
        let cmd = words.next().unwrap_or("").to_ascii_uppercase();
        let reply = match cmd.as_str() {
            "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 UIDPLUS\r\n{tag} OK done\r\n"),
            "LOGIN" | "NOOP" => format!("{tag} OK done\r\n"),
            "EXAMINE" | "SELECT" => format!(
                "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 2] ok\r\n\
                 {tag} OK [READ-ONLY] done\r\n"
            ),
            "UID" if line.contains("1:*") => {
                format!("* 1 FETCH (UID 1 RFC822.SIZE {listed})\r\n{tag} OK done\r\n")
            }
            "UID" => {
                hostile(&mut c, body);
                return;
            }
            "LOGOUT" => {
                c.send(format!("* BYE\r\n{tag} OK done\r\n").as_bytes());
                return;
            }
            _ => format!("{tag} BAD unknown\r\n"),
        };
        if !c.send(reply.as_bytes()) {
            return;
        }
    }
}

fn hostile(c: &mut Conn, body: &Body) {
    match body {
        Body::HugeLiteral(n) => {
            let head = format!("* 1 FETCH (UID 1 RFC822.SIZE 100 BODY[] {{{n}}}\r\nFrom: x\r\n");
            if c.send(head.as_bytes()) {
                // Hold the connection until the client gives up on it.
                while c.line().is_some() {}
            }
        }
        Body::UntaggedDrip => loop {
            std::thread::sleep(Duration::from_secs(1));
            if !c.send(b"* 1 FETCH (FLAGS (\\Seen))\r\n") {
                return;
            }
        },
    }
}
