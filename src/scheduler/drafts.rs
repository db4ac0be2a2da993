//! SaveDraft on the account's task, on its kept IMAP connection: APPEND
//! the composed draft to the account's `DraftsFolder` with `\Draft` and
//! `\Seen` (RFC 3501 §6.3.11; the author has read their own draft), store
//! it (`store::drafts`), and when it replaces an earlier draft remove that
//! one from the server (imap::drafts).
//!
//! The order makes a failure cost at most a duplicate, never the text:
//! 1. APPEND the new version. If that fails, nothing has changed anywhere
//!    and the caller gets the error (FolderUnknown for a missing folder).
//! 2. Commit it to the store, with the UID from `APPENDUID` (RFC 4315),
//!    removing the replaced version's message and record in the same
//!    transaction. If the store fails, the new version is on the server
//!    only and the error says so; the old one is left untouched.
//! 3. Remove the old version on the server (`UID STORE \Deleted` +
//!    `UID EXPUNGE`, found by UID and Message-ID). A failure here — a
//!    broken connection, a server without UIDPLUS, the draft already gone —
//!    is logged and does not fail the call: the new version is saved, and
//!    the store no longer knows the old one.
//!
//! As for the Sent copy, a kept connection that breaks during the APPEND is
//! replaced and the APPEND sent once more (scheduler::worker): if the
//! first one had reached the server, Drafts holds that version twice, and
//! the next replacement removes both (they share the Message-ID).
//!
//! The signature is composed into the draft like into a sent mail, so a
//! CRM that saves a text it loaded from a draft (which already ends with
//! the signature) passes `signature: false`.
//!
//! Only IMAP accounts with a Drafts folder can keep drafts ([`check`]):
//! POP3 has no folders on the server. DeleteMessage of a saved draft
//! removes it from its folder the same way ([`discard`]).

use std::future::Future;

use super::request::{DraftJob, SavedDraft};
use super::worker::{no_password, Slot, Work, Worker};
use super::{Handle, Request};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::fetch::blocking;
use crate::imap::{Connection, OldDraft, Removed};
use crate::send::queue::unix_now;
use crate::store::{no_draft, DraftRecord};

/// IMAP flags of a saved draft.
const DRAFT_FLAGS: &[&str] = &["\\Draft", "\\Seen"];

impl Handle {
    /// Saves a draft on the account's task (module docs); resolves when it
    /// is stored.
    pub async fn save_draft(&self, account: &str, job: DraftJob) -> Result<SavedDraft> {
        self.ask(account, |reply| Request::SaveDraft {
            job: Box::new(job),
            reply,
        })
        .await
    }
}

/// Whether `a` can keep drafts: IMAP, with a Drafts folder set.
pub fn check(a: &Account) -> Result<()> {
    if !a.kind.is_imap() {
        return Err(Error::invalid(
            "account",
            "a POP3 account has no folders on the server to keep drafts in",
        ));
    }
    if a.drafts_folder.is_empty() {
        return Err(Error::FolderUnknown(
            "no Drafts folder is set for this account: run SyncFolders (it proposes the \
             server's \\Drafts folder) or set drafts_folder"
                .into(),
        ));
    }
    Ok(())
}

/// The save (module docs), on `kept` or a new connection.
pub(super) async fn save(
    me: &Worker,
    kept: Option<Connection>,
    job: &DraftJob,
) -> (Result<SavedDraft>, Option<Connection>) {
    let a = &me.account;
    let store = &me.rt.store;
    if let Err(e) = check(a) {
        return (Err(e), kept);
    }
    if let Some(old) = job.replaces {
        match blocking(|| store.draft_record(old)) {
            Ok(Some(r)) if r.account == a.id => {}
            Ok(_) => return (Err(no_draft(old)), kept),
            Err(e) => return (Err(e), kept),
        }
    }
    let work = AppendDraft {
        folder: &a.drafts_folder,
        message: &job.raw,
    };
    let (r, conn) = me
        .on_connection(kept, &Slot::new(None), &no_password, &work)
        .await;
    let place = match r {
        Ok(p) => p,
        Err(e) => return (Err(e), conn),
    };
    let (uid_validity, uid) = place.unwrap_or((0, 0));
    let record = DraftRecord {
        user: job.user.clone(),
        folder: a.drafts_folder.clone(),
        uid_validity,
        uid,
        message_id: job.message_id.clone(),
        ..DraftRecord::default()
    };
    let at = unix_now();
    let stored = blocking(|| {
        let summary = crate::mime::summarize(&job.raw, at);
        store.add_draft(a, job.raw.clone(), summary, record, at, job.replaces)
    });
    let (id, old) = match stored {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(account_id = %a.id, uid, error = %e, "a draft was saved on the server but cannot be stored");
            let e = Error::storage_msg(format!(
                "the draft was saved in the folder {:?} on the server, but not here: {e}",
                a.drafts_folder
            ));
            return (Err(e), conn);
        }
    };
    tracing::info!(account_id = %a.id, draft = id, uid, folder = %a.drafts_folder, "draft saved");
    let Some(old) = old else {
        return (Ok(SavedDraft { id, replaced: None }), conn);
    };
    let conn = remove_old(me, conn, &old).await;
    let saved = SavedDraft {
        id,
        replaced: job.replaces,
    };
    (Ok(saved), conn)
}

