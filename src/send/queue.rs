//! The outbox driver: queueing a mail (SendMessage) and delivering one
//! (the request an account's task runs), and resuming after a restart.
//!
//! [`queue_mail`] does everything that can refuse the mail *before* it is
//! queued: the message keys, the mail it answers, the signature (an
//! unknown placeholder, a missing picture or no linked employee refuses
//! the mail with that error, so raw placeholders never go out), composing.
//! Then the outbox entry is committed, and from then on the mail is the
//! queue's. [`deliver`] runs one attempt and records each step durably
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
use super::office365;
use super::policy;
use super::smtp::{self, Failure, Login, Server, Session};
use super::thread::Parent;
use crate::account::Account;
use crate::error::{Error, Result};
use crate::net::{Timeouts, TlsContext};
use crate::oauth::Office365;
use crate::signature::{self, For, ForMail};
use crate::store::{OutboxRecord, OutboxState, Pending, SecretKind, Store, Visibility};

/// Unix seconds now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Run a blocking store call on the blocking pool.
async fn blocking<T: Send + 'static>(
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
fn check_has_server(account: &Account) -> Result<()> {
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

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the server; its reply (capped).
    Sent(String),
    /// Queued again; the next attempt is due at this time (Unix seconds).
    Retry(i64, String),
    /// Queued again like `Retry`, because the account's Office 365
    /// sign-in cannot send (no tokens, a dead grant, or tokens the server
    /// refuses): the account needs Connect (`super::office365`).
    Unauthorized(i64, String),
    /// Failed for good; the error.
    Failed(String),
    /// Not attempted: no such outbox mail, or not `queued` (sent, failed,
    /// cancelled or being sent).
    Skipped,
}

/// Where deliveries go: the TLS trust and the timeouts of the daemon,
/// and the Office 365 sign-in that gives Office 365 accounts their
/// XOAUTH2 tokens (None: such accounts' mail stays queued).
#[derive(Debug, Clone)]
pub struct Transport {
    pub tls: TlsContext,
    pub timeouts: Timeouts,
    pub office365: Option<Arc<Office365>>,
}

/// One delivery attempt of outbox mail `id`, whether or not it is due
/// yet (the caller schedules). Every state change is recorded before the
/// next step; Err only when the store fails.
pub async fn deliver(store: &Arc<Store>, transport: &Transport, id: u64) -> Result<Outcome> {
    let Some(rec) = blocking(store, move |s| s.outbox_record(id)).await? else {
        return Ok(Outcome::Skipped);
    };
    if rec.state != OutboxState::Queued {
        return Ok(Outcome::Skipped);
    }
    let acct = rec.account.clone();
    let (account, raw) = blocking(store, move |s| Ok((s.account(&acct)?, s.raw(id)?))).await?;
    let (Some(account), Some(raw)) = (account, raw) else {
        let why = "the account or the mail was deleted before the mail was sent";
        let failed = OutboxRecord {
            state: OutboxState::Failed,
            error: why.into(),
            done_at: unix_now(),
            ..rec
        };
        return record(store, id, OutboxState::Queued, failed).await;
    };
    let sending = policy::start(&rec, unix_now());
    if !cas(store, id, OutboxState::Queued, &sending).await? {
        return Ok(Outcome::Skipped);
    }
    match attempt(store, transport, &account, &sending, id, &raw).await {
        Ok((session, reply)) => {
            // The acceptance first (module docs of policy), then QUIT.
            let sent = policy::accepted(&sending, unix_now());
            let outcome = record(store, id, OutboxState::Sending, sent).await;
            session.quit().await;
            outcome.map(|_| Outcome::Sent(reply))
        }
        Err(AttemptError::Store(e, rec)) => {
            let f = Failure::Transient(e.clone());
            let _ = record(
                store,
                id,
                OutboxState::Sending,
                policy::after_failure(&rec, unix_now(), &f),
            )
            .await;
            Err(e)
        }
        Err(AttemptError::Smtp(f, rec)) => {
            let next = policy::after_failure(&rec, unix_now(), &f);
            let outcome = record(store, id, OutboxState::Sending, next).await?;
            Ok(match (outcome, f) {
                (Outcome::Retry(at, e), Failure::Transient(Error::NeedsAuthorization(_))) => {
                    Outcome::Unauthorized(at, e)
                }
                (outcome, _) => outcome,
            })
        }
    }
}

