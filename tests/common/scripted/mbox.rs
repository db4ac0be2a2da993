//! An IMAP server that keeps INBOX the way GNU mailutils' imap4d keeps an
//! mbox file nobody opened read-write since new mail came: every session
//! (every SELECT/EXAMINE) gives INBOX a new UIDVALIDITY and new UIDs, and
//! the bookkeeping header fields inside the bytes change with them —
//! `X-IMAPbase: <uidvalidity> <uidnext>` on the first mail, `Status:`
//! (which another client's flags change: here every third mail alternates
//! between `O` and `RO` from session to session) and `X-UID: <uid>` at the
//! end of each header. `BODY.PEEK[HEADER]` returns the header as
//! `BODY.PEEK[]` has it, blank line included (RFC 3501 §6.4.5).
//!
//! No IDLE: the daemon keeps no connection, so every fetch is a session.
//! Nothing is ever expunged. `BODY[]` replies are counted per session.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::{listen, Conn, Log};

/// A running server on 127.0.0.1 (it lives as long as the test process).
pub struct Mbox {
    pub port: u16,
    pub log: Log,
    mails: Arc<Mutex<Vec<Vec<u8>>>>,
    sessions: Arc<AtomicU32>,
}

impl Mbox {
    /// INBOX holds `mails` (each a header, a blank line, a body; CRLF).
    pub fn start(mails: Vec<Vec<u8>>) -> Mbox {
        let mails = Arc::new(Mutex::new(mails));
        let sessions = Arc::new(AtomicU32::new(0));
        let (m, s) = (mails.clone(), sessions.clone());
        let (port, log) = listen(move |conn| session(conn, &m, &s));
        Mbox {
            port,
            log,
            mails,
            sessions,
        }
    }

    /// A new mail arrives.
    pub fn deliver(&self, mail: Vec<u8>) {
        self.mails.lock().unwrap().push(mail);
    }

    /// The bytes `BODY[]` of mail `index` (0-based) had in session `n`.
    pub fn as_sent(&self, index: usize, n: u32) -> Vec<u8> {
        let mails = self.mails.lock().unwrap();
        with_bookkeeping(&mails, index, n)
    }

    /// How many sessions opened INBOX so far.
    pub fn sessions(&self) -> u32 {
        self.sessions.load(Ordering::SeqCst)
    }

