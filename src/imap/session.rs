//! Connecting and logging in: implicit TLS, STARTTLS or clear text, the
//! greeting, CAPABILITY and LOGIN — everything up to an authenticated
//! [`Session`], with every server round-trip under the read timeout.
//!
//! The pre-login STARTTLS dialogue is done by hand on the raw stream, with
//! our own tags, because async-imap's `Client` offers no typed CAPABILITY or
//! STARTTLS before login. After STARTTLS the plain-text `Client` (and with it
//! any bytes the server sent after its tagged OK) is thrown away, and the
//! capabilities are asked for afresh over TLS (RFC 3501 §6.2.1: the client
//! MUST discard cached capability information after STARTTLS) — so nothing a
//! man in the middle injected before the handshake survives it.

use std::collections::HashSet;
use std::fmt::Debug;

use async_imap::imap_proto::{Capability as ProtoCap, Response, Status};
use async_imap::types::Capability;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::wire::{self, imap_error, server_text, timed, End};
pub use super::wire::{Client, Session};
use crate::account::{Account, Encryption};
use crate::error::{Error, Result};
use crate::net::{self, Stream, Timeouts, TlsContext};

/// How long a LOGOUT waits for its answer. The work of the connection is
/// done by then (a reply went out, or the fetch is stored), and RFC 3501
/// §6.1.3's BYE and tagged OK are a courtesy: a server that swallows LOGOUT
/// must not hold a connection, a task or a caller for a full read timeout.
pub const LOGOUT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Capability names, upper-cased (RFC 3501 §7.2.1: capability names are
/// case-insensitive; async-imap compares them case-sensitively).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps(HashSet<String>);

impl Caps {
    /// Whether the server announced `name` (any case).
    pub fn has(&self, name: &str) -> bool {
        self.0.contains(&name.to_ascii_uppercase())
    }

    fn from_proto<'a>(caps: impl IntoIterator<Item = &'a ProtoCap<'a>>) -> Caps {
        Caps(
            caps.into_iter()
                .map(|c| match c {
                    ProtoCap::Imap4rev1 => "IMAP4REV1".to_string(),
                    ProtoCap::Auth(m) => format!("AUTH={}", m.to_ascii_uppercase()),
                    ProtoCap::Atom(a) => a.to_ascii_uppercase(),
                })
                .collect(),
        )
    }

    /// The capabilities of a logged-in session (they may differ from the
    /// pre-login ones, RFC 3501 §6.2.3).
    pub async fn of_session(session: &mut Session, t: &Timeouts, host: &str) -> Result<Caps> {
        let caps = timed(t, host, "asking for CAPABILITY", async {
            session
                .capabilities()
                .await
                .map_err(|e| imap_error(host, "CAPABILITY", e))
        })
        .await?;
        Ok(Caps(
            caps.iter()
                .map(|c| match c {
                    Capability::Imap4rev1 => "IMAP4REV1".to_string(),
                    Capability::Auth(m) => format!("AUTH={}", m.to_ascii_uppercase()),
                    Capability::Atom(a) => a.to_ascii_uppercase(),
                })
                .collect(),
        ))
    }
}

/// Connects per the account's `encryption` and reads the greeting.
///
/// STARTTLS (RFC 3501 §6.2.1, RFC 2595 §3.1): a PREAUTH greeting on a
/// connection that is to be upgraded is refused — the session would already
/// be authenticated in clear text, which is the STARTTLS-stripping attack
/// (RFC 2595 §3.1, CVE-2020-12398); no STARTTLS capability is an error, never
/// a silent fall-back to clear text.
///
/// A server that refuses a resumed TLS session gets one more attempt
/// without it (net::resume).
pub async fn connect(account: &Account, tls: &TlsContext, t: &Timeouts) -> Result<Client> {
    tls.retry_unresumed(&account.host, account.port, || {
        connect_once(account, tls, t)
    })
    .await
}

