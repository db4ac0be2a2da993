//! An IMAP server that answers like GNU mailutils' imap4d where it differs
//! from Dovecot: a partial fetch whose origin is at or past the end of the
//! mail gets `* 2 FETCH (UID 2 BODY[])` — `BODY[]` without its (empty)
//! string, which no IMAP parser reads — and IDLE never pushes anything
//! (new mail shows only in the reply to a NOOP or a new SELECT/EXAMINE).
//! Mails can arrive while it runs ([`Imap4d::deliver`]), and a mail can be
//! made to get that unreadable reply for every body fetch
//! ([`Imap4d::break_uid`]), as a stand-in for any reply a parser chokes on.
//!
//! INBOX: UIDVALIDITY 7, UID n is message n (nothing is ever expunged).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use super::{listen, Conn, Log};

#[derive(Default)]
struct Inbox {
    mails: Vec<Vec<u8>>,
    broken: HashSet<u32>,
}

/// A running server on 127.0.0.1 (it lives as long as the test process).
pub struct Imap4d {
    pub port: u16,
    pub log: Log,
    inbox: Arc<Mutex<Inbox>>,
}

impl Imap4d {
    pub fn start(mails: Vec<Vec<u8>>) -> Imap4d {
        let inbox = Arc::new(Mutex::new(Inbox {
            mails,
            broken: HashSet::new(),
        }));
        let shared = inbox.clone();
        let (port, log) = listen(move |conn| session(conn, &shared));
        Imap4d { port, log, inbox }
    }

    /// A new mail arrives in INBOX; no client is told until it asks.
    pub fn deliver(&self, mail: Vec<u8>) {
        self.inbox.lock().unwrap().mails.push(mail);
    }

    /// Every body fetch of `uid` gets the unreadable reply (or, with
    /// `broken` false, a good one again).
    pub fn break_uid(&self, uid: u32, broken: bool) {
        let mut inbox = self.inbox.lock().unwrap();
        if broken {
            inbox.broken.insert(uid);
        } else {
            inbox.broken.remove(&uid);
        }
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

fn session(mut c: Conn, inbox: &Mutex<Inbox>) {
    c.send(b"* OK GNU IMAP4 Daemon ready (scripted)\r\n");
    // The message count this connection was last told.
    let mut told = 0usize;
    while let Some(line) = c.line() {
        let mut words = line.split_ascii_whitespace();
        let tag = words.next().unwrap_or("*").to_string();
        let cmd = words.next().unwrap_or("").to_ascii_uppercase();
        let reply = match cmd.as_str() {
            "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n{tag} OK done\r\n"),
            "LOGIN" => format!("{tag} OK LOGIN Completed\r\n"),
            "NOOP" => {
                let n = inbox.lock().unwrap().mails.len();
                let news = if n == told {
                    String::new()
                } else {
                    format!("* {n} EXISTS\r\n")
                };
                told = n;
                format!("{news}{tag} OK NOOP Completed\r\n")
            }
            "EXAMINE" | "SELECT" => {
                let n = inbox.lock().unwrap().mails.len();
                told = n;
                format!(
                    "* {n} EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 7] UID valid\r\n\
                     * OK [UIDNEXT {}] Predicted next uid\r\n{tag} OK [READ-WRITE] done\r\n",
                    n + 1
                )
            }
            // Never pushes: waits for DONE, then says OK.
            "IDLE" => {
                if !c.send(b"+ idling\r\n") {
                    return;
                }
                loop {
                    match c.line() {
                        None => return,
                        Some(l) if l.eq_ignore_ascii_case("DONE") => break,
                        Some(_) => {}
                    }
                }
                format!("{tag} OK IDLE Completed\r\n")
            }
            "UID" => {
                let rest: Vec<&str> = words.collect();
                if rest.first().map(|w| w.to_ascii_uppercase()).as_deref() != Some("FETCH") {
                    format!("{tag} BAD only UID FETCH here\r\n")
                } else {
                    let set = rest.get(1).copied().unwrap_or("");
                    let items = rest.get(2..).map(|w| w.join(" ")).unwrap_or_default();
                    let mut out = fetch(&inbox.lock().unwrap(), set, &items);
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

/// The untagged replies to `UID FETCH <set> <items>`.
fn fetch(inbox: &Inbox, set: &str, items: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let items = items.to_ascii_uppercase();
    for uid in uids(set, inbox.mails.len() as u32) {
        let mail = &inbox.mails[uid as usize - 1];
        let len = mail.len();
        if !items.contains("BODY") {
            out.extend_from_slice(
                format!("* {uid} FETCH (UID {uid} RFC822.SIZE {len})\r\n").as_bytes(),
            );
            continue;
        }
        let (origin, count) = partial(&items).unwrap_or((0, len));
        if origin >= len || inbox.broken.contains(&uid) {
            // imap4d's answer past the end: no string after BODY[].
            out.extend_from_slice(format!("* {uid} FETCH (UID {uid} BODY[])\r\n").as_bytes());
            continue;
        }
        let piece = &mail[origin..len.min(origin.saturating_add(count))];
        let section = if items.contains("BODY.PEEK[]<") {
            format!("BODY[]<{origin}>")
        } else {
            "BODY[]".to_string()
        };
        out.extend_from_slice(
            format!(
                "* {uid} FETCH (UID {uid} RFC822.SIZE {len} INTERNALDATE \
                 \"03-Dec-2026 01:00:00 +0000\" {section} {{{}}}\r\n",
                piece.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(piece);
        out.extend_from_slice(b")\r\n");
    }
    out
}

/// `<origin.count>` of a `BODY.PEEK[]<origin.count>` item.
fn partial(items: &str) -> Option<(usize, usize)> {
    let (_, rest) = items.split_once("BODY.PEEK[]<")?;
    let (range, _) = rest.split_once('>')?;
    let (origin, count) = range.split_once('.')?;
    Some((origin.parse().ok()?, count.parse().ok()?))
}

/// The UIDs of a set such as `1:*`, `2`, `1,3:4` that exist (1..=n).
fn uids(set: &str, n: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for part in set.split(',') {
        let bound = |s: &str| if s == "*" { Some(n) } else { s.parse().ok() };
        let (a, b) = match part.split_once(':') {
            Some((a, b)) => (bound(a), bound(b)),
            None => (bound(part), bound(part)),
        };
        if let (Some(a), Some(b)) = (a, b) {
            let (lo, hi) = (a.min(b).max(1), a.max(b).min(n));
            out.extend(lo..=hi);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}
