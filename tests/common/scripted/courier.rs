//! An IMAP server that answers like Courier-IMAP 5 where it matters for
//! "nothing new": its SELECT/EXAMINE sends no `[UIDNEXT]`. It answers
//! `UID SEARCH UID n:*` as RFC 3501 §9 reads `n:*` (with nothing at or
//! above `n` the highest UID in use is still found), and it answers a full
//! listing (`UID FETCH 1:*`) with NO when no mail arrived since the last
//! one. (async-imap reads a FETCH answered NO as an empty result, so the
//! tests count the listings rather than wait for an error.)
//!
//! `UID COPY` is answered OK (without COPYUID); STORE, EXPUNGE and MOVE
//! are not offered.
//!
//! INBOX: UIDVALIDITY 7, UID n is message n (nothing is ever expunged).

use std::sync::{Arc, Mutex};

use super::{listen, Conn, Log};

#[derive(Default)]
struct Inbox {
    mails: Vec<Vec<u8>>,
    /// The message count at the last full listing.
    listed: Option<usize>,
}

/// A running server on 127.0.0.1 (it lives as long as the test process).
pub struct Courier {
    pub port: u16,
    pub log: Log,
    inbox: Arc<Mutex<Inbox>>,
}

impl Courier {
    pub fn start(mails: Vec<Vec<u8>>) -> Courier {
        Courier::with_caps(mails, "IMAP4rev1 UIDPLUS")
    }

    /// With this CAPABILITY list (an older Courier has no UIDPLUS).
    pub fn with_caps(mails: Vec<Vec<u8>>, caps: &'static str) -> Courier {
        let inbox = Arc::new(Mutex::new(Inbox {
            mails,
            listed: None,
        }));
        let shared = inbox.clone();
        let (port, log) = listen(move |conn| session(conn, &shared, caps));
        Courier { port, log, inbox }
    }

    /// A new mail arrives in INBOX.
    pub fn deliver(&self, mail: Vec<u8>) {
        self.inbox.lock().unwrap().mails.push(mail);
    }

    /// How many command lines contain `text`.
    pub fn count(&self, text: &str) -> usize {
        let log = self.log.lock().unwrap();
        log.iter().filter(|l| l.contains(text)).count()
    }
}

fn session(mut c: Conn, inbox: &Mutex<Inbox>, caps: &str) {
    c.send(format!("* OK [CAPABILITY {caps}] Courier-IMAP ready (scripted)\r\n").as_bytes());
    while let Some(line) = c.line() {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        let tag = words.first().copied().unwrap_or("*");
        let cmd = words
            .get(1)
            .map(|w| w.to_ascii_uppercase())
            .unwrap_or_default();
        let sub = words
            .get(2)
            .map(|w| w.to_ascii_uppercase())
            .unwrap_or_default();
        let mut inbox = inbox.lock().unwrap();
        let n = inbox.mails.len();
        let reply = match (cmd.as_str(), sub.as_str()) {
            ("CAPABILITY", _) => format!("* CAPABILITY {caps}\r\n{tag} OK done\r\n"),
            // The copy is made; the original stays.
            ("UID", "COPY") => format!("{tag} OK COPY completed\r\n"),
            ("LOGIN", _) | ("NOOP", _) => format!("{tag} OK done\r\n"),
            // No [UIDNEXT], as Courier.
            ("EXAMINE" | "SELECT", _) => format!(
                "* FLAGS (\\Seen)\r\n* {n} EXISTS\r\n* 0 RECENT\r\n\
                 * OK [UIDVALIDITY 7] Ok\r\n{tag} OK [READ-ONLY] Ok\r\n"
            ),
            ("UID", "SEARCH") => {
                let from = words
                    .last()
                    .and_then(|w| w.strip_suffix(":*"))
                    .and_then(|w| w.parse::<usize>().ok());
                match from {
                    Some(_) if n == 0 => format!("* SEARCH\r\n{tag} OK done\r\n"),
                    // RFC 3501 §9: n:* is n..=highest or highest..=n.
                    Some(from) => {
                        let found: Vec<String> = (from.min(n)..=n.max(from))
                            .filter(|uid| (1..=n).contains(uid))
                            .map(|uid| uid.to_string())
                            .collect();
                        format!("* SEARCH {}\r\n{tag} OK done\r\n", found.join(" "))
                    }
                    None => format!("{tag} BAD only UID SEARCH UID n:* here\r\n"),
                }
            }
            ("UID", "FETCH") if words.get(3) == Some(&"1:*") => {
                if inbox.listed == Some(n) {
                    format!("{tag} NO nothing is new: no full listing needed\r\n")
                } else {
                    inbox.listed = Some(n);
                    let mut out = String::new();
                    for (i, m) in inbox.mails.iter().enumerate() {
                        let uid = i + 1;
                        out += &format!("* {uid} FETCH (UID {uid} RFC822.SIZE {})\r\n", m.len());
                    }
                    out + &format!("{tag} OK done\r\n")
                }
            }
            ("UID", "FETCH") => {
                let set = words.get(3).copied().unwrap_or("");
                let mut out = Vec::new();
                for uid in uids(set, n) {
                    let m = &inbox.mails[uid - 1];
                    out.extend_from_slice(
                        format!(
                            "* {uid} FETCH (UID {uid} RFC822.SIZE {} INTERNALDATE \
                             \"03-Dec-2026 01:00:00 +0000\" BODY[] {{{}}}\r\n",
                            m.len(),
                            m.len()
                        )
                        .as_bytes(),
                    );
                    out.extend_from_slice(m);
                    out.extend_from_slice(b")\r\n");
                }
                out.extend_from_slice(format!("{tag} OK done\r\n").as_bytes());
                drop(inbox);
                if !c.send(&out) {
                    return;
                }
                continue;
            }
            ("LOGOUT", _) => {
                c.send(
                    format!("* BYE Courier-IMAP server shutting down\r\n{tag} OK done\r\n")
                        .as_bytes(),
                );
                return;
            }
            _ => format!("{tag} BAD unknown command\r\n"),
        };
        drop(inbox);
        if !c.send(reply.as_bytes()) {
            return;
        }
    }
}

/// The UIDs of a set such as `2`, `1,3:4` that exist (1..=n).
fn uids(set: &str, n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for part in set.split(',') {
        let bound = |s: &str| if s == "*" { Some(n) } else { s.parse().ok() };
        let (a, b) = match part.split_once(':') {
            Some((a, b)) => (bound(a), bound(b)),
            None => (bound(part), bound(part)),
        };
        if let (Some(a), Some(b)) = (a, b) {
            out.extend(a.min(b).max(1)..=a.max(b).min(n));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}