async fn connect_once(account: &Account, tls: &TlsContext, t: &Timeouts) -> Result<Client> {
    let host = account.host.as_str();
    let pin = Some(account.tls_pin.as_str()).filter(|p| !p.is_empty());
    let tcp = net::connect_tcp(host, account.port, t).await?;
    match account.encryption {
        Encryption::None => {
            net::expect_greeting(&tcp, host, account.port, tls, t).await?;
            let mut client = Client::new(guarded(Stream::plain(tcp), t));
            greeting(&mut client, t, host).await?;
            Ok(client)
        }
        Encryption::Tls => {
            let stream = net::start_tls(tcp, host, tls, pin, t).await?;
            let mut client = Client::new(guarded(stream, t));
            greeting(&mut client, t, host).await?;
            Ok(client)
        }
        Encryption::Starttls => {
            net::expect_greeting(&tcp, host, account.port, tls, t).await?;
            let tcp = starttls_dialogue(tcp, t, host).await?;
            let stream = net::start_tls(tcp, host, tls, pin, t).await?;
            // No greeting after the handshake (RFC 3501 §6.2.1).
            Ok(Client::new(guarded(stream, t)))
        }
    }
}

/// Greeting, CAPABILITY, STARTTLS in clear text; returns the bare TCP stream
/// ready for the TLS handshake, dropping anything buffered after the OK.
async fn starttls_dialogue(tcp: TcpStream, t: &Timeouts, host: &str) -> Result<TcpStream> {
    let mut client = async_imap::Client::new(guarded(Stream::plain(tcp), t));
    if greeting(&mut client, t, host).await? {
        return Err(Error::Tls(format!(
            "{host}: server sent PREAUTH before STARTTLS; refusing the connection, \
             because a PREAUTH session can no longer be upgraded to TLS \
             (RFC 2595 §3.1, a STARTTLS-stripping attack)"
        )));
    }
    let caps = pre_auth(&mut client, t, host, "pfcap", "CAPABILITY").await?;
    if !caps.has("STARTTLS") {
        return Err(Error::Tls(format!(
            "{host}: server does not offer STARTTLS; refusing to continue without TLS \
             (choose encryption tls, or none if the server really has no TLS)"
        )));
    }
    pre_auth(&mut client, t, host, "pftls", "STARTTLS").await?;
    client
        .into_inner()
        .into_plain()
        .ok_or_else(|| Error::Tls(format!("{host}: STARTTLS on a connection that is TLS")))
}

/// Every IMAP stream refuses literals above the largest mail before
/// async-imap's reader buffers them (crate::net::literal).
fn guarded(stream: Stream, t: &Timeouts) -> Stream {
    stream.guard_imap_literals(t.max_message_size)
}

/// Reads the server greeting (RFC 3501 §7.1): OK or PREAUTH (returns true);
/// BYE is a refusal.
async fn greeting<T>(client: &mut async_imap::Client<T>, t: &Timeouts, host: &str) -> Result<bool>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let what = "waiting for the greeting";
    timed(t, host, what, async {
        wire::read(client, host, what, |resp| match resp {
            Response::Data {
                status: Status::Ok, ..
            } => Ok(false),
            Response::Data {
                status: Status::PreAuth,
                ..
            } => Ok(true),
            Response::Data {
                status: Status::Bye,
                outcome,
            } => Err(Error::connection(format!(
                "{host}: the server refused the connection: {}",
                outcome.information.as_deref().unwrap_or("BYE")
            ))),
            _ => Err(Error::connection(format!(
                "{host}: the server did not greet like an IMAP server"
            ))),
        })
        .await?
    })
    .await
}

