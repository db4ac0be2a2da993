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

use zbus::{Connection, ObjectPath, OwnedVariant};

use super::ctx::Ctx;
use super::errors::{scrub_reply, ApiError, ApiResult};
use super::sending::{message_values, sendable_account, sender_of};
use crate::account::Account;
use crate::error::Error;
use crate::redact::Scrubber;
use crate::scheduler::drafts::check;
use crate::scheduler::DraftJob;
use crate::send::{compose_mail, Draft};
use crate::store::{no_draft, Visibility};

/// SaveDraft (module docs); returns the draft's id.
pub(super) async fn save_draft(
    ctx: &Ctx,
    conn: &Connection,
    viewer: Visibility,
    account: &ObjectPath<'_>,
    message: HashMap<String, OwnedVariant>,
) -> ApiResult<u64> {
    let account = sendable_account(ctx, &viewer, account).await?;
    let mut draft = Draft::from_keys(message_values(message)?)?;
    check(&account)?;
    if let Some(old) = draft.draft_id {
        let (v, acct) = (viewer.clone(), account.id.clone());
        let mine = ctx
            .blocking(move |s| {
                Ok(s.visible_message(old, &v)?.is_some()
                    && s.draft_record(old)?.is_some_and(|r| r.account == acct))
            })
            .await?;
        if !mine {
            return Err(no_draft(old).into());
        }
    }
    let replaces = draft.draft_id;
    let sender = sender_of(viewer, &mut draft);
    let composed = compose_mail(&ctx.store, &account, &sender, draft).await?;
    let job = DraftJob {
        raw: composed.raw,
        message_id: composed.message_id,
        user: sender.user,
        replaces,
    };
    let saved = match ctx.scheduler.save_draft(&account.id, job).await {
        Ok(saved) => saved,
        Err(e) => return Err(scrubbed(ctx, account, e).await),
    };
    super::announce::added(conn, &account.id, saved.id).await;
    if let Some(old) = saved.replaced {
        super::announce::changed(conn, old).await;
    }
    Ok(saved.id)
}

/// The task's error without the account's secrets: the APPEND logs in, and
/// a server's words may repeat the password.
async fn scrubbed(ctx: &Ctx, account: Account, e: Error) -> ApiError {
    let scrubber = ctx
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
