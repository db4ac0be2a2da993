//! The full listing of INBOX: every UID with its RFC822.SIZE, the base of
//! a fetch that cannot answer "nothing new" more cheaply (src/imap/uidnext.rs).
//!
//! async-imap reads a `UID FETCH` answered with a tagged NO (or BAD) as an
//! empty result: the tagged status ends the stream like an OK. A refused
//! listing would so read as an empty INBOX, and that fetch as complete:
//! nothing downloaded, the sync state written as if INBOX were empty, and
//! no error for the admin. The SELECT/EXAMINE reply counted the mails
//! (`EXISTS`, RFC 3501 §7.3.1), so an empty listing of a mailbox that holds
//! mail is taken for what it is: a refusal (Courier answers `NO` to a
//! listing it will not give). A mail expunged by another client between
//! the two costs one failed fetch; the next one sees the new count.

use super::wire::{imap_error, next, timed, Session};
use crate::error::{Error, Result};
use crate::net::Timeouts;

/// All UIDs in INBOX with their RFC822.SIZE, ascending by UID; an error
/// if none came although `exists` mails are in INBOX.
pub(super) async fn uids(
    session: &mut Session,
    t: &Timeouts,
    host: &str,
    exists: u32,
) -> Result<Vec<(u32, u64)>> {
    let what = "listing INBOX (UID FETCH 1:* RFC822.SIZE)";
    let stream = timed(t, host, what, async {
        session
            .uid_fetch("1:*", "(UID RFC822.SIZE)")
            .await
            .map_err(|e| imap_error(host, what, e))
    })
    .await?;
    let mut stream = std::pin::pin!(stream);
    let mut out = Vec::new();
    while let Some(item) = next(&mut stream, t, host, what).await? {
        if let (Some(uid), Some(size)) = (item.uid, item.size) {
            out.push((uid, u64::from(size)));
        }
    }
    out.sort_unstable();
    out.dedup_by_key(|(uid, _)| *uid);
    if out.is_empty() && exists > 0 {
        return Err(refused(host, exists));
    }
    Ok(out)
}

fn refused(host: &str, exists: u32) -> Error {
    Error::connection(format!(
        "{host}: the server listed no mail in INBOX, which holds {exists}: \
         it refused the listing (UID FETCH 1:*); nothing was fetched"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_host_and_count_only() {
        let text = refused("mail.example.com", 3).to_string();
        assert!(text.contains("mail.example.com"), "{text}");
        assert!(text.contains("holds 3"), "{text}");
    }
}
