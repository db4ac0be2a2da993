//! The outbox driver: queueing a mail (SendMessage) and resuming after a
//! restart; one delivery attempt is [`super::deliver`].
//!
//! [`queue_mail`] does everything that can refuse the mail *before* it is
//! queued: the message keys, the mail it answers, the signature (an
//! unknown placeholder, a missing picture or no linked employee refuses
//! the mail with that error, so raw placeholders never go out), composing.
//! Then the outbox entry is committed, and from then on the mail is the
//! queue's. [`super::deliver::deliver`] runs one attempt and records each step durably
//! (see [`super::policy`] for the states); [`resume`] is what the daemon
//! runs once at start, before any account task delivers.
//!
//! Store calls block on disk I/O and run on tokio's blocking pool;
//! composing and signature pictures too (a 25 MiB attachment is encoded
//! there, and pictures are scaled under `signature::PICTURE_WORK`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::compose::{compose, Compose, Composed};
use super::message::{Draft, InReplyTo};
use super::policy;
use super::thread::Parent;
use crate::account::Account;
use crate::error::{Error, Result};
use crate::signature::{self, For, ForMail};
use crate::store::{OutboxRecord, OutboxState, Pending, Store, Visibility};

/// Unix seconds now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Run a blocking store call on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
) -> Result<T> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| Error::storage("a store task failed", e))?
}

/// Who sends: the CRM user the mail is sent for (whose signature it gets)
/// and what that user may see (for `in_reply_to`).
#[derive(Debug, Clone)]
pub struct Sender {
    pub user: String,
    pub viewer: Visibility,
}

/// SendMessage after the access check: refuse or queue the mail (module
/// docs); returns its message id in folder `outbox`.
pub async fn queue_mail(
    store: &Arc<Store>,
    account: &Account,
    sender: &Sender,
    draft: Draft,
) -> Result<u64> {
    draft.check_sendable()?;
    check_has_server(account)?;
    let composed = compose_mail(store, account, sender, draft).await?;
    let queued_at = unix_now();
    let record = OutboxRecord {
        user: sender.user.clone(),
        from: composed.from.to_string(),
        rcpt: composed.rcpt.iter().map(ToString::to_string).collect(),
        queued_at,
        next_at: queued_at,
        ..OutboxRecord::default()
    };
    let account = account.clone();
    blocking(store, move |s| {
        let summary = crate::mime::summarize(&composed.raw, queued_at);
        s.add_outbox(&account, composed.raw, summary, record)
    })
    .await
}

/// Composes `draft` for `sender` from `account`: resolves the mail it
/// answers, renders the signature when the draft asks for one, builds the
/// mail (module docs). Shared by SendMessage and SaveDraft; nothing is
/// stored.
pub async fn compose_mail(
    store: &Arc<Store>,
    account: &Account,
    sender: &Sender,
    draft: Draft,
) -> Result<Composed> {
    let parent = match draft.in_reply_to.clone() {
        None => None,
        Some(InReplyTo::MessageId(id)) => Some(Parent::by_id(&id)),
        Some(InReplyTo::Stored(id)) => {
            let viewer = sender.viewer.clone();
            let raw = blocking(store, move |s| match s.visible_message(id, &viewer)? {
                Some(_) => s.raw(id),
                None => Ok(None),
            })
            .await?
            .ok_or_else(|| Error::invalid("in_reply_to", format!("no message {id}")))?;
            Parent::from_raw(&raw)
        }
    };
    let signature = if draft.signature {
        signature_for(store, &account.tenant, &sender.user).await?
    } else {
        None
    };
    let now = SystemTime::now();
    let account = account.clone();
    tokio::task::spawn_blocking(move || {
        compose(&Compose {
            account: &account,
            draft: &draft,
            signature: signature.as_ref(),
            parent: parent.as_ref(),
            date: now,
        })
    })
    .await
    .map_err(|e| Error::storage("composing the mail failed", e))?
}

/// An account without `smtp_host` cannot send (IMAP and POP3 accounts
/// set it separately; Office 365 gets its default).
pub(super) fn check_has_server(account: &Account) -> Result<()> {
    if account.smtp_host.is_empty() {
        return Err(Error::invalid(
            "smtp_host",
            "no SMTP server is set for this account",
        ));
    }
    Ok(())
}

/// The user's signature rendered for a mail, None when the tenant has
/// none; its errors refuse the mail.
async fn signature_for(store: &Arc<Store>, tenant: &str, user: &str) -> Result<Option<ForMail>> {
    let (t, u) = (tenant.to_string(), user.to_string());
    let (chosen, employee) = blocking(store, move |s| s.signature_for(&t, &u)).await?;
    let Some(chosen) = chosen else {
        return Ok(None);
    };
    let _permit = signature::PICTURE_WORK
        .acquire()
        .await
        .map_err(|e| Error::storage("signature pictures are shut down", e))?;
    let token = signature::new_cid_token()?;
    let (t, u) = (tenant.to_string(), user.to_string());
    tokio::task::spawn_blocking(move || {
        let who = For {
            tenant: &t,
            user: &u,
        };
        signature::for_mail(&chosen, employee.as_ref(), who, &token)
    })
    .await
    .map_err(|e| Error::storage("rendering the signature failed", e))?
    .map(Some)
}

/// At daemon start, before any delivery: settle the mails a stopped
/// daemon left `sending` ([`policy::after_crash`]) and return every
/// queued mail, soonest first, for the account tasks to schedule.
/// Blocking: run it with the store open, before the tasks start.
pub fn resume(store: &Store, now: i64) -> Result<Vec<Pending>> {
    for p in store.pending_outbox(OutboxState::Sending)? {
        let Some(rec) = store.outbox_record(p.id)? else {
            continue;
        };
        let next = policy::after_crash(&rec, now);
        match store.set_outbox_record(p.id, OutboxState::Sending, &next) {
            Ok(()) | Err(Error::Busy(_) | Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        tracing::warn!(
            id = p.id,
            account_id = %p.account,
            state = next.state.as_str(),
            "outbox mail was being sent when postfachd stopped"
        );
    }
    store.pending_outbox(OutboxState::Queued)
}
