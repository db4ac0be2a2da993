//! Downloading one batch of INBOX mails for imap::fetch: big mails one by
//! one in pieces into blob files (imap::partial), the others with one
//! `UID FETCH ... BODY.PEEK[]` (RFC 3501 §6.4.5: PEEK leaves `\Seen` as the
//! user left it). A reply that cannot be parsed ends the batch with what
//! was read before it, and names the mail it was about (imap::unreadable).

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use super::partial::{self, Got};
use super::uidset::{compress, server_id};
use super::unreadable::{self, Next};
use super::wire::{imap_error, timed, Session};
use crate::error::Result;
use crate::net::Timeouts;
use crate::store::{NewMail, Store};

/// What one batch brought.
pub(super) struct Batch {
    /// The mails read, in UID order.
    pub mails: Vec<NewMail>,
    /// A reply that could not be read: the session is lost, and the mails
    /// after it were not read.
    pub lost: Option<Lost>,
}

/// An unreadable reply.
pub(super) struct Lost {
    /// The mail it was about, if any of the batch's is left to blame.
    pub uid: Option<u32>,
    /// Its first line.
    pub line: String,
}

/// Downloads one batch of (UID, listed size). A UID that vanished
/// meanwhile (another client expunged it) is simply absent from the
/// result; unsolicited FETCH responses for other messages (flag changes)
/// are ignored.
pub(super) async fn batch(
    session: &mut Session,
    store: &Store,
    t: &Timeouts,
    host: &str,
    uidvalidity: u32,
    batch: &[(u32, u64)],
) -> Result<Batch> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let mut got: HashMap<u32, NewMail> = HashMap::new();
    for &(uid, _) in batch.iter().filter(|(_, size)| partial::is_big(*size)) {
        match partial::download(session, store, t, host, uidvalidity, uid, now).await? {
            Got::Mail(m) => {
                got.insert(uid, m);
            }
            Got::Skipped => {}
            Got::Unreadable(line) => {
                let uid = Some(uid);
                return Ok(ended(got, Some(Lost { uid, line })));
            }
        }
    }
    let uids: Vec<u32> = batch
        .iter()
        .filter(|(_, size)| !partial::is_big(*size))
        .map(|(uid, _)| *uid)
        .collect();
    if uids.is_empty() {
        return Ok(ended(got, None));
    }
    let set = compress(&uids);
    let wanted: HashSet<u32> = uids.iter().copied().collect();
    let what = "downloading mail (UID FETCH BODY.PEEK[])";
    let stream = timed(t, host, what, async {
        session
            .uid_fetch(&set, "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[])")
            .await
            .map_err(|e| imap_error(host, what, e))
    })
    .await?;
    let mut stream = std::pin::pin!(stream);
    loop {
        let item = match unreadable::next(&mut stream, t, host, what).await? {
            Next::End => break,
            Next::Item(item) => item,
            Next::Unreadable(line) => {
                let missing: Vec<u32> = uids
                    .iter()
                    .copied()
                    .filter(|u| !got.contains_key(u))
                    .collect();
                let uid = unreadable::blame(&line, &missing);
                return Ok(ended(got, Some(Lost { uid, line })));
            }
        };
        let Some(uid) = item.uid.filter(|u| wanted.contains(u)) else {
            continue;
        };
        let Some(body) = item.body() else {
            continue;
        };
        let received = item.internal_date().map(|d| d.timestamp()).unwrap_or(now);
        got.insert(
            uid,
            NewMail {
                server_id: server_id(uidvalidity, uid),
                raw: body.to_vec().into(),
                received,
            },
        );
    }
    Ok(ended(got, None))
}

fn ended(got: HashMap<u32, NewMail>, lost: Option<Lost>) -> Batch {
    let mut mails: Vec<(u32, NewMail)> = got.into_iter().collect();
    mails.sort_unstable_by_key(|(uid, _)| *uid);
    Batch {
        mails: mails.into_iter().map(|(_, m)| m).collect(),
        lost,
    }
}
