//! The IDLE command on the wire (RFC 2177), written and read by us rather
//! than through async-imap's IDLE handle, for one reason: a FetchNow on an
//! idling session whose INBOX is known (imap::kept) is answered by ONE
//! write, `DONE`, `NOOP`, `IDLE` pipelined (RFC 3501 §5.5 lets a client
//! send commands without waiting; DONE is not a command but the end of
//! IDLE's continuation, after which the connection is in the selected
//! state again). The server reads the three at once and the session is
//! idling again when it has answered them; through the handle, the same
//! check took three round trips, each waking the server's TLS proxy and
//! its imap process (Dovecot's login processes proxy TLS).
//!
//! Tags are our own (`pfi<n>`): async-imap is not involved until the
//! session is handed back, and its next command reads on from where these
//! replies end — every function here reads up to its last tagged reply.

use std::sync::atomic::{AtomicU64, Ordering};

use async_imap::imap_proto::{Response, Status};
use tokio::io::AsyncWriteExt;

use super::session::{timed, Session};
use crate::error::{Error, Result};
use crate::net::Timeouts;

/// An IDLE the server accepted, by its tag.
#[derive(Debug)]
pub(super) struct Idling {
    tag: String,
}

/// What one response during IDLE meant.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Heard {
    /// New mail (EXISTS above the count, RECENT).
    News,
    /// Anything else: keepalives, flag changes, EXPUNGE (counted).
    Nothing,
}

static TAGS: AtomicU64 = AtomicU64::new(1);

fn tag() -> String {
    format!("pfi{}", TAGS.fetch_add(1, Ordering::Relaxed))
}

/// Sends IDLE and waits for its continuation. Untagged responses before
/// it still count (`news`).
pub(super) async fn start(
    session: &mut Session,
    t: &Timeouts,
    host: &str,
    exists: &mut u32,
    news: &mut bool,
) -> Result<Idling> {
    let idle = tag();
    send(session, t, host, &format!("{idle} IDLE\r\n")).await?;
    until(
        session,
        t,
        host,
        "starting IDLE",
        exists,
        news,
        &End::Continue,
    )
    .await?;
    Ok(Idling { tag: idle })
}

/// The next response while idling (no timeout: the caller waits with its
/// own, and with the wake-up). Fails on BYE, on a tagged reply (the server
/// ended the IDLE) and when the connection closes.
pub(super) async fn next(session: &mut Session, host: &str, exists: &mut u32) -> Result<Heard> {
    read(session, host, "IDLE", |r| match r {
        Response::Done { status, .. } => Err(Error::connection(format!(
            "{host}: the server ended IDLE ({status:?})"
        ))),
        r => classify(r, host, exists),
    })
    .await?
}

/// Ends the IDLE with DONE and reads up to its tagged OK; whether news came
/// meanwhile.
pub(super) async fn done(
    session: &mut Session,
    idling: Idling,
    t: &Timeouts,
    host: &str,
    exists: &mut u32,
) -> Result<bool> {
    let mut news = false;
    send(session, t, host, "DONE\r\n").await?;
    let end = End::Tagged(idling.tag);
    until(
        session,
        t,
        host,
        "ending IDLE (DONE)",
        exists,
        &mut news,
        &end,
    )
    .await?;
    Ok(news)
}

/// DONE, NOOP and a new IDLE in one write; reads the IDLE's OK, the NOOP's
/// reply (RFC 3501 §6.1.2: a poll for new messages) and the new IDLE's
/// continuation. Returns the new IDLE and whether news came.
pub(super) async fn recheck(
    session: &mut Session,
    idling: Idling,
    t: &Timeouts,
    host: &str,
    exists: &mut u32,
) -> Result<(Idling, bool)> {
    let (noop, idle) = (tag(), tag());
    let mut news = false;
    let wire = format!("DONE\r\n{noop} NOOP\r\n{idle} IDLE\r\n");
    send(session, t, host, &wire).await?;
    let what = "checking INBOX (DONE, NOOP, IDLE)";
    for end in [End::Tagged(idling.tag), End::Tagged(noop), End::Continue] {
        until(session, t, host, what, exists, &mut news, &end).await?;
    }
    Ok((Idling { tag: idle }, news))
}

