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
//! Where it ends: RFC 3501 §6.4.5 returns "as many octets as are
//! available" and, for an origin beyond the end, an empty string — which
//! GNU imap4d sends as `* 2 FETCH (UID 2 BODY[])`, without the empty string,
//! a reply no IMAP parser reads (async-imap's reader is then lost, see
//! imap::unreadable). So no request ever starts at or past the end: each
//! piece after the first starts one byte early, on the last byte already
//! written, and asks for one byte more (`<len-1.PIECE+1>`). Its first byte
//! must equal that last byte and is dropped; a reply of that one byte alone
//! is the end of a mail whose length is an exact multiple of [`PIECE`], a
//! reply shorter than asked the end of any other. The listed RFC822.SIZE
//! only chooses this path, never where to stop: servers compute it
//! differently (Dovecot's is the size with CRLF line ends, which is also
//! what it sends; Exchange's is an estimate), and a size too small would
//! cut the mail short. The overlap costs one byte per piece and the same
//! requests as before: a mail of exactly two pieces takes three, the last
//! answered with one byte (trusting the listed size would save that one).
//!
//! Bad cases: a piece without data (the UID was expunged meanwhile, or a
//! broken reply) skips the mail for this fetch — not stored, so never
//! deleted on the server, and the next fetch lists it again — and the
//! staged file is removed. A piece longer than asked, or one whose overlap
//! byte differs, means the server ignored the origin; appending it would
//! corrupt the mail, so the fetch fails instead. A reply that cannot be
//! parsed is `Got::Unreadable` (imap::unreadable).

use futures::Stream;

use super::uidset::server_id;
use super::unreadable::{self, Next};
use super::wire::{describe_unreadable, imap_error, timed, Session};
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

/// What [`download`] got.
pub(super) enum Got {
    Mail(NewMail),
    /// No data for a piece (see the module docs); the mail is skipped.
    Skipped,
    /// A reply that could not be parsed (its first line); the session is
    /// lost.
    Unreadable(String),
}

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
    match download(session, store, t, host, uidvalidity, uid, now).await? {
        Got::Mail(m) => Ok(Some(m)),
        Got::Skipped => Ok(None),
        Got::Unreadable(line) => Err(describe_unreadable(host, WHAT, &line)),
    }
}

const WHAT: &str = "downloading a big mail in pieces (UID FETCH BODY.PEEK[]<offset.length>)";

/// [`fetch`], telling an unreadable reply from other failures.
pub(super) async fn download(
    session: &mut Session,
    store: &Store,
    t: &Timeouts,
    host: &str,
    uidvalidity: u32,
    uid: u32,
    now: i64,
) -> Result<Got> {
    let mut writer = blocking(|| store.blob_writer())?;
    let mut received = None;
    // The last byte written: the overlap byte of the next piece.
    let mut last: Option<u8> = None;
    loop {
        let len = u32::try_from(writer.len()).map_err(|_| {
            Error::connection(format!(
                "{host}: mail UID {uid} is larger than an IMAP partial fetch can address"
            ))
        })?;
        // INTERNALDATE (RFC 3501 §2.3.3) once, with the first piece.
        let (query, overlap) = match last {
            None => (format!("(UID INTERNALDATE BODY.PEEK[]<0.{PIECE}>)"), None),
            Some(byte) => {
                let origin = len.saturating_sub(1);
                let ask = PIECE.saturating_add(1);
                (format!("(UID BODY.PEEK[]<{origin}.{ask}>)"), Some(byte))
            }
        };
        let stream = timed(t, host, WHAT, async {
            session
                .uid_fetch(uid.to_string(), &query)
                .await
                .map_err(|e| imap_error(host, WHAT, e))
        })
        .await?;
        let mut stream = std::pin::pin!(stream);
        let piece = Piece {
            uid,
            overlap,
            t,
            host,
        };
        let got = match piece
            .append(&mut stream, &mut writer, &mut received)
            .await?
        {
            Appended::Unreadable(line) => return Ok(Got::Unreadable(line)),
            Appended::Nothing => {
                tracing::warn!(
                    host,
                    uid,
                    offset = len,
                    "no data for a piece of a big mail; skipped this fetch"
                );
                return Ok(Got::Skipped);
            }
            Appended::Bytes(n, byte) => {
                if n > 0 {
                    last = Some(byte);
                }
                n
            }
        };
        match got {
            n if n > PIECE as usize => {
                return Err(Error::connection(format!(
                    "{host}: asked for {PIECE} bytes of mail UID {uid}, got {n}: the server \
                     ignores partial fetches"
                )))
            }
            n if n < PIECE as usize => break,
            // Listed below the limit, it goes on past it: skipped like a
            // mail without data, so that no server fills the disk.
            _ if writer.len() > t.max_message_size => {
                tracing::warn!(
                    host,
                    uid,
                    bytes = writer.len(),
                    "a big mail passed [fetch] max_message_size; skipped"
                );
                return Ok(Got::Skipped);
            }
            _ => {}
        }
    }
    let staged = blocking(|| writer.finish())?;
    Ok(Got::Mail(NewMail {
        server_id: server_id(uidvalidity, uid),
        raw: Raw::Blob(staged),
        received: received.unwrap_or(now),
    }))
}

/// One piece's request: whose, which overlap byte it starts with.
struct Piece<'a> {
    uid: u32,
    overlap: Option<u8>,
    t: &'a Timeouts,
    host: &'a str,
}

/// What one piece added.
enum Appended {
    /// New bytes (the overlap byte not counted) and the last byte written.
    Bytes(usize, u8),
    Nothing,
    Unreadable(String),
}

impl Piece<'_> {
    /// Reads one partial FETCH reply to its end and appends the piece for
    /// the UID (the first, should the server send it twice), without its
    /// overlap byte. Unsolicited FETCH responses (flag changes of other
    /// messages) are ignored.
    async fn append<S>(
        &self,
        stream: &mut S,
        writer: &mut crate::store::BlobWriter,
        received: &mut Option<i64>,
    ) -> Result<Appended>
    where
        S: Stream<Item = async_imap::error::Result<async_imap::types::Fetch>> + Unpin,
    {
        let (t, host) = (self.t, self.host);
        let mut got = None;
        loop {
            let item = match unreadable::next(stream, t, host, WHAT).await? {
                Next::End => break,
                Next::Unreadable(line) => return Ok(Appended::Unreadable(line)),
                Next::Item(item) => item,
            };
            if item.uid != Some(self.uid) || got.is_some() {
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
            let fresh = match self.overlap {
                None => body,
                Some(byte) => match body.split_first() {
                    Some((first, rest)) if *first == byte => rest,
                    _ => {
                        return Err(Error::connection(format!(
                            "{host}: a piece of mail UID {} did not start where asked: the \
                             server ignores partial fetches",
                            self.uid
                        )))
                    }
                },
            };
            blocking(|| writer.write(fresh))?;
            got = Some(Appended::Bytes(
                fresh.len(),
                fresh.last().copied().or(self.overlap).unwrap_or(0),
            ));
        }
        Ok(got.unwrap_or(Appended::Nothing))
    }
}
