//! A scripted mail server on loopback that refuses every login by
//! repeating the client's login line — password included — in its error:
//! the server that ARCHITECTURE.md "The D-Bus API"'s "scrubbed of the account's secrets"
//! is about (`NO … "user" "secret"`, `-ERR … PASS secret`).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

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
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = serve(kind, conn);
            });
        }
    });
    port
}

fn serve(kind: Echo, conn: TcpStream) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    let mut lines = BufReader::new(conn);
    let greeting: &[u8] = match kind {
        Echo::ImapLogin => b"* OK [CAPABILITY IMAP4rev1] echo ready\r\n",
        _ => b"+OK echo ready\r\n",
    };
    out.write_all(greeting)?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let said = line.trim_end_matches(['\r', '\n']);
        let reply = match kind {
            Echo::ImapLogin => imap(said),
            _ => pop3(kind, said),
        };
        out.write_all(reply.as_bytes())?;
        if reply.contains("BYE") || reply.starts_with("+OK bye") {
            return Ok(());
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
