//! `folders sync ID` (Account.SyncFolders: list the server's folders,
//! propose Drafts/Trash/Sent from their special use) and `folders show ID`
//! (what the last sync listed, and the folders the account uses).

use clap::Subcommand;

use super::commands::{not_found, Ctl};
use super::CtlError;

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum FoldersCommand {
    /// List the server's folders now (IMAP accounts) and print them.
    Sync {
        /// Account id.
        id: String,
    },
    /// Print the folders of the last sync and the Drafts/Trash/Sent folders.
    Show {
        /// Account id.
        id: String,
    },
}

impl Ctl {
    pub async fn folders(&self, cmd: FoldersCommand) -> Result<(), CtlError> {
        match cmd {
            FoldersCommand::Sync { id } => {
                let account = self.account(&id).await?;
                account
                    .sync_folders()
                    .await
                    .map_err(|e| not_found(&id, e.into()))?;
                self.show_folders(&id).await
            }
            FoldersCommand::Show { id } => self.show_folders(&id).await,
        }
    }

    async fn show_folders(&self, id: &str) -> Result<(), CtlError> {
        let a = self.account(id).await?;
        let nf = |e: zbus::Error| not_found(id, e.into());
        let folders = a.folders().await.map_err(nf)?;
        let synced = a.folders_synced_at().await.map_err(nf)?;
        let drafts = a.drafts_folder().await.map_err(nf)?;
        let trash = a.trash_folder().await.map_err(nf)?;
        let sent = a.sent_folder().await.map_err(nf)?;
        let copy = a.save_sent_copy().await.map_err(nf)?;
        if self.json {
            let v = serde_json::json!({
                "folders": folders, "folders_synced_at": synced,
                "drafts_folder": drafts, "trash_folder": trash,
                "sent_folder": sent, "save_sent_copy": copy,
            });
            println!("{v}");
            return Ok(());
        }
        if synced == 0 {
            println!("never synchronized (postfachctl folders sync {id})");
        }
        for f in &folders {
            let mut uses = Vec::new();
            for (name, what) in [(&drafts, "drafts"), (&trash, "trash"), (&sent, "sent")] {
                if name == f {
                    uses.push(what);
                }
            }
            if uses.is_empty() {
                println!("{f}");
            } else {
                println!("{f}\t({})", uses.join(", "));
            }
        }
        println!("Sent copy: {}", if copy { "on" } else { "off" });
        Ok(())
    }
}
