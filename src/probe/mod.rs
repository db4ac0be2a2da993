//! Connection test, step by step (ARCHITECTURE.md "What it does" [Verbindungsdaten prüfen]).
//!
//! Each step is run on its own and reported with its time, so an admin sees
//! exactly where it broke: resolve, connect, TLS (or STARTTLS) with the
//! greeting, login, open inbox; then SMTP connect, STARTTLS, SMTP auth. A
//! failed step ends its part of the test (the later steps could only fail
//! for the same reason); the SMTP part runs even when the incoming part
//! failed, since it is a different server. Nothing here writes the store.

mod incoming;
mod smtp;

use std::future::Future;
use std::time::Instant;

use crate::account::Account;
use crate::error::Result;
use crate::net::{Timeouts, TlsContext};
use crate::redact::Scrubber;

/// One step of a connection test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What was tried: `resolve`, `connect`, `tls`, `greeting`, `login`, …
    pub name: String,
    pub ok: bool,
    /// What happened, in words an admin understands.
    pub message: String,
    pub millis: u32,
}

/// The steps so far. Every message is cleaned by `scrub` before it is
/// kept: servers and resolvers put their own words into it, and a server
/// that refuses a login may repeat the password (crate::redact).
#[derive(Default)]
pub struct Report {
    pub steps: Vec<Step>,
    scrub: Scrubber,
}

impl Report {
    /// Run one step; `Some(value)` when it succeeded.
    pub async fn step<T>(
        &mut self,
        name: &str,
        fut: impl Future<Output = Result<T>>,
        describe: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        let start = Instant::now();
        let result = fut.await;
        let millis = u32::try_from(start.elapsed().as_millis()).unwrap_or(u32::MAX);
        let (ok, message, value) = match result {
            Ok(v) => (true, self.scrub.clean(&describe(&v)), Some(v)),
            Err(e) => (false, self.scrub.clean(&e.to_string()), None),
        };
        self.steps.push(Step {
            name: name.to_string(),
            ok,
            message,
            millis,
        });
        value
    }

    pub fn all_ok(&self) -> bool {
        self.steps.iter().all(|s| s.ok)
    }
}

/// Secrets the test may use; `None` = not set (the login step says so).
pub struct Secrets<'a> {
    pub password: Option<&'a str>,
    pub smtp_password: Option<&'a str>,
    /// Office 365 kinds: the access token of the account's sign-in, which
    /// every login step uses with XOAUTH2 instead of a password; or why
    /// there is none (not connected, a dead grant), which those steps show.
    pub token: std::result::Result<&'a str, &'a crate::error::Error>,
}

/// What an Office 365 login step shows when no sign-in gave a token (an
/// unsaved account, TestSettings).
pub const NOT_CONNECTED: &str =
    "Office 365 accounts log in with their sign-in, not a password: save the account and Connect";

/// The secret a login step uses: for Office 365 kinds the token (or the
/// reason there is none), else `password` (or "none set").
fn credential<'a>(
    a: &Account,
    secrets: &Secrets<'a>,
    password: Option<&'a str>,
    none: impl FnOnce() -> crate::error::Error,
) -> Result<&'a str> {
    if a.kind.is_office365() {
        return secrets.token.map_err(Clone::clone);
    }
    password.ok_or_else(none)
}

/// Test an account's incoming server and, when it has one, its SMTP server.
pub async fn test(
    account: &Account,
    secrets: &Secrets<'_>,
    tls: &TlsContext,
    t: &Timeouts,
) -> Vec<Step> {
    let mut report = Report {
        steps: Vec::new(),
        scrub: Scrubber::new(
            &[
                secrets.password.unwrap_or_default(),
                secrets.smtp_password.unwrap_or_default(),
                secrets.token.unwrap_or_default(),
            ],
            &account.username,
        ),
    };
    let incoming = credential(account, secrets, secrets.password, incoming::no_password);
    if account.kind.is_imap() {
        incoming::imap(&mut report, account, incoming, tls, t).await;
    } else {
        incoming::pop3(&mut report, account, incoming, tls, t).await;
    }
    if !account.smtp_host.is_empty() {
        let password = secrets.smtp_password.or(secrets.password);
        let secret = credential(account, secrets, password, smtp::no_password);
        smtp::test(&mut report, account, secret, tls, t).await;
    }
    report.steps
}
