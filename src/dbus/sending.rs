//! `Mailbox.SendMessage`: who may send from an account, the message keys
//! as the send module takes them, and the hand-over to the account's task.
//!
//! The caller may send from an account exactly when it may see that
//! account's mail: a private account only as its owner; for anyone else it
//! does not exist (NotFound, as for its mail, invariant 6). Everything
//! that can refuse the mail — the keys, the signature, composing — runs
//! before the outbox entry is committed (`send::queue_mail`); then the
//! account's task is asked to deliver (scheduler `Request::Deliver`). No
//! SMTP or IMAP runs here: the answer is the outbox id, and the mail's
//! `state` (queued, sending, sent, failed) and `error` follow in
//! `MessagesChanged`.
//!
//! A signature belongs to a CRM user (their own, else the tenant's general
//! one, filled with their employee data), so an admin who calls with user
//! "" sends without one.

use std::collections::HashMap;

use zbus::{Connection, ObjectPath, OwnedVariant, Variant};

use super::account_id;
use super::ctx::Ctx;
use super::errors::ApiResult;
use super::wire::check_keys;
use crate::account::Account;
use crate::error::Error;
use crate::send::message::KEYS;
use crate::send::{queue_mail, Draft, MessageValue, Sender};
use crate::store::Visibility;

/// SendMessage (module docs); returns the outbox id.
pub(super) async fn send_message(
    ctx: &Ctx,
    conn: &Connection,
    viewer: Visibility,
    account: &ObjectPath<'_>,
    message: HashMap<String, OwnedVariant>,
) -> ApiResult<u64> {
    let account = sendable_account(ctx, &viewer, account).await?;
    let mut draft = Draft::from_keys(message_values(message)?)?;
    if draft.draft_id.is_some() {
        return Err(Error::invalid("draft_id", "only SaveDraft replaces a draft").into());
    }
    let sender = sender_of(viewer, &mut draft);
    let id = queue_mail(&ctx.store, &account, &sender, draft).await?;
    tracing::info!(account_id = %account.id, message = id, "mail queued");
    ctx.scheduler.deliver(&account.id);
    super::announce::added(conn, &account.id, id).await;
    Ok(id)
}

/// Who sends (or saves) `draft`: the viewer's CRM user. An admin acting
/// as nobody has no CRM user, so no signature.
pub(super) fn sender_of(viewer: Visibility, draft: &mut Draft) -> Sender {
    let user = match &viewer {
        Visibility::User(u) => u.clone(),
        Visibility::All => {
            draft.signature = false;
            String::new()
        }
    };
    Sender { user, viewer }
}

/// The account named by `path` if `viewer` may send from it; NotFound
/// otherwise, with the same words whether it is missing or hidden.
pub(super) async fn sendable_account(
    ctx: &Ctx,
    viewer: &Visibility,
    path: &ObjectPath<'_>,
) -> ApiResult<Account> {
    let missing = || Error::NotFound(format!("no account at {}", path.as_str()));
    let id = account_id(path.as_str()).ok_or_else(missing)?.to_string();
    let account = ctx
        .blocking(move |s| s.account(&id))
        .await?
        .ok_or_else(missing)?;
    let sees = match viewer {
        Visibility::All => true,
        Visibility::User(u) => account.private_owner.is_empty() || &account.private_owner == u,
    };
    if !sees {
        return Err(missing().into());
    }
    Ok(account)
}

/// The message keys typed by their D-Bus signature; a variant inside a
/// variant is unwrapped once, as for settings.
pub(super) fn message_values(
    dict: HashMap<String, OwnedVariant>,
) -> crate::error::Result<Vec<(String, MessageValue)>> {
    check_keys("message", dict.keys(), dict.len(), KEYS.len())?;
    let mut out: Vec<(String, MessageValue)> = dict
        .into_iter()
        .map(|(k, v)| {
            let value = message_value(&v);
            (k, value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn message_value(v: &Variant<'_>) -> MessageValue {
    if let Variant::Variant(inner) = v {
        return message_value(inner);
    }
    let other = || MessageValue::Other(v.value_signature().to_string());
    let Ok(owned) = v.try_to_owned() else {
        return other();
    };
    match v.value_signature().to_string().as_str() {
        "s" => String::try_from(owned).map_or_else(|_| other(), MessageValue::Str),
        "as" => Vec::<String>::try_from(owned).map_or_else(|_| other(), MessageValue::StrList),
        "b" => bool::try_from(owned).map_or_else(|_| other(), MessageValue::Bool),
        "t" => u64::try_from(owned).map_or_else(|_| other(), MessageValue::U64),
        "a(ssay)" => Vec::<(String, String, Vec<u8>)>::try_from(owned)
            .map_or_else(|_| other(), MessageValue::Attachments),
        _ => other(),
    }
}

/// Fills `state` and `error` of an outbox mail's dict from its queue
/// record; other mail keeps them "".
pub(super) fn outbox_keys(
    s: &crate::store::Store,
    m: &crate::store::MessageMeta,
    d: &mut super::wire::Dict,
) -> crate::error::Result<()> {
    if m.folder != crate::store::OUTBOX {
        return Ok(());
    }
    if let Some(rec) = s.outbox_record(m.id)? {
        d.insert("state".into(), rec.state.as_str().to_string().into());
        d.insert("error".into(), rec.error.into());
    }
    Ok(())
}
