//! Folder settings against the server's folders: `Account.SyncFolders`
//! (run by the account's task, scheduler `folders`) and the rule that a
//! Drafts, Trash or Sent folder set by `Update` must be one the last sync
//! listed — else `FolderUnknown`, "synchronize the folders first": a typo
//! would otherwise surface only when the first mail is sent or deleted.
//!
//! CreateAccount is not held to the rule: a new account has never been
//! synchronized, and an admin who knows the server's names may give them
//! at once; the first APPEND or move into a missing folder is
//! `FolderUnknown` then. Clearing a folder ("") is always allowed.

use crate::account::{Account, SettingValue};
use crate::error::{Error, Result};

/// The folder settings keys.
const FOLDER_KEYS: [&str; 3] = ["drafts_folder", "trash_folder", "sent_folder"];

/// SyncFolders is for IMAP accounts only.
pub fn check_imap(a: &Account) -> Result<()> {
    if a.kind.is_imap() {
        return Ok(());
    }
    Err(Error::invalid(
        "kind",
        "a POP3 account has no folders on the server to synchronize",
    ))
}

/// Every folder that `changes` sets must be among `cur.folders` (module
/// docs). Runs after the settings' own checks, so a POP3 account's folder
/// settings are InvalidArgument before this.
pub fn check_known(cur: &Account, changes: &[(String, SettingValue)]) -> Result<()> {
    for (key, value) in changes {
        let (true, SettingValue::Str(name)) = (FOLDER_KEYS.contains(&key.as_str()), value) else {
            continue;
        };
        if name.is_empty() || cur.folders.iter().any(|f| f == name) {
            continue;
        }
        let why = if cur.folders_synced_at == 0 {
            "the account's folders were never synchronized".to_string()
        } else {
            format!("the last folder sync did not list {name:?}")
        };
        return Err(Error::FolderUnknown(format!(
            "{key}: {why}; synchronize the folders first (SyncFolders) and choose one of them"
        )));
    }
    Ok(())
}

/// Whether the settings the account's task works with changed. The folder
/// list counts: the task decides a failed Trash move by it
/// (`imap::folders::by_folder_list`), so a task that kept the list from
/// before a SyncFolders reported Cyrus' and Courier's refusal of `Trash`
/// without naming `INBOX.Trash` (or as a Connection error, Courier).
pub fn task_settings_changed(before: &Account, after: &Account) -> bool {
    (
        &before.drafts_folder,
        &before.trash_folder,
        &before.sent_folder,
        &before.folders,
    ) != (
        &after.drafts_folder,
        &after.trash_folder,
        &after.sent_folder,
        &after.folders,
    )
}