enum AttemptError {
    /// The store failed while the mail was being sent; the record as it
    /// was last written.
    Store(Error, OutboxRecord),
    Smtp(Failure, OutboxRecord),
}

/// Session, envelope, the durable body mark, the body.
async fn attempt(
    store: &Arc<Store>,
    transport: &Transport,
    account: &Account,
    sending: &OutboxRecord,
    id: u64,
    raw: &[u8],
) -> std::result::Result<(Session, String), AttemptError> {
    let smtp_err = |f| AttemptError::Smtp(f, sending.clone());
    // Checked when queued too; an admin may have cleared it since. Transient:
    // the mail goes once the server is set again.
    check_has_server(account).map_err(|e| smtp_err(Failure::Transient(e)))?;
    let server = Server {
        account,
        tls: &transport.tls,
        timeouts: transport.timeouts,
    };
    let mut session = if account.kind.is_office365() && account.smtp_login {
        office365::open(&server, transport.office365.as_deref()).await
    } else {
        open_with_password(store, &server)
            .await
            .map_err(|e| AttemptError::Store(e, sending.clone()))?
    }
    .map_err(smtp_err)?;
    let from = sending.from.parse().map_err(|_| {
        smtp_err(Failure::Permanent(Error::invalid(
            "address",
            "not an e-mail address",
        )))
    })?;
    let rcpt = sending
        .rcpt
        .iter()
        .map(|r| r.parse())
        .collect::<std::result::Result<Vec<lettre::Address>, _>>()
        .map_err(|_| {
            smtp_err(Failure::Permanent(Error::invalid(
                "to",
                "not an e-mail address",
            )))
        })?;
    session
        .envelope(&from, &rcpt, raw)
        .await
        .map_err(smtp_err)?;
    let marked = policy::body_started(sending);
    match cas(store, id, OutboxState::Sending, &marked).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(AttemptError::Store(
                Error::Busy(format!("outbox mail {id} changed while it was being sent")),
                sending.clone(),
            ))
        }
        Err(e) => return Err(AttemptError::Store(e, sending.clone())),
    }
    match session.body(raw).await {
        Ok(a) => Ok((session, a.reply)),
        Err(f) => Err(AttemptError::Smtp(f, marked)),
    }
}

/// A session logged in with the account's SMTP password (else its
/// password), or without a login when `smtp_login` is off. The outer
/// error is the store's, the inner one the session's.
async fn open_with_password(
    store: &Arc<Store>,
    server: &Server<'_>,
) -> Result<std::result::Result<Session, Failure>> {
    let account = server.account;
    if !account.smtp_login {
        return Ok(Session::open(server, &Login::None).await);
    }
    let a = account.id.clone();
    let secret = blocking(store, move |s| {
        Ok(match s.secret(&a, SecretKind::SmtpPassword)? {
            Some(p) => Some(p),
            None => s.secret(&a, SecretKind::Password)?,
        })
    })
    .await?;
    let Some(password) = secret else {
        return Ok(Err(Failure::Transient(Error::Authentication(
            "no SMTP password is set for this account".into(),
        ))));
    };
    let login = Login::Password {
        user: smtp::login_user(account),
        password: &password,
    };
    Ok(Session::open(server, &login).await)
}

/// Compare-and-set; false when another writer changed the state first.
async fn cas(store: &Arc<Store>, id: u64, expect: OutboxState, new: &OutboxRecord) -> Result<bool> {
    let new = new.clone();
    match blocking(store, move |s| s.set_outbox_record(id, expect, &new)).await {
        Ok(()) => Ok(true),
        Err(Error::Busy(_) | Error::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Write `next` and say what it means.
async fn record(
    store: &Arc<Store>,
    id: u64,
    expect: OutboxState,
    next: OutboxRecord,
) -> Result<Outcome> {
    let outcome = match next.state {
        OutboxState::Sent => Outcome::Sent(String::new()),
        OutboxState::Queued => Outcome::Retry(next.next_at, next.error.clone()),
        OutboxState::Failed => Outcome::Failed(next.error.clone()),
        OutboxState::Sending => Outcome::Skipped,
    };
    if cas(store, id, expect, &next).await? {
        Ok(outcome)
    } else {
        Ok(Outcome::Skipped)
    }
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
