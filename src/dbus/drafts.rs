//! `Mailbox.SaveDraft`: the access rules of SendMessage, the message keys
//! without the need for a recipient, and the hand-over to the account's
//! task (scheduler `drafts`), which APPENDs to the Drafts folder.
//!
//! Who may: whoever may send from the account (dbus::sending) — a private
//! account's drafts only its owner; for anyone else the account does not
//! exist. The signature is composed in as for SendMessage when `signature`
//! is true (the default); an admin acting as nobody (user "") saves
//! without one.
//!
//! The answer is the draft's message id in folder `drafts` (store
//! `drafts`): ListMessages(folder=drafts), GetMessage and GetRaw show it.
//! With `draft_id` (an id SaveDraft returned, still the latest version) the
//! new version replaces that one: it gets a new id, like a new UID on the
//! server, and the old id is gone (`MessagesChanged`). Refusals, in order:
//! the keys (InvalidArgument naming the key), a POP3 account
//! (InvalidArgument), no Drafts folder set (FolderUnknown), a `draft_id`
//! that is not a visible draft of this account (NotFound), the signature
//! and composing — all before anything reaches the server.

use std::collections::HashMap;

use zbus::message::Header;
use zbus::{Connection, ObjectPath, OwnedVariant};

use super::errors::{scrub_reply, ApiError, ApiResult};
use super::mailbox::{announce_changed, Mailbox};
use super::sending::{announce_added, message_values, sendable_account};
use crate::account::Account;
use crate::error::Error;
use crate::redact::Scrubber;
use crate::scheduler::drafts::{check, DraftJob};
use crate::send::{compose_mail, Draft, Sender};
use crate::store::{no_draft, Visibility};

/// SaveDraft (module docs); returns the draft's id.
pub(super) async fn save_draft(
    mb: &Mailbox,
    conn: &Connection,
    hdr: &Header<'_>,
    user: &str,
    account: &ObjectPath<'_>,
    message: HashMap<String, OwnedVariant>,
) -> ApiResult<u64> {
    let viewer = mb.viewer(conn, hdr, user).await?;
    let account = sendable_account(mb, &viewer, account).await?;
    let mut draft = Draft::from_keys(message_values(message)?)?;
    check(&account)?;
    if let Some(old) = draft.draft_id {
        let (v, acct) = (viewer.clone(), account.id.clone());
        let mine = mb
            .ctx
            .blocking(move |s| {
                Ok(s.visible_message(old, &v)?.is_some()
                    && s.draft_record(old)?.is_some_and(|r| r.account == acct))
            })
            .await?;
        if !mine {
            return Err(no_draft(old).into());
        }
    }
    let user = match &viewer {
        Visibility::User(u) => u.clone(),
        Visibility::All => {
            draft.signature = false;
            String::new()
        }
    };
    let replaces = draft.draft_id;
    let sender = Sender { user, viewer };
    let composed = compose_mail(&mb.ctx.store, &account, &sender, draft).await?;
    let job = DraftJob {
        raw: composed.raw,
        message_id: composed.message_id,
        user: sender.user,
        replaces,
    };
    let saved = match mb.ctx.scheduler.save_draft(&account.id, job).await {
        Ok(saved) => saved,
        Err(e) => return Err(scrubbed(mb, account, e).await),
    };
    announce_added(conn, &account.id, saved.id).await;
    if let Some(old) = saved.replaced {
        announce_changed(conn, old).await;
    }
    Ok(saved.id)
}

/// The task's error without the account's secrets: the APPEND logs in, and
/// a server's words may repeat the password.
async fn scrubbed(mb: &Mailbox, account: Account, e: Error) -> ApiError {
    let scrubber = mb
        .ctx
        .blocking(move |s| {
            Scrubber::for_account(s, &account)
                .ok_or_else(|| Error::storage_msg("cannot read the account's secrets".into()))
        })
        .await;
    match scrubber {
        Ok(s) => scrub_reply(&s, e.into()),
        Err(unreadable) => unreadable,
    }
}