/// Sends one command before login with our own tag and reads up to its
/// tagged reply (imap::wire's tag loop); returns the capabilities seen in
/// untagged CAPABILITY data.
async fn pre_auth<T>(
    client: &mut async_imap::Client<T>,
    t: &Timeouts,
    host: &str,
    tag: &str,
    command: &str,
) -> Result<Caps>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    wire::send(client, t, host, &format!("{tag} {command}\r\n")).await?;
    let mut caps = Caps::default();
    let refused = |text: &str| {
        if command == "STARTTLS" {
            Error::Tls(format!("{host}: server refused STARTTLS: {text}"))
        } else {
            Error::connection(format!("{host}: server refused {command}: {text}"))
        }
    };
    let end = End::Tagged(tag.to_string());
    let what = format!("sending {command}");
    wire::until(client, t, host, &what, &end, refused, |r| {
        if let Response::Capabilities(c) = r {
            caps = Caps::from_proto(c);
        }
        Ok(())
    })
    .await?;
    Ok(caps)
}

/// Logs in with LOGIN (RFC 3501 §6.2.3) after a fresh CAPABILITY.
///
/// Errors never contain the password: async-imap's NO/BAD texts are the
/// server's reply, and we build the rest from the user name and host only.
pub async fn login(
    client: Client,
    user: &str,
    password: &str,
    t: &Timeouts,
    host: &str,
) -> Result<Session> {
    let mut client = client;
    let caps = pre_auth(&mut client, t, host, "pfcap2", "CAPABILITY").await?;
    if caps.has("LOGINDISABLED") {
        return Err(Error::Authentication(format!(
            "{host}: the server forbids LOGIN on this connection (LOGINDISABLED); \
             use encryption tls or starttls"
        )));
    }
    let attempt = tokio::time::timeout(t.read, client.login(user, password)).await;
    match attempt {
        Err(_) => Err(Error::connection(format!(
            "{host}: no answer to LOGIN within {} s",
            t.read.as_secs()
        ))),
        Ok(Ok(session)) => Ok(session),
        Ok(Err((e, _client))) => Err(match e {
            async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => {
                Error::Authentication(format!(
                    "login rejected by server: {} (user {user:?} at {host})",
                    server_text(&text)
                ))
            }
            async_imap::error::Error::Validate(_) => Error::Authentication(
                "the user name or password contains a line break, which IMAP LOGIN cannot carry"
                    .into(),
            ),
            other => imap_error(host, "LOGIN", other),
        }),
    }
}

/// Connects and logs in with the account's settings: refuses a clear-text
/// password to a non-loopback host first (ARCHITECTURE.md "What it does"), then [`connect`],
/// then [`login`] — or, for Office 365 kinds, where `password` is an
/// access token, `AUTHENTICATE XOAUTH2`.
pub async fn open(
    account: &Account,
    password: &str,
    tls: &TlsContext,
    t: &Timeouts,
) -> Result<Session> {
    if account.encryption == Encryption::None {
        net::check_plaintext_auth(account)?;
    }
    let client = connect(account, tls, t).await?;
    if account.kind.is_office365() {
        return login_xoauth2(client, account, password, t).await;
    }
    login(client, &account.username, password, t, &account.host).await
}

/// Office 365: `AUTHENTICATE XOAUTH2` with an access token, the initial
/// response on the command line when the server takes it (RFC 4959).
pub async fn login_xoauth2(
    mut client: Client,
    account: &Account,
    token: &str,
    t: &Timeouts,
) -> Result<Session> {
    let host = &account.host;
    let caps = pre_auth(&mut client, t, host, "pfcap2", "CAPABILITY").await?;
    let sasl_ir = caps.has("SASL-IR");
    super::xoauth2::authenticate(client, &account.username, token, sasl_ir, t, host).await
}

/// Says LOGOUT (RFC 3501 §6.1.3) and waits at most `bound` for the
/// answer, ignoring a failure: the work is done, and a server that hangs up
/// first (or never answers) has not lost anything of ours.
pub async fn logout(mut session: Session, bound: std::time::Duration) {
    match tokio::time::timeout(bound, session.logout()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!("LOGOUT failed: {e}"),
        Err(_) => tracing::debug!("no answer to LOGOUT; the connection is closed anyway"),
    }
}

#[cfg(test)]
mod tests;
