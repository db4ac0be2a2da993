//! A POP3 client session (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595),
//! SASL PLAIN (RFC 4616 over RFC 5034), XOAUTH2 and pipelining.
//!
//! Generic over the stream so the tests can script a server over
//! `tokio::io::duplex`. After STLS the session is over: [`Client::stls`]
//! hands back the raw stream for `net::start_tls`, and the caller builds a
//! new client on the TLS stream (RFC 2595 §4: all state is discarded).
//!
//! Every read and write runs under the session's [`Wait`]: the read
//! timeout for each, and one deadline for the whole session
//! (crate::fetch::deadline), which goes on across STLS.

use base64::Engine;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::wire::{
    parse_listing, read_line, read_multiline, read_multiline_to, server_text, status, Body, Cap,
    Wait,
};
use crate::error::{Error, Result};
use crate::fetch::DEFAULT_MAX_MESSAGE_SIZE;
/// Cap for UIDL and LIST listings (100 000 mails × ~80 bytes fit easily).
const MAX_LISTING: usize = 64 * 1024 * 1024;
/// RFC 2449 §4: commands are at most 255 octets including CRLF.
const MAX_COMMAND: usize = 255;
/// Most RETR commands in flight at once when the server pipelines.
pub const PIPELINE_WINDOW: usize = 32;

/// What the server announced in its CAPA reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub stls: bool,
    pub pipelining: bool,
    pub uidl: bool,
    /// SASL mechanisms, upper case.
    pub sasl: Vec<String>,
}

impl Capabilities {
    pub fn has_sasl(&self, mech: &str) -> bool {
        self.sasl.iter().any(|m| m.eq_ignore_ascii_case(mech))
    }
}

/// The reply to one RETR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retr {
    /// The mail went to its sink: its length.
    Mail(u64),
    /// The mail was longer than the limit ([`Client::set_max_mail`]):
    /// read to its end and dropped after the first pieces; its length.
    TooLarge(u64),
    /// The server refused this message (e.g. deleted by another
    /// session); the session goes on.
    Refused(String),
}

/// Where the mails of [`Client::retr_each`] go, and whether it may send
/// more RETRs.
pub trait Mails {
    /// Whether to send RETRs beyond those in flight; false lets those in
    /// flight finish and ends the call.
    fn more(&self) -> bool;
    /// The next piece of the mail at `i` (in the order asked).
    fn piece(&mut self, i: usize, bytes: &[u8]) -> Result<()>;
    /// The mail at `i` is over.
    fn done(&mut self, i: usize, reply: Retr) -> Result<()>;
}

