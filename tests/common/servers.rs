//! The other IMAP servers of the test environment, beside Dovecot: Cyrus
//! imapd 3.6, Courier-IMAP 5 and GNU mailutils imap4d 3.15, started by
//! `scripts/testenv-servers`. What the server matrix (tests/server_matrix.rs)
//! needs to know of each — ports, how a user logs in, where Trash is, which
//! quirks to expect — is data here, so every scenario is written once.
//!
//! Each server has the same pool of users (`pfm1` …), one password per run.
//! A test takes fresh users from the pool ([`Server::user`]) and empties
//! their INBOX and Trash first, so a second run in one `scripts/testenv
//! shell` starts clean too. A server missing from the environment fails
//! the test: the matrix never passes by skipping a server.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use super::imapc::Imap;
use super::Env;

/// A server of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Cyrus,
    Courier,
    Imap4d,
}

/// How the daemon's account talks to a server in a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// LOGIN in clear text (allowed on loopback).
    Plain,
    /// STARTTLS on the clear-text port, with the run's CA.
    Starttls,
    /// Implicit TLS on the server's TLS port, with the run's CA.
    Tls,
}

impl Mode {
    pub fn setting(self) -> &'static str {
        match self {
            Mode::Plain => "none",
            Mode::Starttls => "starttls",
            Mode::Tls => "tls",
        }
    }
}

/// A user of one server's pool.
#[derive(Debug, Clone)]
pub struct ServerUser {
    pub server: Server,
    /// The pool name (`pfm7`).
    pub name: String,
    /// What LOGIN takes (imap4d's virtual users log in with their domain).
    pub login: String,
    pub password: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: the server matrix needs scripts/testenv (scripts/test)")
    })
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Cyrus => "Cyrus",
            Server::Courier => "Courier",
            Server::Imap4d => "imap4d",
        }
    }

    /// The clear-text (STARTTLS-capable) and implicit-TLS ports.
    fn ports(self) -> (u16, u16) {
        let name = match self {
            Server::Cyrus => "POSTFACH_TEST_CYRUS_PORTS",
            Server::Courier => "POSTFACH_TEST_COURIER_PORTS",
            Server::Imap4d => "POSTFACH_TEST_IMAP4D_PORTS",
        };
        let v = var(name);
        let ports: Vec<u16> = v
            .split_whitespace()
            .map(|p| p.parse().expect("a port"))
            .collect();
        assert_eq!(ports.len(), 2, "{name}={v}");
        (ports[0], ports[1])
    }

    pub fn port(self, mode: Mode) -> u16 {
        match mode {
            Mode::Plain | Mode::Starttls => self.ports().0,
            Mode::Tls => self.ports().1,
        }
    }

    /// The Trash folder as the server names it: Cyrus and Courier keep
    /// personal folders under `INBOX.`, imap4d beside INBOX.
    pub fn trash(self) -> &'static str {
        match self {
            Server::Cyrus | Server::Courier => "INBOX.Trash",
            Server::Imap4d => "Trash",
        }
    }

    /// UIDPLUS (RFC 4315): without it (imap4d) delete on server is skipped
    /// with a warning, and a Trash move is a copy that leaves the original.
    pub fn uidplus(self) -> bool {
        self != Server::Imap4d
    }

    /// Whether IDLE reports new mail by itself. imap4d never pushes; the
    /// daemon then finds new mail by its poll interval, on the idling
    /// session (docs/SERVERS.md "IDLE and the poll interval").
    pub fn idle_pushes(self) -> bool {
        self != Server::Imap4d
    }

    /// `mail` without the headers the server adds to it on its own: none
    /// on Cyrus and Courier, which keep a mail byte for byte as appended;
    /// imap4d's mbox bookkeeping (X-IMAPbase, X-UID, Status, X-Status,
    /// X-Keywords), which it also rewrites when flags change.
    pub fn without_bookkeeping(self, mail: &[u8]) -> Vec<u8> {
        if self != Server::Imap4d {
            return mail.to_vec();
        }
        const ADDED: [&str; 5] = [
            "x-imapbase:",
            "x-uid:",
            "status:",
            "x-status:",
            "x-keywords:",
        ];
        let end = mail
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(mail.len(), |p| p + 2);
        let mut out = Vec::with_capacity(mail.len());
        for line in mail[..end].split_inclusive(|&b| b == b'\n') {
            let lower = String::from_utf8_lossy(line).to_ascii_lowercase();
            if !ADDED.iter().any(|h| lower.starts_with(h)) {
                out.extend_from_slice(line);
            }
        }
        out.extend_from_slice(&mail[end..]);
        out
    }

    /// A fresh user of the pool, with an empty INBOX and Trash.
    pub fn user(self) -> ServerUser {
        static NEXT: [AtomicU32; 3] = [AtomicU32::new(1), AtomicU32::new(1), AtomicU32::new(1)];
        let pool: u32 = var("POSTFACH_TEST_MATRIX_USERS")
            .parse()
            .expect("pool size");
        let n = NEXT[self as usize].fetch_add(1, Ordering::Relaxed);
        assert!(
            n <= pool,
            "{}: the pool of {pool} users is used up",
            self.name()
        );
        let name = format!("pfm{n}");
        let login = match self {
            Server::Imap4d => format!("{name}@{}", Env::get().domain),
            _ => name.clone(),
        };
        let user = ServerUser {
            server: self,
            name,
            login,
            password: var("POSTFACH_TEST_MATRIX_PASSWORD"),
        };
        let mut imap = user.imap();
        imap.empty("INBOX");
        imap.empty(self.trash());
        imap.logout();
        user
    }
}

