//! An IMAP server whose folders are listed like Courier-IMAP's: personal
//! folders under the `INBOX.` namespace with `.` as delimiter, and no
//! SPECIAL-USE (RFC 6154) attributes, so its only Trash is `INBOX.Trash`.
//! INBOX is empty; LIST answers `LIST "" "*"`, everything else is refused.

use super::{listen, Conn, Log};

/// A running server on 127.0.0.1 (it lives as long as the test process).
pub struct CourierFolders {
    pub port: u16,
    pub log: Log,
}

impl CourierFolders {
    /// Lists INBOX and `folders` (full names, e.g. `INBOX.Trash`).
    pub fn start(folders: &'static [&'static str]) -> CourierFolders {
        let (port, log) = listen(move |conn| session(conn, folders));
        CourierFolders { port, log }
    }
}

fn session(mut c: Conn, folders: &[&str]) {
    c.send(b"* OK [CAPABILITY IMAP4rev1 UIDPLUS] Courier-IMAP ready (scripted)\r\n");
    while let Some(line) = c.line() {
        let mut words = line.split_ascii_whitespace();
        let tag = words.next().unwrap_or("*").to_string();
        let cmd = words.next().unwrap_or("").to_ascii_uppercase();
        let reply = match cmd.as_str() {
            "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 UIDPLUS\r\n{tag} OK done\r\n"),
            "LOGIN" => format!("{tag} OK LOGIN Ok.\r\n"),
            "NOOP" => format!("{tag} OK NOOP completed\r\n"),
            "LIST" => {
                let mut out = String::from("* LIST (\\Marked \\HasChildren) \".\" \"INBOX\"\r\n");
                for f in folders {
                    out.push_str(&format!("* LIST (\\HasNoChildren) \".\" \"{f}\"\r\n"));
                }
                out.push_str(&format!("{tag} OK LIST completed\r\n"));
                out
            }
            "LOGOUT" => {
                c.send(
                    format!(
                        "* BYE Courier-IMAP server shutting down\r\n{tag} OK LOGOUT completed\r\n"
                    )
                    .as_bytes(),
                );
                return;
            }
            _ => format!("{tag} NO Mailbox does not exist, or must be subscribed to.\r\n"),
        };
        if !c.send(reply.as_bytes()) {
            return;
        }
    }
}
