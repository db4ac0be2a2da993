//! IMAP command plumbing, written once for everything that talks to a
//! server: a command under the read timeout ([`timed`], [`next`]), the
//! mapping of async-imap's errors to ours, the one hand-written tag loop
//! ([`send`], [`until`]) that the pre-login dialogue (CAPABILITY, STARTTLS)
//! and IDLE share, and `UID STORE \Deleted` + `UID EXPUNGE` ([`expunge`]).
//!
//! Why a hand-written loop at all: async-imap's `Client` offers no typed
//! CAPABILITY or STARTTLS before login, and its IDLE handle cannot pipeline
//! DONE, NOOP and a new IDLE into one write (see imap::idle_wire). Our tags
//! (`pf<n>`, or fixed ones before login) never collide with async-imap's
//! (`A<n>`), and every function here reads up to its last tagged reply, so
//! async-imap's next command reads on from where we stopped.

use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use async_imap::imap_proto::{Response, Status};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::net::{Stream, Timeouts};

/// An IMAP connection before login.
pub type Client = async_imap::Client<Stream>;
/// An authenticated IMAP connection.
pub type Session = async_imap::Session<Stream>;

/// Runs one server round-trip under the read timeout, so that a server that
/// accepts the connection and then says nothing cannot hang a fetch.
pub async fn timed<T>(
    t: &Timeouts,
    host: &str,
    what: &str,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(t.read, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::connection(format!(
            "{host}: no answer within {} s while {what}",
            t.read.as_secs()
        ))),
    }
}

/// One stream item under the read timeout: a slow but steady server (a
/// 25 MB mail) is fine, a silent one is not.
pub async fn next<S, T>(stream: &mut S, t: &Timeouts, host: &str, what: &str) -> Result<Option<T>>
where
    S: futures::Stream<Item = async_imap::error::Result<T>> + Unpin,
{
    match next_raw(stream, t, host, what).await? {
        None => Ok(None),
        Some(Ok(item)) => Ok(Some(item)),
        Some(Err(e)) => Err(imap_error(host, what, e)),
    }
}

/// [`next`] with async-imap's own error left for the caller to tell apart
/// (`super::unreadable`); only the read timeout is decided here.
pub(super) async fn next_raw<S, T>(
    stream: &mut S,
    t: &Timeouts,
    host: &str,
    what: &str,
) -> Result<Option<async_imap::error::Result<T>>>
where
    S: futures::Stream<Item = async_imap::error::Result<T>> + Unpin,
{
    tokio::time::timeout(t.read, stream.next())
        .await
        .map_err(|_| {
            Error::connection(format!(
                "{host}: no answer within {} s while {what}",
                t.read.as_secs()
            ))
        })
}

/// Maps an async-imap error to one of ours. The texts of NO/BAD come from
/// the server; async-imap never puts command arguments (the password) in
/// them. A reply that cannot be parsed shows its first line only.
pub fn imap_error(host: &str, what: &str, e: async_imap::error::Error) -> Error {
    use async_imap::error::Error as E;
    // Its text would carry the reader's whole buffer, mail included.
    if let Some(line) = bad_reply(&e) {
        return describe_unreadable(host, what, &line);
    }
    match e {
        E::No(text) | E::Bad(text) => Error::connection(format!(
            "{host}: server refused {what}: {}",
            server_text(&text)
        )),
        E::ConnectionLost => Error::connection(format!(
            "{host}: the server closed the connection during {what}"
        )),
        E::Io(io) => {
            Error::connection_by(format!("{host}: connection failed during {what}: {io}"), io)
        }
        other => Error::connection(format!("{host}: protocol error during {what}: {other}")),
    }
}

/// Characters of an unreadable reply's first line that an error shows.
const SHOWN: usize = 80;

/// What async-imap's reader says before the buffer it could not parse.
const MARK: &str = "during parsing of ";

/// The first line of the reply async-imap could not parse, if `e` is that.
pub fn bad_reply(e: &async_imap::error::Error) -> Option<String> {
    let text = match e {
        async_imap::error::Error::Io(io) => io.to_string(),
        async_imap::error::Error::Parse(p) => return Some(p.to_string()),
        _ => return None,
    };
    let (_, buffer) = text.split_once(MARK)?;
    // The buffer is rendered with {:?}: quoted, CRLF escaped.
    let buffer = buffer.strip_prefix('"').unwrap_or(buffer);
    let line = buffer.split("\\r\\n").next().unwrap_or(buffer);
    Some(line.to_string())
}

/// The error shown for an unreadable reply: its first line, capped.
pub fn describe_unreadable(host: &str, what: &str, line: &str) -> Error {
    let shown: String = line.chars().take(SHOWN).collect();
    let more = if line.chars().count() > SHOWN {
        "…"
    } else {
        ""
    };
    Error::connection(format!(
        "{host}: the server's reply could not be read (not IMAP as RFC 3501 defines it) \
         while {what}: {shown}{more}"
    ))
}