/// One POP3 session over `S`.
#[derive(Debug)]
pub struct Client<S> {
    io: BufReader<S>,
    wait: Wait,
    max_mail: usize,
    pipelining: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Client<S> {
    /// Wrap a connected stream and read the greeting (RFC 1939 §4), within
    /// the limits of `wait`, which hold for the whole session.
    pub async fn connect(stream: S, wait: Wait) -> Result<(Client<S>, String)> {
        let mut c = Client::resume(stream, wait);
        let line = read_line(&mut c.io, &c.wait).await?;
        match status(&line)? {
            Ok(greeting) => Ok((c, greeting)),
            Err(text) => Err(Error::connection(format!(
                "POP3 server refused the connection: {text}"
            ))),
        }
    }

    /// Continue on a stream that carries no greeting: the TLS stream after
    /// STLS (RFC 2595 §4). Call [`Client::capa`] again before anything else.
    pub fn resume(stream: S, wait: Wait) -> Client<S> {
        Client {
            io: BufReader::new(stream),
            wait,
            max_mail: usize::try_from(DEFAULT_MAX_MESSAGE_SIZE).unwrap_or(usize::MAX),
            pipelining: false,
        }
    }

    /// The session's limits (its deadline goes on after STLS).
    pub fn wait(&self) -> &Wait {
        &self.wait
    }

    /// Refuse mails larger than `bytes`.
    pub fn set_max_mail(&mut self, bytes: usize) {
        self.max_mail = bytes;
    }

    /// Whether RETRs are pipelined (set from CAPA by [`Client::capa`]).
    pub fn pipelining(&self) -> bool {
        self.pipelining
    }

    /// Send command lines (one write); each counts as a round trip of
    /// the deadline's work.
    async fn send(&mut self, lines: &[u8]) -> Result<()> {
        for _ in lines.iter().filter(|&&b| b == b'\n') {
            self.wait.deadline.command();
        }
        let io = self.io.get_mut();
        let write = async {
            io.write_all(lines).await?;
            io.flush().await
        };
        self.wait.run("sending", write).await
    }

    /// Send a command built from `parts`; arguments must not smuggle a line
    /// break (a second command) or exceed the RFC 2449 length.
    async fn command(&mut self, parts: &[&str]) -> Result<()> {
        let mut line = parts.join(" ");
        if line.contains(['\r', '\n', '\0']) {
            return Err(Error::invalid(
                "username",
                "contains a line break or NUL, which POP3 cannot carry",
            ));
        }
        line.push_str("\r\n");
        if line.len() > MAX_COMMAND {
            return Err(Error::invalid(
                "username",
                "too long for a POP3 command (255 octets)",
            ));
        }
        self.send(line.as_bytes()).await
    }

    async fn status(&mut self) -> Result<std::result::Result<String, String>> {
        let line = read_line(&mut self.io, &self.wait).await?;
        status(&line)
    }

    /// A command that must succeed; -ERR becomes a Connection error naming it.
    async fn simple(&mut self, parts: &[&str], what: &str) -> Result<String> {
        self.command(parts).await?;
        self.status()
            .await?
            .map_err(|text| Error::connection(format!("POP3 server refused {what}: {text}")))
    }

    /// CAPA (RFC 2449 §5). A server without CAPA answers -ERR: no extensions.
    pub async fn capa(&mut self) -> Result<Capabilities> {
        self.command(&["CAPA"]).await?;
        let mut caps = Capabilities::default();
        if self.status().await?.is_err() {
            return Ok(caps);
        }
        let body = read_multiline(&mut self.io, &self.wait, MAX_LISTING, "the CAPA list").await?;
        for line in body.split(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(line);
            let mut words = line.split_ascii_whitespace();
            match words.next().map(str::to_ascii_uppercase).as_deref() {
                Some("STLS") => caps.stls = true,
                Some("PIPELINING") => caps.pipelining = true,
                Some("UIDL") => caps.uidl = true,
                Some("SASL") => caps.sasl = words.map(str::to_ascii_uppercase).collect(),
                _ => {}
            }
        }
        self.pipelining = caps.pipelining;
        Ok(caps)
    }

    /// STLS (RFC 2595 §4): on +OK, return the raw stream for the TLS
    /// handshake. Bytes the server sent after its +OK would be read as if
    /// they came over TLS; that is the STARTTLS injection attack
    /// (CVE-2011-0411 family), so it is an error.
    pub async fn stls(mut self) -> Result<S> {
        self.command(&["STLS"]).await?;
        if let Err(text) = self.status().await? {
            return Err(Error::Tls(format!("POP3 server refused STLS: {text}")));
        }
        if !self.io.buffer().is_empty() {
            return Err(Error::connection(
                "POP3 server sent data after its +OK to STLS; refusing the TLS upgrade".into(),
            ));
        }
        Ok(self.io.into_inner())
    }

    /// USER/PASS (RFC 1939 §7).
    pub async fn login_user_pass(&mut self, user: &str, password: &str) -> Result<()> {
        self.command(&["USER", user]).await?;
        if let Err(text) = self.status().await? {
            return Err(rejected(&text));
        }
        if password.contains(['\r', '\n', '\0']) {
            return Err(Error::invalid(
                "password",
                "contains a line break or NUL, which POP3 cannot carry",
            ));
        }
        self.send(format!("PASS {password}\r\n").as_bytes()).await?;
        self.status().await?.map(drop).map_err(|t| rejected(&t))
    }

    /// AUTH PLAIN (RFC 4616 message, RFC 5034 exchange), with the initial
    /// response when the command fits in 255 octets, else after "+ ".
    pub async fn login_plain(&mut self, user: &str, password: &str) -> Result<()> {
        let blob = b64(format!("\0{user}\0{password}").as_bytes());
        if "AUTH PLAIN ".len() + blob.len() + 2 <= MAX_COMMAND {
            self.send(format!("AUTH PLAIN {blob}\r\n").as_bytes())
                .await?;
        } else {
            self.command(&["AUTH", "PLAIN"]).await?;
            self.expect_continuation().await?;
            self.send(format!("{blob}\r\n").as_bytes()).await?;
        }
        self.auth_result().await
    }

    /// AUTH XOAUTH2 in the two-step form Office 365 requires: the command,
    /// then the blob after "+ ". A rejected token gets a "+ <json>" error
    /// challenge, which the client answers with an empty line before the
    /// final -ERR (Microsoft's and Dovecot's documented behaviour).
    pub async fn login_xoauth2(&mut self, user: &str, token: &str) -> Result<()> {
        self.command(&["AUTH", "XOAUTH2"]).await?;
        self.expect_continuation().await?;
        let blob = b64(format!("user={user}\x01auth=Bearer {token}\x01\x01").as_bytes());
        self.send(format!("{blob}\r\n").as_bytes()).await?;
        let line = read_line(&mut self.io, &self.wait).await?;
        // A challenge is "+ <base64>" (RFC 5034 §4); "+OK" is the success.
        if let Some(challenge) = line
            .strip_prefix(b"+ ")
            .or((line == b"+").then_some(&b""[..]))
        {
            let detail = base64::engine::general_purpose::STANDARD
                .decode(challenge.trim_ascii())
                .map(|json| server_text(&json))
                .unwrap_or_default();
            self.send(b"\r\n").await?;
            let text = match self.status().await? {
                Ok(_) => return Ok(()),
                Err(text) => text,
            };
            return Err(rejected(&format!("{text} {detail}")));
        }
        status(&line)?.map(drop).map_err(|t| rejected(&t))
    }

    async fn expect_continuation(&mut self) -> Result<()> {
        let line = read_line(&mut self.io, &self.wait).await?;
        if line.starts_with(b"+ ") || line == b"+" {
            return Ok(());
        }
        match status(&line)? {
            Err(text) => Err(rejected(&text)),
            Ok(text) => Err(Error::connection(format!(
                "POP3 server sent +OK {text:?} where a SASL challenge belongs"
            ))),
        }
    }

    async fn auth_result(&mut self) -> Result<()> {
        let line = read_line(&mut self.io, &self.wait).await?;
        if line.starts_with(b"+ ") || line == b"+" {
            // An unexpected challenge: cancel the exchange (RFC 5034 §4).
            self.send(b"*\r\n").await?;
            let text = self.status().await?.err().unwrap_or_default();
            return Err(rejected(&text));
        }
        status(&line)?.map(drop).map_err(|t| rejected(&t))
    }

    /// UIDL (RFC 1939 §7): (message number, unique id). None when the
    /// server does not support UIDL.
    pub async fn uidl(&mut self) -> Result<Option<Vec<(u32, String)>>> {
        self.command(&["UIDL"]).await?;
        if self.status().await?.is_err() {
            return Ok(None);
        }
        let body = read_multiline(&mut self.io, &self.wait, MAX_LISTING, "the UIDL list").await?;
        parse_listing(&body, "UIDL", |s| {
            // RFC 1939: 1 to 70 characters in 0x21..=0x7E.
            (!s.is_empty() && s.len() <= 70 && s.bytes().all(|b| (0x21..=0x7e).contains(&b)))
                .then(|| s.to_string())
        })
        .map(Some)
    }

    /// LIST (RFC 1939 §5): (message number, size in octets).
    pub async fn list(&mut self) -> Result<Vec<(u32, u64)>> {
        self.simple(&["LIST"], "LIST").await?;
        let body = read_multiline(&mut self.io, &self.wait, MAX_LISTING, "the LIST list").await?;
        parse_listing(&body, "LIST", |s| s.parse::<u64>().ok())
    }

    /// RETR the given messages in order, pipelined in a window of
    /// [`PIPELINE_WINDOW`] when CAPA offered PIPELINING (RFC 2449 §6.6):
    /// each mail's pieces and end go to `mails`, which also says when to
    /// stop sending (then those in flight finish). Returns how many of
    /// `msgs` were answered; a per-message -ERR does not end the session.
    pub async fn retr_each(
        &mut self,
        msgs: &[u32],
        mails: &mut (impl Mails + Send),
    ) -> Result<usize> {
        let window = if self.pipelining { PIPELINE_WINDOW } else { 1 };
        let cap = Cap::mail(self.max_mail);
        let (mut sent, mut done) = (0, 0);
        loop {
            if sent < msgs.len() && sent - done < window && (sent == 0 || mails.more()) {
                let end = msgs.len().min(done + window);
                let cmds: String = msgs[sent..end]
                    .iter()
                    .map(|n| format!("RETR {n}\r\n"))
                    .collect();
                self.send(cmds.as_bytes()).await?;
                sent = end;
            }
            let Some(&n) = msgs.get(done).filter(|_| done < sent) else {
                return Ok(done);
            };
            let reply = match self.status().await? {
                Err(text) => Retr::Refused(text),
                Ok(_) => {
                    let what = format!("message {n}");
                    let mut sink = |piece: &[u8]| mails.piece(done, piece);
                    match read_multiline_to(&mut self.io, &self.wait, cap, &what, &mut sink).await?
                    {
                        Body::Whole(len) => Retr::Mail(len),
                        Body::TooLarge(len) => Retr::TooLarge(len),
                    }
                }
            };
            mails.done(done, reply)?;
            done += 1;
        }
    }

    /// RETR one message into memory; a mail above the limit is an error.
    pub async fn retr(&mut self, n: u32) -> Result<Vec<u8>> {
        self.simple(&["RETR", &n.to_string()], &format!("RETR {n}"))
            .await?;
        let what = format!("message {n}");
        read_multiline(&mut self.io, &self.wait, self.max_mail, &what).await
    }

    /// DELE (RFC 1939 §5): marks only; QUIT commits.
    pub async fn dele(&mut self, n: u32) -> Result<()> {
        self.simple(&["DELE", &n.to_string()], &format!("DELE {n}"))
            .await
            .map(drop)
    }

    /// QUIT (RFC 1939 §6): the UPDATE state, where marked deletes happen.
    /// An -ERR here means the server could not remove them.
    pub async fn quit(mut self) -> Result<()> {
        self.simple(&["QUIT"], "QUIT (deleting marked messages)")
            .await?;
        let _ = tokio::time::timeout(self.wait.read, self.io.get_mut().shutdown()).await;
        Ok(())
    }
}

fn rejected(text: &str) -> Error {
    Error::Authentication(format!("login rejected by server: {}", text.trim()))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
