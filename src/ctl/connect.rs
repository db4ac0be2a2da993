//! `account connect ID [--browser]`: the Office 365 sign-in from a shell.
//!
//! Device flow (the default, for an admin on a server without a browser):
//! prints the address and the code to type there, then waits. Browser
//! flow: prints the address to open, reads the address the browser ends
//! on from stdin and hands it to CompleteConnect. Either way the outcome
//! is read from the account's properties every second (polling, as
//! `fetch` does: a missed signal cannot leave it waiting): `Authorized`
//! turning true (or, for an account signed in before, the fetch that
//! follows a new sign-in) is success; a new `LastError` while the account
//! is not fetching is the failure, printed as the daemon words it. A
//! spinner runs on stderr when it is a terminal; otherwise one plain line
//! says that it waits.

use std::io::{BufRead, IsTerminal};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::commands::{not_found, Ctl};
use super::CtlError;
use crate::dbus::proxy::{AccountProxy, Dict};

/// How often the account's properties are read while waiting.
const POLL: Duration = Duration::from_secs(1);
/// Waiting beyond the code's life gives the daemon time to say why.
const GRACE: Duration = Duration::from_secs(30);

/// What the account looked like before Connect.
struct Before {
    authorized: bool,
    last_fetch_at: u64,
    last_error: String,
}

impl Ctl {
    /// `account connect ID [--browser]`.
    pub async fn connect_account(&self, id: &str, browser: bool) -> Result<(), CtlError> {
        let account = self.account(id).await?;
        let before = Before {
            authorized: account
                .authorized()
                .await
                .map_err(|e| not_found(id, e.into()))?,
            last_fetch_at: account.last_fetch_at().await?,
            last_error: account.last_error().await?,
        };
        let flow = if browser { "browser" } else { "device" };
        let info = account
            .connect(flow)
            .await
            .map_err(|e| not_found(id, e.into()))?;
        let life = Duration::from_secs(u64::from(number(&info, "expires_in")));
        if browser {
            eprintln!("Open this address in a browser and sign in:");
            println!("{}", text(&info, "authorize_url"));
            eprintln!("Then paste the address the browser ended on here:");
            let redirect = read_line()?;
            account.complete_connect(redirect.trim()).await?;
        } else {
            println!(
                "To sign in, open {} and enter the code {} (within {} minutes).",
                text(&info, "verification_uri"),
                text(&info, "user_code"),
                life.as_secs().div_ceil(60)
            );
        }
        wait(&account, &before, life + GRACE).await?;
        if self.json {
            println!("{}", serde_json::json!({ "id": id, "authorized": true }));
        } else {
            println!("Signed in; the account fetches now.");
        }
        Ok(())
    }
}

/// Waits until the sign-in succeeded or failed, at most `limit`.
async fn wait(
    account: &AccountProxy<'_>,
    before: &Before,
    limit: Duration,
) -> Result<(), CtlError> {
    let spinner = std::io::stderr().is_terminal().then(spinner);
    if spinner.is_none() {
        eprintln!("waiting for the sign-in …");
    }
    let start = Instant::now();
    let outcome = loop {
        tokio::time::sleep(POLL).await;
        let authorized = account.authorized().await?;
        let last_fetch_at = account.last_fetch_at().await?;
        let state = account.state().await?;
        let last_error = account.last_error().await?;
        if authorized && (!before.authorized || last_fetch_at > before.last_fetch_at) {
            break Ok(());
        }
        let failed = matches!(state.as_str(), "needs-authorization" | "error");
        if failed && !last_error.is_empty() && last_error != before.last_error {
            break Err(CtlError::local(
                if state == "error" {
                    "Authentication"
                } else {
                    "NeedsAuthorization"
                },
                last_error,
            ));
        }
        if start.elapsed() > limit {
            break Err(CtlError::local(
                "NeedsAuthorization",
                "the sign-in was not completed in time; run `account connect` again",
            ));
        }
    };
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    outcome
}

fn spinner() -> ProgressBar {
    let s = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} waiting for the sign-in ({elapsed})")
    {
        s.set_style(style);
    }
    s.enable_steady_tick(Duration::from_millis(100));
    s
}

fn read_line() -> Result<String, CtlError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CtlError::local("InvalidArgument", format!("cannot read stdin: {e}")))?;
    if line.trim().is_empty() {
        return Err(CtlError::usage("no address given"));
    }
    Ok(line)
}

fn text(d: &Dict, key: &str) -> String {
    d.get(key)
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| String::try_from(v).ok())
        .unwrap_or_default()
}

fn number(d: &Dict, key: &str) -> u32 {
    d.get(key)
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0)
}
