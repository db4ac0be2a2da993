//! `postfachctl backup FILE` and `restore FILE`: the file is opened here
//! and its descriptor passed to the daemon (`Manager.Backup`, `Restore`),
//! so the daemon needs no access to the admin's directories.
//!
//! A backup is written to `FILE.partial` (0600: it holds mail) and renamed
//! to FILE only when the daemon says it is complete, so a failed backup
//! never leaves a FILE that looks whole. A restore replaces every account
//! and mail of the installation: it asks on a terminal, takes `--yes`
//! elsewhere, and refuses without either. The passphrase comes from a file
//! (its first line), never from argv where `ps` would show it.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use zbus::zvariant::Variant;
use zbus::Fd;

use super::commands::Ctl;
use super::password::Secret;
use super::CtlError;
use crate::dbus::proxy::ManagerProxy;

/// The first line of `path`, without its line end.
fn passphrase(path: Option<&Path>) -> Result<Option<Secret>, CtlError> {
    let Some(path) = path else { return Ok(None) };
    let file = std::fs::File::open(path).map_err(|e| {
        CtlError::local(
            "InvalidArgument",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let mut line = String::new();
    std::io::BufReader::new(file)
        .read_line(&mut line)
        .map_err(|e| {
            CtlError::local(
                "InvalidArgument",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        return Err(CtlError::local(
            "InvalidArgument",
            format!("{} holds no passphrase", path.display()),
        ));
    }
    Ok(Some(Secret::new(p)))
}

fn options(p: &Option<Secret>) -> HashMap<&str, Variant<'_>> {
    let mut o = HashMap::new();
    if let Some(p) = p {
        o.insert("passphrase", Variant::from(p.expose()));
    }
    o
}

/// Asks on the terminal; Err without one.
fn confirm(file: &Path) -> Result<(), CtlError> {
    if !std::io::stdin().is_terminal() {
        return Err(CtlError::usage(
            "restore replaces every account and mail of this installation; run it on a terminal \
             to confirm, or pass --yes",
        ));
    }
    print!(
        "Replace every account and mail of this installation by {}? [y/N] ",
        file.display()
    );
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    match answer.trim() {
        "y" | "Y" | "yes" | "j" | "ja" => Ok(()),
        _ => Err(CtlError::local("Cancelled", "nothing was restored")),
    }
}

impl Ctl {
    pub async fn backup(
        &self,
        file: &Path,
        passphrase_file: Option<&Path>,
    ) -> Result<(), CtlError> {
        let p = passphrase(passphrase_file)?;
        let mut partial = file.as_os_str().to_owned();
        partial.push(".partial");
        let partial = std::path::PathBuf::from(partial);
        let out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|e| {
                CtlError::local(
                    "Failed",
                    format!("cannot create {}: {e}", partial.display()),
                )
            })?;
        let manager = ManagerProxy::new(&self.conn).await?;
        if let Err(e) = manager.backup(Fd::from(&out), options(&p)).await {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
        out.sync_all()
            .and_then(|()| std::fs::rename(&partial, file))
            .map_err(|e| {
                CtlError::local("Failed", format!("cannot write {}: {e}", file.display()))
            })?;
        let secrets = p.is_some();
        if self.json {
            println!(
                "{}",
                serde_json::json!({ "file": file.display().to_string(), "secrets": secrets })
            );
        } else if secrets {
            println!(
                "backup written to {} (passwords sealed with the passphrase)",
                file.display()
            );
        } else {
            println!(
                "backup written to {} (no passwords: enter them again after a restore)",
                file.display()
            );
        }
        Ok(())
    }

    pub async fn restore(
        &self,
        file: &Path,
        passphrase_file: Option<&Path>,
        yes: bool,
    ) -> Result<(), CtlError> {
        let p = passphrase(passphrase_file)?;
        let input = std::fs::File::open(file).map_err(|e| {
            CtlError::local(
                "InvalidArgument",
                format!("cannot read {}: {e}", file.display()),
            )
        })?;
        if !yes {
            confirm(file)?;
        }
        let manager = ManagerProxy::new(&self.conn).await?;
        let report = manager.restore(Fd::from(&input), options(&p)).await?;
        let get = |k: &str| report.get(k).and_then(|v| v.try_clone().ok());
        let accounts: Vec<String> = get("accounts")
            .and_then(|v| v.try_into().ok())
            .unwrap_or_default();
        let reset: Vec<String> = get("reset")
            .and_then(|v| v.try_into().ok())
            .unwrap_or_default();
        let messages: u64 = get("messages")
            .and_then(|v| v.try_into().ok())
            .unwrap_or_default();
        let secrets: bool = get("secrets")
            .and_then(|v| v.try_into().ok())
            .unwrap_or_default();
        let held: u64 = get("held")
            .and_then(|v| v.try_into().ok())
            .unwrap_or_default();
        if self.json {
            println!(
                "{}",
                serde_json::json!({ "accounts": accounts, "reset": reset, "messages": messages, "secrets": secrets, "held": held })
            );
            return Ok(());
        }
        println!(
            "restored {} accounts and {messages} messages",
            accounts.len()
        );
        if !reset.is_empty() {
            println!(
                "delete-on-server switched off for {} (set delete_on_server again to re-enable)",
                reset.join(", ")
            );
        }
        if held > 0 {
            println!(
                "{held} outbox mails not sent from here (the original installation sends them); \
                 they are failed and can be sent again"
            );
        }
        if !secrets {
            println!("no passwords restored: set them with `postfachctl account passwd ID`");
        }
        Ok(())
    }
}