/// The reply that ends a wait in [`until`].
enum End {
    /// `+ ...` (the IDLE continuation, RFC 3501 §7.5).
    Continue,
    /// The tagged OK of this command.
    Tagged(String),
}

/// Reads until `end`, counting untagged news; a tagged NO/BAD (or the
/// wrong tag) is an error.
async fn until(
    session: &mut Session,
    t: &Timeouts,
    host: &str,
    what: &str,
    exists: &mut u32,
    news: &mut bool,
    end: &End,
) -> Result<()> {
    timed(t, host, what, async {
        loop {
            let step = read(session, host, what, |r| match (r, end) {
                (Response::Continue(_), End::Continue) => Ok(true),
                (Response::Done { tag, status, .. }, End::Tagged(want)) if tag.0 == *want => {
                    match status {
                        Status::Ok => Ok(true),
                        other => Err(Error::connection(format!(
                            "{host}: server refused {what}: {other:?}"
                        ))),
                    }
                }
                (Response::Done { .. } | Response::Continue(_), _) => Err(Error::connection(
                    format!("{host}: unexpected reply while {what}"),
                )),
                (r, _) => {
                    *news |= classify(r, host, exists)? == Heard::News;
                    Ok(false)
                }
            })
            .await?;
            if step? {
                return Ok(());
            }
        }
    })
    .await
}

/// BYE ends the session; anything else is judged by
/// [`super::kept::is_news_for`], the rule a kept session uses too.
fn classify(r: &Response<'_>, host: &str, exists: &mut u32) -> Result<Heard> {
    if let Response::Data {
        status: Status::Bye,
        outcome,
    } = r
    {
        return Err(Error::connection(format!(
            "{host}: the server ended the IDLE session: {}",
            outcome.information.as_deref().unwrap_or("BYE")
        )));
    }
    Ok(if super::kept::is_news_for(r, exists) {
        Heard::News
    } else {
        Heard::Nothing
    })
}

/// Reads one response and hands it, parsed, to `f` (async-imap does not
/// export the owning response type, so it cannot be returned).
async fn read<T>(
    session: &mut Session,
    host: &str,
    what: &str,
    f: impl FnOnce(&Response<'_>) -> T,
) -> Result<T> {
    match session.read_response().await {
        Ok(Some(r)) => Ok(f(r.parsed())),
        Ok(None) => Err(Error::connection(format!(
            "{host}: the server closed the connection during {what}"
        ))),
        Err(e) => Err(Error::connection(format!(
            "{host}: connection failed during {what}: {e}"
        ))),
    }
}

/// One write and flush (net::Stream buffers until the flush).
async fn send(session: &mut Session, t: &Timeouts, host: &str, wire: &str) -> Result<()> {
    let io = session.get_mut();
    let write = async {
        io.write_all(wire.as_bytes()).await?;
        io.flush().await
    };
    timed(t, host, "sending to the server", async {
        write
            .await
            .map_err(|e| Error::connection(format!("{host}: connection failed while writing: {e}")))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::imap_proto::MailboxDatum;

    #[test]
    fn exists_growth_after_expunge_is_news() {
        let mut exists = 3;
        let heard = |r: Response<'_>, e: &mut u32| classify(&r, "h", e).unwrap();
        assert_eq!(
            heard(Response::MailboxData(MailboxDatum::Exists(3)), &mut exists),
            Heard::Nothing
        );
        assert_eq!(heard(Response::Expunge(1), &mut exists), Heard::Nothing);
        assert_eq!(exists, 2);
        assert_eq!(
            heard(Response::MailboxData(MailboxDatum::Exists(3)), &mut exists),
            Heard::News
        );
        assert_eq!(
            heard(Response::MailboxData(MailboxDatum::Recent(1)), &mut exists),
            Heard::News
        );
        assert_eq!(
            heard(Response::MailboxData(MailboxDatum::Recent(0)), &mut exists),
            Heard::Nothing
        );
    }
}