    /// The command lines seen so far, over all connections.
    pub fn commands(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// How many command lines contain `text`.
    pub fn count(&self, text: &str) -> usize {
        self.commands().iter().filter(|l| l.contains(text)).count()
    }
}

/// UIDVALIDITY of session `n`.
fn validity(n: u32) -> u32 {
    1_700_000_000 + n
}

/// UID of mail `index` in session `n`: renumbered every session.
fn uid(index: usize, n: u32) -> u32 {
    n * 1000 + index as u32 + 1
}

/// Mail `index` as session `n` hands it out.
fn with_bookkeeping(mails: &[Vec<u8>], index: usize, n: u32) -> Vec<u8> {
    let mail = &mails[index];
    let end = mail
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(mail.len(), |p| p + 2);
    let mut out = Vec::new();
    if index == 0 {
        let next = uid(mails.len(), n);
        out.extend_from_slice(format!("X-IMAPbase: {} {next}\r\n", validity(n)).as_bytes());
    }
    out.extend_from_slice(&mail[..end]);
    let status = if index % 3 == 0 && n % 2 == 0 {
        "RO"
    } else {
        "O"
    };
    out.extend_from_slice(format!("Status: {status}\r\nX-UID: {}\r\n", uid(index, n)).as_bytes());
    out.extend_from_slice(&mail[end..]);
    out
}

fn session(mut c: Conn, mails: &Mutex<Vec<Vec<u8>>>, sessions: &AtomicU32) {
    c.send(b"* OK GNU IMAP4 Daemon ready (scripted mbox)\r\n");
    // This session's number, once INBOX is open.
    let mut n = 0u32;
    while let Some(line) = c.line() {
        let mut words = line.split_ascii_whitespace();
        let tag = words.next().unwrap_or("*").to_string();
        let cmd = words.next().unwrap_or("").to_ascii_uppercase();
        let reply = match cmd.as_str() {
            "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 UIDPLUS\r\n{tag} OK done\r\n"),
            "LOGIN" => format!("{tag} OK LOGIN Completed\r\n"),
            "NOOP" => format!("{tag} OK NOOP Completed\r\n"),
            "EXAMINE" | "SELECT" => {
                n = sessions.fetch_add(1, Ordering::SeqCst) + 1;
                let count = mails.lock().unwrap().len();
                format!(
                    "* {count} EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY {}] UID valid\r\n\
                     * OK [UIDNEXT {}] Predicted next uid\r\n{tag} OK [READ-ONLY] done\r\n",
                    validity(n),
                    uid(count, n)
                )
            }
            "UID" if n > 0 => {
                let rest: Vec<&str> = words.collect();
                if rest.first().map(|w| w.to_ascii_uppercase()).as_deref() != Some("FETCH") {
                    format!("{tag} BAD only UID FETCH here\r\n")
                } else {
                    let set = rest.get(1).copied().unwrap_or("");
                    let items = rest.get(2..).map(|w| w.join(" ")).unwrap_or_default();
                    let mut out = fetch(&mails.lock().unwrap(), n, set, &items);
                    out.extend_from_slice(format!("{tag} OK UID FETCH Completed\r\n").as_bytes());
                    if !c.send(&out) {
                        return;
                    }
                    continue;
                }
            }
            "LOGOUT" => {
                c.send(format!("* BYE Session terminating.\r\n{tag} OK done\r\n").as_bytes());
                return;
            }
            _ => format!("{tag} BAD unknown command\r\n"),
        };
        if !c.send(reply.as_bytes()) {
            return;
        }
    }
}

/// The untagged replies to `UID FETCH <set> <items>` in session `n`.
fn fetch(mails: &[Vec<u8>], n: u32, set: &str, items: &str) -> Vec<u8> {
    let items = items.to_ascii_uppercase();
    let mut out = Vec::new();
    for index in 0..mails.len() {
        let u = uid(index, n);
        if !in_set(set, u, uid(mails.len(), n) - 1) {
            continue;
        }
        let mail = with_bookkeeping(mails, index, n);
        let len = mail.len();
        let (section, bytes) = if items.contains("BODY.PEEK[HEADER]") {
            let end = mail
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(len, |p| p + 4);
            ("BODY[HEADER]", &mail[..end])
        } else if items.contains("BODY.PEEK[]") {
            ("BODY[]", &mail[..])
        } else {
            out.extend_from_slice(
                format!("* {u} FETCH (UID {u} RFC822.SIZE {len})\r\n").as_bytes(),
            );
            continue;
        };
        out.extend_from_slice(
            format!(
                "* {u} FETCH (UID {u} RFC822.SIZE {len} INTERNALDATE \
                 \"03-Dec-2026 01:00:00 +0000\" {section} {{{}}}\r\n",
                bytes.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(bytes);
        out.extend_from_slice(b")\r\n");
    }
    out
}

/// Whether `uid` is in a set such as `1:*`, `1001,1003:1005` (`*` = `max`).
fn in_set(set: &str, uid: u32, max: u32) -> bool {
    set.split(',').any(|part| {
        let bound = |s: &str| if s == "*" { Some(max) } else { s.parse().ok() };
        let (a, b) = match part.split_once(':') {
            Some((a, b)) => (bound(a), bound(b)),
            None => (bound(part), bound(part)),
        };
        matches!((a, b), (Some(a), Some(b)) if a.min(b) <= uid && uid <= a.max(b))
    })
}
