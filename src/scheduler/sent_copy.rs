//! The Sent copy of a mail the account's delivery task got accepted
//! (`SaveSentCopy`, IMAP accounts only), APPENDed by the account's task on
//! its kept IMAP connection: the delivery runs beside the fetch loop
//! (`scheduler::sending`), but the IMAP connection has one owner, the
//! account task, which gets the copy as a [`Request::SentCopy`].
//!
//! The copy is the composed bytes exactly as sent, APPENDed with `\Seen`
//! (RFC 3501 §6.3.11) to `SentFolder`. Bcc recipients are in the envelope
//! only, so the copy does not show them. The mail is `sent` before the
//! copy is tried: an APPEND that fails (a missing folder, a broken
//! connection) leaves it `sent` and says so in its `error`; the copy is
//! not retried, because a retry that raced a slow server could leave two
//! copies. POP3 accounts have no folders on the server, so no Sent copy.
//!
//! [`Request::SentCopy`]: super::Request::SentCopy

use std::future::Future;

use super::worker::{no_password, Slot, Work, Worker};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::fetch::blocking;
use crate::imap::Connection;
use crate::store::OutboxState;

/// IMAP flags of the Sent copy: the sender has read it.
const SENT_FLAGS: &[&str] = &["\\Seen"];

/// Whether mail sent from `a` gets a Sent copy (module docs).
pub(super) fn wanted(a: &Account) -> bool {
    a.kind.is_imap() && a.save_sent_copy && !a.sent_folder.is_empty()
}

/// The Sent copy of outbox mail `mail` on `conn` or a new connection;
/// returns the connection if still usable.
pub(super) async fn save(me: &Worker, conn: Option<Connection>, mail: u64) -> Option<Connection> {
    let a = &me.account;
    if !wanted(a) {
        return conn;
    }
    let store = &me.rt.store;
    let raw = match blocking(|| store.raw(mail)) {
        Ok(Some(raw)) => raw,
        Ok(None) => return conn,
        Err(e) => {
            failed(me, mail, &e);
            return conn;
        }
    };
    let work = Append {
        folder: &a.sent_folder,
        flags: SENT_FLAGS,
        message: &raw,
    };
    let (r, back) = me
        .on_connection(conn, &Slot::new(None), &no_password, &work)
        .await;
    match r {
        Ok(()) => {
            tracing::info!(account_id = %a.id, message = mail, folder = %a.sent_folder, "Sent copy saved");
        }
        Err(e) => failed(me, mail, &e),
    }
    back
}

/// Records in the mail's `error` that it was sent without its copy.
fn failed(me: &Worker, mail: u64, e: &Error) {
    let a = &me.account;
    let store = &me.rt.store;
    let e = crate::redact::account_error(store, a, e);
    let error = crate::redact::cap(&format!(
        "sent, but the copy in the Sent folder {:?} could not be saved: {e}",
        a.sent_folder
    ));
    tracing::warn!(account_id = %a.id, message = mail, error = %error, "Sent copy failed");
    let r = blocking(|| {
        let Some(mut rec) = store.outbox_record(mail)? else {
            return Ok(());
        };
        rec.error = error;
        store.set_outbox_record(mail, OutboxState::Sent, &rec)
    });
    match r {
        Ok(()) => me.rt.handle.notifier().messages_changed(vec![mail]),
        Err(e) => {
            tracing::error!(account_id = %a.id, message = mail, error = %e, "cannot record the Sent copy's failure");
        }
    }
}

/// An APPEND of one message.
pub(super) struct Append<'a> {
    pub folder: &'a str,
    pub flags: &'a [&'a str],
    pub message: &'a [u8],
}

impl Work for Append<'_> {
    type Out = ();
    fn run<'c>(&'c self, c: &'c mut Connection) -> impl Future<Output = Result<()>> + Send + 'c {
        c.append(self.folder, self.flags, self.message)
    }
}
