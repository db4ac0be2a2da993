//! One delivery attempt of an outbox mail (the request an account's task
//! runs): log in, send, and record each step durably before the next, so
//! that a crash between steps is settled by [`super::queue::resume`] and
//! a mail is never sent twice by a retry that did not know the first
//! attempt was accepted (see [`super::policy`] for the states).

use std::sync::Arc;

use super::office365;
use super::policy;
use super::queue::{blocking, check_has_server, unix_now};
use super::smtp::{self, Failure, Login, Server, Session};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::net::{Timeouts, TlsContext};
use crate::oauth::Office365;
use crate::store::{OutboxRecord, OutboxState, SecretKind, Store};

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
