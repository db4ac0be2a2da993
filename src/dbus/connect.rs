//! `Account.Connect(s flow) → a{sv}` and `Account.CompleteConnect(s)`:
//! the Office 365 sign-in as the CRM drives it (docs/OAUTH.md).
//!
//! Both change the account (its tokens), so only admins may call them,
//! like Update and SetPassword. The flows themselves are
//! crate::oauth's; this file checks the call, starts or completes the
//! flow, and restarts the account's task, which then either polls the
//! device sign-in in the background (it outlives this call and survives
//! a daemon restart: the device code is in the store) or, signed in,
//! fetches at once (scheduler::auth).
//!
//! The reply carries what the user needs to sign in and nothing secret:
//! the device code itself stays in the store, and the browser flow's PKCE
//! verifier never leaves the daemon (the URL holds only its hash and the
//! state, RFC 7636 §4.2).

use zbus::Variant;

use super::ctx::Ctx;
use super::wire::Dict;
use crate::account::Account;
use crate::error::{Error, Result};

/// The flows Connect knows.
pub const FLOWS: [&str; 2] = ["device", "browser"];

/// Starts `flow` for `account`; the reply of Connect.
pub async fn connect(ctx: &Ctx, account: &Account, flow: &str) -> Result<Dict> {
    office365_only(account)?;
    let mut reply = Dict::new();
    match flow {
        "device" => {
            let start = ctx.office365.start_device(account).await?;
            reply.insert("verification_uri".into(), start.verification_uri.into());
            reply.insert("user_code".into(), start.user_code.into());
            reply.insert("expires_in".into(), seconds(start.expires_in));
        }
        "browser" => {
            let start = ctx.office365.start_browser(account).await?;
            reply.insert("authorize_url".into(), start.authorize_url.into());
            reply.insert("expires_in".into(), seconds(start.expires_in));
        }
        other => {
            return Err(Error::invalid(
                "flow",
                format!(
                    "{:?} is not a sign-in flow; use one of {FLOWS:?}",
                    cap(other)
                ),
            ))
        }
    }
    // The task picks the new pending sign-in up: it polls a device code,
    // and stops polling one that this Connect replaced.
    ctx.scheduler.reload(&account.id);
    tracing::info!(account_id = %account.id, flow, "Office 365 sign-in started");
    Ok(reply)
}

/// Completes the browser sign-in from the address Microsoft redirected to;
/// on success the account's task restarts and fetches at once, on failure
/// the reason is also the account's `LastError`.
pub async fn complete(ctx: &Ctx, account: &Account, redirect_url: &str) -> Result<()> {
    office365_only(account)?;
    if let Err(e) = ctx.office365.complete_browser(account, redirect_url).await {
        // Microsoft's answer (declined, consent required …) is the
        // account's status too, like a failed device sign-in; a redirect
        // refused as malformed or foreign is only the caller's mistake.
        if !matches!(e, Error::InvalidArgument { .. }) {
            let authorized = ctx
                .office365
                .is_authorized(&account.id)
                .await
                .unwrap_or(false);
            ctx.scheduler.sign_in_failed(&account.id, authorized, &e);
        }
        return Err(e);
    }
    ctx.scheduler.reload(&account.id);
    // Fetch at once, also for an account fetched on demand only; the
    // request reaches the restarted task. Its outcome is the account's
    // status, not this call's.
    let (scheduler, id) = (ctx.scheduler.clone(), account.id.clone());
    tokio::spawn(async move {
        let _ = scheduler.fetch_now(&id).await;
    });
    tracing::info!(account_id = %account.id, "Office 365 sign-in completed");
    Ok(())
}

/// Connect is for Office 365 kinds; the others have a password.
fn office365_only(account: &Account) -> Result<()> {
    if account.kind.is_office365() {
        return Ok(());
    }
    Err(Error::invalid(
        "kind",
        format!(
            "{} accounts sign in with a password (SetPassword); only imap-office365 and \
             pop3-office365 accounts Connect",
            account.kind.as_str()
        ),
    ))
}

/// Seconds as `u` (a code's life is minutes).
fn seconds(s: u64) -> Variant<'static> {
    u32::try_from(s).unwrap_or(u32::MAX).into()
}

/// A caller's word, shortened for an error text.
fn cap(s: &str) -> String {
    s.chars().take(40).collect()
}