/// Step 3 of the module docs: errors are logged only.
async fn remove_old(
    me: &Worker,
    conn: Option<Connection>,
    old: &DraftRecord,
) -> Option<Connection> {
    let a = &me.account;
    let work = RemoveDraft(OldDraft {
        folder: &old.folder,
        uid_validity: old.uid_validity,
        uid: old.uid,
        message_id: &old.message_id,
    });
    let (r, conn) = me
        .on_connection(conn, &Slot::new(None), &no_password, &work)
        .await;
    match r {
        Ok(Removed::Expunged(n)) => {
            tracing::info!(account_id = %a.id, uid = old.uid, removed = n, "replaced draft removed from the server");
        }
        Ok(Removed::Flagged(n)) => {
            tracing::warn!(account_id = %a.id, uid = old.uid, flagged = n, "the server has no UIDPLUS: the replaced draft is flagged \\Deleted but not expunged, since a plain EXPUNGE would remove other clients' deleted mail");
        }
        Ok(Removed::Gone) => {
            tracing::info!(account_id = %a.id, uid = old.uid, "the replaced draft was already gone from the server");
        }
        Err(e) => {
            let e = crate::redact::account_error(&me.rt.store, a, &e);
            tracing::warn!(account_id = %a.id, uid = old.uid, error = %e, "the replaced draft could not be removed from the server");
        }
    }
    conn
}

/// DeleteMessage of a saved draft: it is removed from its folder on the
/// server like a replaced one (not moved to Trash: it was never sent and
/// is the user's own unfinished text). Unlike a replacement, a failure
/// fails the call, so the draft stays here and the caller can retry.
/// A Trash request (DeleteMessage): a saved draft leaves the Drafts
/// folder ([`discard`]: it was never sent, so not into Trash); any other
/// mail takes the worker's Trash move.
pub(super) async fn trash(
    me: &Worker,
    kept: Option<Connection>,
    message: u64,
) -> (Result<()>, Option<Connection>) {
    if me.account.kind.is_imap() {
        match blocking(|| me.rt.store.draft_record(message)) {
            Ok(Some(draft)) => return discard(me, kept, &draft).await,
            Ok(None) => {}
            Err(e) => return (Err(e), kept),
        }
    }
    me.trash(kept, message).await
}

async fn discard(
    me: &Worker,
    kept: Option<Connection>,
    draft: &DraftRecord,
) -> (Result<()>, Option<Connection>) {
    let work = RemoveDraft(OldDraft {
        folder: &draft.folder,
        uid_validity: draft.uid_validity,
        uid: draft.uid,
        message_id: &draft.message_id,
    });
    let (r, conn) = me
        .on_connection(kept, &Slot::new(None), &no_password, &work)
        .await;
    if let Ok(removed) = &r {
        tracing::info!(account_id = %me.account.id, uid = draft.uid, ?removed, "draft deleted on the server");
    }
    (r.map(|_| ()), conn)
}

/// `APPEND` with `\Draft \Seen`, answering with APPENDUID.
struct AppendDraft<'a> {
    folder: &'a str,
    message: &'a [u8],
}

impl Work for AppendDraft<'_> {
    type Out = Option<(u32, u32)>;
    fn run<'c>(
        &'c self,
        c: &'c mut Connection,
    ) -> impl Future<Output = Result<Option<(u32, u32)>>> + Send + 'c {
        c.append_uid(self.folder, DRAFT_FLAGS, self.message)
    }
}

/// The removal of a replaced draft.
struct RemoveDraft<'a>(OldDraft<'a>);

impl Work for RemoveDraft<'_> {
    type Out = Removed;
    fn run<'c>(
        &'c self,
        c: &'c mut Connection,
    ) -> impl Future<Output = Result<Removed>> + Send + 'c {
        c.remove_draft(&self.0)
    }
}