impl ServerUser {
    /// A clear-text session of the test's own, logged in.
    pub fn imap(&self) -> Imap {
        Imap::login(self.server.port(Mode::Plain), &self.login, &self.password)
    }

    /// Appends each mail to INBOX in one session.
    pub fn seed(&self, mails: &[Vec<u8>]) {
        let mut imap = self.imap();
        for m in mails {
            imap.append("INBOX", m);
        }
        imap.logout();
    }

    pub fn count(&self, folder: &str) -> u32 {
        let mut imap = self.imap();
        let n = imap.count(folder);
        imap.logout();
        n
    }

    pub fn uidvalidity(&self) -> u32 {
        let mut imap = self.imap();
        let v = imap.select("INBOX").1;
        imap.logout();
        v
    }

    /// INBOX as the server sends it (BODY.PEEK[] of every mail).
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        let mut imap = self.imap();
        let b = imap.bodies("INBOX");
        imap.logout();
        b
    }

    /// Gives INBOX a new UIDVALIDITY with the same mails under new UIDs, as
    /// a restored or rebuilt mailbox has (RFC 3501 §2.3.1.1). Cyrus: the
    /// mailbox is deleted by an admin (`pfmadmin`) and made again at the
    /// user's next login, and the mails appended again. Courier: its UID
    /// list (courierimapuiddb) is removed, so it numbers the maildir anew.
    /// imap4d: its UIDVALIDITY and UIDs live in the mbox headers
    /// X-IMAPbase and X-UID; without them (an mbox another program
    /// rewrote) it numbers the mails anew.
    pub fn renumber(&self) {
        let before = self.uidvalidity();
        match self.server {
            Server::Cyrus => {
                let mails = self.bodies();
                let mut admin =
                    Imap::login(self.server.port(Mode::Plain), "pfmadmin", &self.password);
                // An admin may change the rights of any mailbox, but needs
                // the delete right (RFC 4314 "x") like anyone else.
                let mailbox = format!("\"user.{}\"", self.name);
                admin.ok(&format!("SETACL {mailbox} pfmadmin lrswipkxtea"));
                admin.ok(&format!("DELETE {mailbox}"));
                admin.logout();
                // Cyrus' UIDVALIDITY counts seconds: the new one differs
                // only from the next second on.
                std::thread::sleep(std::time::Duration::from_millis(1100));
                self.seed(&mails);
            }
            Server::Courier => {
                std::thread::sleep(std::time::Duration::from_millis(1100));
                let db = self.courier_maildir().join("courierimapuiddb");
                std::fs::remove_file(&db)
                    .unwrap_or_else(|e| panic!("remove {}: {e}", db.display()));
            }
            Server::Imap4d => {
                std::thread::sleep(std::time::Duration::from_millis(1100));
                let path = Env::get()
                    .dir
                    .join("imap4d/home")
                    .join(&self.name)
                    .join("INBOX");
                let mbox = std::fs::read(&path).expect("read the mbox");
                let kept: Vec<u8> = mbox
                    .split_inclusive(|&b| b == b'\n')
                    .filter(|l| !l.starts_with(b"X-IMAPbase:") && !l.starts_with(b"X-UID:"))
                    .flatten()
                    .copied()
                    .collect();
                // Written in place: the file keeps its owner.
                std::fs::write(&path, kept).expect("rewrite the mbox");
            }
        }
        let after = self.uidvalidity();
        assert_ne!(
            before,
            after,
            "{}: UIDVALIDITY unchanged",
            self.server.name()
        );
    }

    fn courier_maildir(&self) -> PathBuf {
        Env::get()
            .dir
            .join("courier/home")
            .join(&self.name)
            .join("Maildir")
    }
}
