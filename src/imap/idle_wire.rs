//! The IDLE command on the wire (RFC 2177), written and read by us (the tag
//! loop of imap::wire) rather than through async-imap's IDLE handle, for
//! one reason: a FetchNow on an idling connection whose INBOX is known
//! (imap::connection) is answered by ONE write, `DONE`, `NOOP`, `IDLE`
//! pipelined (RFC 3501 §5.5 lets a client send commands without waiting;
//! DONE is not a command but the end of IDLE's continuation, after which the
//! connection is in the selected state again). The server reads the three
//! at once and the connection is idling again when it has answered them;
//! through the handle, the same check took three round trips, each waking
//! the server's TLS proxy and its imap process (Dovecot's login processes
//! proxy TLS).

use async_imap::imap_proto::{Response, Status};

use super::news::is_news_for;
use super::wire::{self, tag, End, Session};
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
    /// New mail (EXISTS above the count, RECENT, a new UIDVALIDITY).
    News,
    /// Anything else: keepalives, flag changes, EXPUNGE (counted).
    Nothing,
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
    wire::send(session, t, host, &format!("{idle} IDLE\r\n")).await?;
    read_until(
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
    wire::read(session, host, "IDLE", |r| match r {
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
    wire::send(session, t, host, "DONE\r\n").await?;
    let end = End::Tagged(idling.tag);
    let what = "ending IDLE (DONE)";
    read_until(session, t, host, what, exists, &mut news, &end).await?;
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
    wire::send(session, t, host, &wire).await?;
    let what = "checking INBOX (DONE, NOOP, IDLE)";
    for end in [End::Tagged(idling.tag), End::Tagged(noop), End::Continue] {
        read_until(session, t, host, what, exists, &mut news, &end).await?;
    }
    Ok((Idling { tag: idle }, news))
}

/// imap::wire::until, counting untagged news; any other tagged reply or
/// continuation is an error.
async fn read_until(
    session: &mut Session,
    t: &Timeouts,
    host: &str,
    what: &str,
    exists: &mut u32,
    news: &mut bool,
    end: &End,
) -> Result<()> {
    let refused = |text: &str| Error::connection(format!("{host}: server refused {what}: {text}"));
    wire::until(session, t, host, what, end, refused, |r| match r {
        Response::Done { .. } | Response::Continue(_) => Err(Error::connection(format!(
            "{host}: unexpected reply while {what}"
        ))),
        r => {
            *news |= classify(r, host, exists)? == Heard::News;
            Ok(())
        }
    })
    .await
}

/// BYE ends the session; anything else is judged by imap::news, the rule a
/// kept connection uses between commands too.
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
    Ok(if is_news_for(r, exists) {
        Heard::News
    } else {
        Heard::Nothing
    })
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