/// Pulls the human text out of async-imap's `code: …, info: Some("…")`
/// rendering of a NO/BAD reply; falls back to the whole rendering.
pub fn server_text(rendered: &str) -> String {
    const INFO: &str = "info: Some(\"";
    let code = rendered
        .strip_prefix("code: Some(")
        .and_then(|r| r.split_once("), info:"))
        .map(|(c, _)| c.to_string());
    let info = rendered
        .find(INFO)
        .map(|i| &rendered[i + INFO.len()..])
        .and_then(|r| r.strip_suffix("\")"))
        .map(|s| s.replace("\\\"", "\""));
    match (info, code) {
        (Some(i), Some(c)) => format!("{i} [{c}]"),
        (Some(i), None) => i,
        _ => rendered.to_string(),
    }
}

static TAGS: AtomicU64 = AtomicU64::new(1);

/// A fresh tag of ours for a command after login.
pub(super) fn tag() -> String {
    format!("pf{}", TAGS.fetch_add(1, Ordering::Relaxed))
}

/// The reply that ends a wait in [`until`].
pub(super) enum End {
    /// `+ ...`, a continuation request (RFC 3501 §7.5).
    Continue,
    /// The tagged reply of this command; OK ends the wait, NO/BAD fail it.
    Tagged(String),
}

/// Writes `wire` (one or more command lines) with one flush: `net::Stream`
/// buffers until the flush, so pipelined commands leave in one write.
pub(super) async fn send<T>(
    conn: &mut async_imap::Connection<T>,
    t: &Timeouts,
    host: &str,
    wire: &str,
) -> Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let io = conn.get_mut();
    let write = async {
        io.write_all(wire.as_bytes()).await?;
        io.flush().await
    };
    timed(t, host, "sending to the server", async {
        write.await.map_err(|e| {
            Error::connection_by(format!("{host}: connection failed while writing: {e}"), e)
        })
    })
    .await
}

/// Reads responses under the read timeout until `end`. Every other
/// response goes to `other`, which may fail the wait (BYE during IDLE, a
/// tagged reply nobody expected); a tagged NO/BAD of `end` becomes
/// `refused(server text)`.
pub(super) async fn until<T>(
    conn: &mut async_imap::Connection<T>,
    t: &Timeouts,
    host: &str,
    what: &str,
    end: &End,
    refused: impl Fn(&str) -> Error,
    mut other: impl FnMut(&Response<'_>) -> Result<()>,
) -> Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    timed(t, host, what, async {
        loop {
            let done = read(conn, host, what, |r| match (r, end) {
                (Response::Continue(_), End::Continue) => Ok(true),
                (
                    Response::Done {
                        tag,
                        status,
                        outcome,
                    },
                    End::Tagged(want),
                ) if tag.0 == *want => match status {
                    Status::Ok => Ok(true),
                    _ => Err(refused(outcome.information.as_deref().unwrap_or(""))),
                },
                (r, _) => other(r).map(|()| false),
            })
            .await??;
            if done {
                return Ok(());
            }
        }
    })
    .await
}

/// Reads one response and hands it, parsed, to `f` (async-imap does not
/// export the owning response type, so it cannot be returned). No timeout:
/// callers wait with their own.
pub(super) async fn read<T, R>(
    conn: &mut async_imap::Connection<T>,
    host: &str,
    what: &str,
    f: impl FnOnce(&Response<'_>) -> R,
) -> Result<R>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    match conn.read_response().await {
        Ok(Some(r)) => Ok(f(r.parsed())),
        Ok(None) => Err(Error::connection(format!(
            "{host}: the server closed the connection during {what}"
        ))),
        Err(e) => Err(Error::connection_by(
            format!("{host}: connection failed during {what}: {e}"),
            e,
        )),
    }
}

/// `UID STORE <set> +FLAGS.SILENT (\Deleted)`, then `UID EXPUNGE <set>`
/// (RFC 4315 §2.1) of the selected mailbox; returns how many the server
/// reported expunged. A bare `EXPUNGE` is never sent: it would also remove
/// every mail that other clients flagged `\Deleted`. Callers check UIDPLUS.
pub(super) async fn expunge(
    session: &mut Session,
    t: &Timeouts,
    host: &str,
    set: &str,
) -> Result<u32> {
    let what = "flagging mail \\Deleted (UID STORE)";
    {
        let stream = timed(t, host, what, async {
            session
                .uid_store(set, "+FLAGS.SILENT (\\Deleted)")
                .await
                .map_err(|e| imap_error(host, what, e))
        })
        .await?;
        let mut stream = std::pin::pin!(stream);
        while next(&mut stream, t, host, what).await?.is_some() {}
    }
    let what = "removing mail (UID EXPUNGE)";
    let stream = timed(t, host, what, async {
        session
            .uid_expunge(set)
            .await
            .map_err(|e| imap_error(host, what, e))
    })
    .await?;
    let mut stream = std::pin::pin!(stream);
    let mut gone = 0u32;
    while next(&mut stream, t, host, what).await?.is_some() {
        gone = gone.saturating_add(1);
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_extracts_info_and_code() {
        assert_eq!(
            server_text(
                r#"code: Some(AuthenticationFailed), info: Some("Authentication failed.")"#
            ),
            "Authentication failed. [AuthenticationFailed]"
        );
        assert_eq!(
            server_text(r#"code: None, info: Some("say \"hi\"")"#),
            r#"say "hi""#
        );
        assert_eq!(server_text("odd"), "odd");
    }
}
