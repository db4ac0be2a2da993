//! Removing a replaced draft from the account's Drafts folder (SaveDraft
//! with `draft_id`; the new version is already APPENDed).
//!
//! The old version is found in its folder by what SaveDraft recorded:
//! - its UID from the APPEND's `APPENDUID` (RFC 4315), while the folder's
//!   UIDVALIDITY is still the one it was seen under (a UID is never reused
//!   under one UIDVALIDITY, RFC 3501 §2.3.1.1), OR its Message-ID, which
//!   also finds a second copy left by an APPEND that was sent again after
//!   a broken connection: `UID SEARCH OR UID <uid> HEADER Message-ID <id>`;
//! - by the Message-ID alone when no UID is known (the server sent no
//!   APPENDUID) or the UIDVALIDITY changed.
//!
//! Every version of a draft gets a new Message-ID, so neither finds the
//! version just saved.
//!
//! Then `UID STORE \Deleted` + `UID EXPUNGE` of exactly those UIDs
//! (imap::wire::expunge, needs UIDPLUS). A server without UIDPLUS gets the
//! `\Deleted` flag only: a bare EXPUNGE would also remove every mail other
//! clients flagged `\Deleted`; the old version then disappears with the
//! next expunge of any client, and mail clients hide it meanwhile. An old
//! version that is already gone (another client deleted it) is no error.
//!
//! The folder stays selected afterwards, which forgets what was known about
//! INBOX (imap::connection): the next IDLE or fetch EXAMINEs it again.

use super::connection::{Connection, Selected};
use super::folders::{folder_error, quote};
use super::uidset::compress;
use super::wire::{self, next, timed};
use crate::error::{Error, Result};

/// What [`Connection::remove_draft`] looks for.
#[derive(Debug, Clone, Copy)]
pub struct OldDraft<'a> {
    pub folder: &'a str,
    /// 0 when unknown.
    pub uid_validity: u32,
    /// 0 when unknown.
    pub uid: u32,
    /// With angle brackets.
    pub message_id: &'a str,
}

/// What [`Connection::remove_draft`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// `UID EXPUNGE`d (this many).
    Expunged(usize),
    /// Flagged `\Deleted` only (this many): the server has no UIDPLUS.
    Flagged(usize),
    /// Not in the folder any more.
    Gone,
}

impl Connection {
    /// Removes the old version of a replaced draft (module docs).
    pub async fn remove_draft(&mut self, old: &OldDraft<'_>) -> Result<Removed> {
        let r = self.remove_draft_inner(old).await;
        self.checked(r)
    }

    async fn remove_draft_inner(&mut self, old: &OldDraft<'_>) -> Result<Removed> {
        let uidplus = self.caps().await?.has("UIDPLUS");
        let folder = old.folder;
        let quoted = quote(folder)?;
        let message_id = search_string(old.message_id)?;
        self.inbox = None;
        self.selected = None;
        let (t, host, session) = (&self.t, self.host.as_str(), &mut self.session);
        let what = format!("selecting {folder:?} (SELECT)");
        let mailbox = timed(t, host, &what, async {
            let r = session.select(super::utf7::encode(folder)).await;
            r.map_err(|e| folder_error(host, folder, &what, e))
        })
        .await?;
        self.selected = Some(Selected {
            name: folder.to_string(),
            writable: true,
        });
        let by_uid = old.uid != 0 && mailbox.uid_validity == Some(old.uid_validity);
        let query = if by_uid {
            format!("OR UID {} HEADER Message-ID {message_id}", old.uid)
        } else {
            format!("HEADER Message-ID {message_id}")
        };
        let (t, host, session) = (&self.t, self.host.as_str(), &mut self.session);
        let what = format!("finding the old draft in {quoted} (UID SEARCH)");
        let found = timed(t, host, &what, async {
            let r = session.uid_search(&query).await;
            r.map_err(|e| wire::imap_error(host, &what, e))
        })
        .await?;
        let mut uids: Vec<u32> = found.into_iter().collect();
        uids.sort_unstable();
        if uids.is_empty() {
            return Ok(Removed::Gone);
        }
        let set = compress(&uids);
        if uidplus {
            wire::expunge(session, t, host, &set).await?;
            return Ok(Removed::Expunged(uids.len()));
        }
        let what = "flagging the old draft \\Deleted (UID STORE)";
        let stream = timed(t, host, what, async {
            session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await
                .map_err(|e| wire::imap_error(host, what, e))
        })
        .await?;
        let mut stream = std::pin::pin!(stream);
        while next(&mut stream, t, host, what).await?.is_some() {}
        Ok(Removed::Flagged(uids.len()))
    }
}

/// A Message-ID as an IMAP quoted search string: our own ids are
/// printable ASCII; anything else names no draft of ours.
fn search_string(id: &str) -> Result<String> {
    if id.is_empty() || !id.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(Error::invalid(
            "draft_id",
            "the draft's Message-ID is not one this daemon wrote",
        ));
    }
    Ok(format!(
        "\"{}\"",
        id.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_quoted_and_odd_ones_refused() {
        assert_eq!(search_string("<a.1@x.test>").unwrap(), "\"<a.1@x.test>\"");
        assert_eq!(search_string("<a\"b@x>").unwrap(), "\"<a\\\"b@x>\"");
        for bad in ["", "<a b@x>", "<a\r\n@x>", "<ä@x>"] {
            assert!(search_string(bad).is_err(), "{bad:?}");
        }
    }
}
