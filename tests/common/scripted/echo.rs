//! A server that refuses every login by repeating the client's login line
//! — password included — in its error: the server that ARCHITECTURE.md
//! "The D-Bus API"'s "scrubbed of the account's secrets" is about
//! (`NO … "user" "secret"`, `-ERR … PASS secret`).

use super::{listen, Conn};

/// What the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// IMAP: `a1 NO [AUTHENTICATIONFAILED] <the LOGIN line>`.
    ImapLogin,
    /// POP3 with USER/PASS: `-ERR [AUTH] <the PASS line>`.
    Pop3Pass,
    /// POP3 offering SASL PLAIN: `-ERR [AUTH] <the AUTH PLAIN line>`.
    Pop3Plain,
}

/// Starts the server; it serves every connection until the test ends.
/// Returns its port on 127.0.0.1.
pub fn start(kind: Echo) -> u16 {
    listen(move |conn| serve(kind, conn)).0
}

fn serve(kind: Echo, mut c: Conn) {
    let greeting: &[u8] = match kind {
        Echo::ImapLogin => b"* OK [CAPABILITY IMAP4rev1] echo ready\r\n",
        _ => b"+OK echo ready\r\n",
    };
    if !c.send(greeting) {
        return;
    }
    while let Some(said) = c.line() {
        let reply = match kind {
            Echo::ImapLogin => imap(&said),
            _ => pop3(kind, &said),
        };
        if !c.send(reply.as_bytes()) || reply.contains("BYE") || reply.starts_with("+OK bye") {
            return;
        }
    }
}

fn imap(said: &str) -> String {
    let (tag, rest) = said.split_once(' ').unwrap_or((said, ""));
    let command = rest.split(' ').next().unwrap_or("").to_ascii_uppercase();
    match command.as_str() {
        "CAPABILITY" => format!("* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n"),
        "LOGIN" => format!("{tag} NO [AUTHENTICATIONFAILED] refused: {rest}\r\n"),
        "LOGOUT" => format!("* BYE\r\n{tag} OK bye\r\n"),
        _ => format!("{tag} BAD unknown\r\n"),
    }
}

fn pop3(kind: Echo, said: &str) -> String {
    let command = said.split(' ').next().unwrap_or("").to_ascii_uppercase();
    match command.as_str() {
        "CAPA" if kind == Echo::Pop3Plain => "+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n".into(),
        "CAPA" => "+OK\r\nUSER\r\n.\r\n".into(),
        "USER" => "+OK\r\n".into(),
        "PASS" | "AUTH" => format!("-ERR [AUTH] refused: {said}\r\n"),
        "QUIT" => "+OK bye\r\n".into(),
        _ => "-ERR unknown\r\n".into(),
    }
}
