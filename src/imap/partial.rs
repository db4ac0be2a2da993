//! Big mails in pieces: RFC 3501 §6.4.5 partial fetches into a blob file.
//!
//! A `BODY.PEEK[]` of a 10 MB mail arrives as one 10 MB literal, which
//! async-imap's read buffer holds whole (and, grown by doubling, keeps at
//! that size); the fetcher would copy it again into the batch. A mail whose
//! listed RFC822.SIZE is above [`crate::store::BLOB_MIN`] is therefore fetched alone with
//! `UID FETCH <uid> (BODY.PEEK[]<offset.PIECE>)`, each piece appended to a
//! [`crate::store::BlobWriter`] (see `crate::store::blobs`) on the blocking
//! pool, so that memory holds one piece, never the mail.
//!
//! The end is a piece shorter than asked: RFC 3501 §6.4.5 returns "as many
//! octets as are available" and an empty string for an origin beyond the
//! end, so a mail whose length is an exact multiple of [`PIECE`] ends with
//! an empty piece. The listed size only chooses this path, never where to
//! stop: servers compute it differently (Dovecot's is the size with CRLF
//! line ends, which is also what it sends, but others need not agree).
//!
//! Bad cases: a piece without data (the UID was expunged meanwhile, or a
//! broken reply) skips the mail for this fetch — not stored, so never
//! deleted on the server, and the next fetch lists it again — and the
//! staged file is removed. A piece longer than asked means the server
//! ignored the origin; appending it would corrupt the mail, so the fetch
//! fails instead.

use futures::Stream;

use super::uidset::server_id;
use super::wire::{imap_error, next, timed, Session};
use crate::error::{Error, Result};
use crate::fetch::blocking;
use crate::net::Timeouts;
use crate::store::{NewMail, Raw, Store};

/// Which mails come here, and what they cost the fetcher's memory budget.
pub use crate::store::blobs::{held, is_big};

/// Bytes per partial fetch. 1 MiB: the read buffer (grown by doubling to
/// hold one piece) and the TLS buffers stay a few MB, and a 10 MB mail
/// costs ten round trips, which against the transfer time of the piece
/// itself is small even on a distant server. Measured with
/// `scripts/bench --only big-imap-tls` (100 mails of 10 MB): 2 and 4 MiB
/// pieces were no faster and Dovecot's CPU stayed the same, while the peak
/// RSS grew from 14.5 to 15.7 and 17.7 MB.
pub const PIECE: u32 = 1024 * 1024;

/// Downloads mail `uid` in pieces into a staged blob. None: the server
/// sent no data for a piece (see the module docs); the mail is skipped.
/// `now` is the received time when the server sends no INTERNALDATE.
pub async fn fetch(
    session: &mut Session,
    store: &Store,
    t: &Timeouts,
    host: &str,
    uidvalidity: u32,
    uid: u32,
    now: i64,
) -> Result<Option<NewMail>> {
    let mut writer = blocking(|| store.blob_writer())?;
    let mut received = None;
    loop {
        let offset = u32::try_from(writer.len()).map_err(|_| {
            Error::connection(format!(
                "{host}: mail UID {uid} is larger than an IMAP partial fetch can address"
            ))
        })?;
        // INTERNALDATE (RFC 3501 §2.3.3) once, with the first piece.
        let date = if offset == 0 { " INTERNALDATE" } else { "" };
        let query = format!("(UID{date} BODY.PEEK[]<{offset}.{PIECE}>)");
        let what = "downloading a big mail in pieces (UID FETCH BODY.PEEK[]<offset.length>)";
        let stream = timed(t, host, what, async {
            session
                .uid_fetch(uid.to_string(), &query)
                .await
                .map_err(|e| imap_error(host, what, e))
        })
        .await?;
        let mut stream = std::pin::pin!(stream);
        let got = append_piece(&mut stream, &mut writer, &mut received, uid, t, host, what).await?;
        match got {
            None => {
                tracing::warn!(
                    host,
                    uid,
                    offset,
                    "no data for a piece of a big mail; skipped this fetch"
                );
                return Ok(None);
            }
            Some(n) if n > PIECE as usize => {
                return Err(Error::connection(format!(
                    "{host}: asked for {PIECE} bytes of mail UID {uid}, got {n}: the server \
                     ignores partial fetches"
                )))
            }
            Some(n) if n < PIECE as usize => break,
            // Listed below the limit, it goes on past it: skipped like a
            // mail without data, so that no server fills the disk.
            Some(_) if writer.len() > t.max_message_size => {
                tracing::warn!(
                    host,
                    uid,
                    bytes = writer.len(),
                    "a big mail passed [fetch] max_message_size; skipped"
                );
                return Ok(None);
            }
            Some(_) => {}
        }
    }
    let staged = blocking(|| writer.finish())?;
    Ok(Some(NewMail {
        server_id: server_id(uidvalidity, uid),
        raw: Raw::Blob(staged),
        received: received.unwrap_or(now),
    }))
}

/// Reads one partial FETCH reply to its end, appends the piece for `uid`
/// (the first, should the server send it twice) and returns its length;
/// None when no piece came. Unsolicited FETCH responses (flag changes of
/// other messages) are ignored.
async fn append_piece<S>(
    stream: &mut S,
    writer: &mut crate::store::BlobWriter,
    received: &mut Option<i64>,
    uid: u32,
    t: &Timeouts,
    host: &str,
    what: &str,
) -> Result<Option<usize>>
where
    S: Stream<Item = async_imap::error::Result<async_imap::types::Fetch>> + Unpin,
{
    let mut got = None;
    while let Some(item) = next(stream, t, host, what).await? {
        if item.uid != Some(uid) {
            continue;
        }
        if let Some(d) = item.internal_date() {
            *received = Some(d.timestamp());
        }
        // body() matches `BODY[]` with or without an origin (imap-proto
        // keeps the origin in `BodySection::index`, which it ignores).
        let Some(body) = item.body() else {
            continue;
        };
        if got.is_none() {
            blocking(|| writer.write(body))?;
            got = Some(body.len());
        }
    }
    Ok(got)
}
