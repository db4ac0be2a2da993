//! `fetch ID`: fetch an account now, with a progress bar.
//!
//! `Account.FetchNow` returns only when the fetch is done, which can take
//! minutes for a mailbox of thousands of mails. While it runs, the account's
//! `Progress (uu)` property (fetched, total) is read every 200 ms and shown
//! with indicatif. Polling rather than PropertiesChanged: a missed or late
//! signal would leave the bar stuck, a poll cannot. The bar is drawn only
//! when stdout is a terminal, so logs and pipes get just the result line.
//! The fetch's warning, if any, follows on stderr (`warning` in JSON).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::commands::{not_found, Ctl};
use super::CtlError;

/// How often the progress is read while FetchNow runs.
const POLL: Duration = Duration::from_millis(200);

impl Ctl {
    /// `fetch ID`: FetchNow, then "N new messages".
    pub async fn fetch(&self, id: &str) -> Result<(), CtlError> {
        let account = self.account(id).await?;
        let bar = (std::io::stdout().is_terminal() && !self.json).then(new_bar);
        let call = account.fetch_now();
        tokio::pin!(call);
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = loop {
            tokio::select! {
                result = &mut call => break result,
                _ = tick.tick(), if bar.is_some() => {
                    // A failed read only skips one update; FetchNow's own
                    // answer decides the outcome.
                    if let (Some(bar), Ok(progress)) = (&bar, account.progress().await) {
                        show(bar, progress);
                    }
                }
            }
        };
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let new = result.map_err(|e| not_found(id, e.into()))?;
        // A fetch that succeeded leaves its warnings (delete on server
        // skipped for lack of UIDPLUS, a mail refused for its size, …) in
        // LastError, set before FetchNow answers; an admin who fetches by
        // hand must see them here, not only in `account show`.
        let warning = account.last_error().await.unwrap_or_default();
        if self.json {
            let mut out = serde_json::json!({ "id": id, "new_messages": new });
            if !warning.is_empty() {
                out["warning"] = serde_json::Value::from(warning);
            }
            println!("{out}");
        } else {
            println!("{}", new_messages(new));
            if !warning.is_empty() {
                eprintln!("warning: {warning}");
            }
        }
        Ok(())
    }
}

/// "1 new message", "3 new messages".
pub fn new_messages(n: u32) -> String {
    if n == 1 {
        "1 new message".to_string()
    } else {
        format!("{n} new messages")
    }
}

/// A spinner until the total is known, then a bar. Drawn on stderr so that
/// stdout holds only the result.
fn new_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} fetching {wide_bar} {pos}/{len} mails ({elapsed})")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// `(fetched, total)` into the bar; a total of 0 means "not known yet".
fn show(bar: &ProgressBar, (done, total): (u32, u32)) {
    if total > 0 {
        bar.set_length(u64::from(total));
    }
    bar.set_position(u64::from(done));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_naturally() {
        assert_eq!(new_messages(0), "0 new messages");
        assert_eq!(new_messages(1), "1 new message");
        assert_eq!(new_messages(3), "3 new messages");
    }

    #[test]
    fn progress_sets_length_only_when_known() {
        let bar = ProgressBar::hidden();
        show(&bar, (0, 0));
        assert_eq!(bar.length(), None);
        show(&bar, (5, 20));
        assert_eq!((bar.position(), bar.length()), (5, Some(20)));
    }
}
