//! A small blocking IMAP client for the tests' side of the server matrix:
//! seeding mail with APPEND, counting and reading what the server holds,
//! emptying folders. In clear text on loopback, so that it works the same
//! on every server; what it reads is the server's view, not the daemon's.
//!
//! Deliberately minimal: one command at a time, literals only where the
//! test sends them (APPEND) or the server answers with one (BODY[]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An IMAP session, logged in.
pub struct Imap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

/// One response line with the literals it announced, in order.
#[derive(Debug)]
pub struct Line {
    pub text: String,
    pub literals: Vec<Vec<u8>>,
}

impl Imap {
    /// Connects to 127.0.0.1:`port` and logs in; panics with the server's
    /// answer when it refuses.
    pub fn login(port: u16, user: &str, password: &str) -> Imap {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to the IMAP server on port {port}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("read timeout");
        let writer = stream.try_clone().expect("clone the stream");
        let mut imap = Imap {
            reader: BufReader::new(stream),
            writer,
            tag: 0,
        };
        let greeting = imap.read_line();
        assert!(greeting.text.starts_with("* OK"), "greeting: {greeting:?}");
        imap.ok(&format!("LOGIN {} {}", quote(user), quote(password)));
        imap
    }

    fn read_line(&mut self) -> Line {
        let mut text = String::new();
        let mut literals = Vec::new();
        loop {
            let mut raw = Vec::new();
            let n = self
                .reader
                .read_until(b'\n', &mut raw)
                .expect("read from the IMAP server");
            assert!(
                n > 0,
                "the IMAP server closed the connection after {text:?}"
            );
            let part = String::from_utf8_lossy(&raw).trim_end().to_string();
            text.push_str(&part);
            // A line ending in {n} announces n bytes of literal, then more line.
            match literal_len(&part) {
                Some(len) => {
                    let mut buf = vec![0; len];
                    self.reader.read_exact(&mut buf).expect("read a literal");
                    literals.push(buf);
                }
                None => return Line { text, literals },
            }
        }
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("t{}", self.tag)
    }

    /// Runs `command`; the untagged lines if it ends OK, else a panic.
    pub fn ok(&mut self, command: &str) -> Vec<Line> {
        let (status, lines) = self.run(command);
        assert!(status.starts_with("OK"), "{command}: {status} {lines:?}");
        lines
    }

    /// Runs `command`: its tagged status text and the untagged lines.
    pub fn run(&mut self, command: &str) -> (String, Vec<Line>) {
        let tag = self.next_tag();
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .expect("send a command");
        self.collect(&tag)
    }

    fn collect(&mut self, tag: &str) -> (String, Vec<Line>) {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line();
            if let Some(status) = line.text.strip_prefix(&format!("{tag} ")) {
                return (status.to_string(), lines);
            }
            lines.push(line);
        }
    }

    /// Appends `mail` to `folder` as it is (a synchronising literal).
    pub fn append(&mut self, folder: &str, mail: &[u8]) {
        let tag = self.next_tag();
        self.writer
            .write_all(format!("{tag} APPEND {} {{{}}}\r\n", quote(folder), mail.len()).as_bytes())
            .expect("send APPEND");
        let cont = self.read_line();
        assert!(cont.text.starts_with('+'), "APPEND: {cont:?}");
        self.writer.write_all(mail).expect("send the mail");
        self.writer.write_all(b"\r\n").expect("end APPEND");
        let (status, lines) = self.collect(&tag);
        assert!(status.starts_with("OK"), "APPEND: {status} {lines:?}");
    }

    /// SELECTs `folder`: its number of mails and UIDVALIDITY.
    pub fn select(&mut self, folder: &str) -> (u32, u32) {
        let lines = self.ok(&format!("SELECT {}", quote(folder)));
        let mut exists = None;
        let mut validity = None;
        for l in &lines {
            let words: Vec<&str> = l.text.split_whitespace().collect();
            if words.len() >= 3 && words[2].eq_ignore_ascii_case("EXISTS") {
                exists = words[1].parse().ok();
            }
            if let Some(rest) = l.text.split("[UIDVALIDITY ").nth(1) {
                validity = rest.split(']').next().and_then(|v| v.parse().ok());
            }
        }
        (
            exists.unwrap_or_else(|| panic!("no EXISTS for {folder}: {lines:?}")),
            validity.unwrap_or_else(|| panic!("no UIDVALIDITY for {folder}: {lines:?}")),
        )
    }

    /// The number of mails in `folder`.
    pub fn count(&mut self, folder: &str) -> u32 {
        self.select(folder).0
    }

    /// The bytes of every mail of `folder` as the server sends them
    /// (BODY.PEEK[], which leaves \Seen alone), in sequence order.
    pub fn bodies(&mut self, folder: &str) -> Vec<Vec<u8>> {
        if self.select(folder).0 == 0 {
            return Vec::new();
        }
        self.ok("FETCH 1:* (BODY.PEEK[])")
            .into_iter()
            .filter(|l| l.text.contains("FETCH"))
            .map(|l| {
                l.literals
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| panic!("FETCH without a literal: {}", l.text))
            })
            .collect()
    }

    /// Removes every mail of `folder` (STORE \Deleted, EXPUNGE).
    pub fn empty(&mut self, folder: &str) {
        if self.select(folder).0 > 0 {
            self.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)");
            self.ok("EXPUNGE");
        }
    }

    pub fn logout(mut self) {
        let _ = self.run("LOGOUT");
    }
}

/// `{n}` (or `{n+}`) at the end of a line: the length of the literal.
fn literal_len(line: &str) -> Option<usize> {
    let inner = line.strip_suffix('}')?;
    let start = inner.rfind('{')?;
    inner[start + 1..].trim_end_matches('+').parse().ok()
}

/// An IMAP quoted string (RFC 3501 §4.3).
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
