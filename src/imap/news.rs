//! Whether what the server said means new mail in the selected INBOX: one
//! rule for the responses a kept session collects between commands and for
//! those that come during IDLE (pure, no I/O).
//!
//! RFC 3501 §7.3.1 / §7.4.1 oblige a server to report EXISTS and EXPUNGE to
//! the session that has the mailbox selected (during IDLE as they happen,
//! RFC 2177; otherwise with the next command's reply). So once INBOX's
//! message count is known to match the store, the server itself tells what
//! changes, and the count is followed here: an EXISTS above it (also after
//! EXPUNGEs lowered it), RECENT > 0 (§7.3.2) or a new UIDVALIDITY
//! (§2.3.1.1) is news; flag changes and status lines are not.

use async_imap::imap_proto::{MailboxDatum, Response, ResponseCode};
use async_imap::types::UnsolicitedResponse;

/// Whether a response means INBOX no longer matches the count `exists`
/// (updated as it goes); see the module docs.
pub(super) fn is_news_for(r: &Response<'_>, exists: &mut u32) -> bool {
    match r {
        Response::MailboxData(MailboxDatum::Exists(n)) => {
            let grew = *n > *exists;
            *exists = *n;
            grew
        }
        Response::MailboxData(MailboxDatum::Recent(n)) => *n > 0,
        Response::Expunge(_) => {
            *exists = exists.saturating_sub(1);
            false
        }
        Response::Data { outcome, .. } => {
            matches!(outcome.code, Some(ResponseCode::UidValidity(_)))
        }
        _ => false,
    }
}

/// An unsolicited response that async-imap collected, judged by
/// [`is_news_for`].
pub(super) fn is_news(r: &UnsolicitedResponse, exists: &mut u32) -> bool {
    let r = match r {
        UnsolicitedResponse::Exists(n) => Response::MailboxData(MailboxDatum::Exists(*n)),
        UnsolicitedResponse::Recent(n) => Response::MailboxData(MailboxDatum::Recent(*n)),
        UnsolicitedResponse::Expunge(n) => Response::Expunge(*n),
        UnsolicitedResponse::Other(data) => return is_news_for(data.parsed(), exists),
        _ => return false,
    };
    is_news_for(&r, exists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exists_growth_after_expunge_is_news_flags_are_not() {
        let mut exists = 3;
        assert!(!is_news(&UnsolicitedResponse::Exists(3), &mut exists));
        assert!(!is_news(&UnsolicitedResponse::Expunge(2), &mut exists));
        assert_eq!(exists, 2);
        // One deleted, one arrived: the count is back to 3, which is news.
        assert!(is_news(&UnsolicitedResponse::Exists(3), &mut exists));
        assert!(is_news(&UnsolicitedResponse::Recent(1), &mut exists));
        assert!(!is_news(&UnsolicitedResponse::Recent(0), &mut exists));
    }
}
