//! SyncFolders on the account's task: `LIST "" "*"` on its kept IMAP
//! connection (`imap::Connection::list_folders`), and the result stored as
//! the account's `Folders` and `FoldersSyncedAt`.
//!
//! Only selectable folders are stored (a `\Noselect` level holds no mail,
//! so no folder setting may name it). A Drafts, Trash or Sent folder that
//! is not set yet is proposed from the server's RFC 6154 special use
//! (`\Drafts`, `\Trash`, `\Sent`; the first one listed wins), a Trash
//! also by name (`INBOX.Trash` on Courier, imap::proposal); a folder the
//! admin has set is never changed, even when the server no longer lists
//! it — the next APPEND or move then says `FolderUnknown` — except a Trash
//! the server lacks under its namespace's name (`Trash` -> `INBOX.Trash`). `SaveSentCopy`
//! stays as the admin set it. POP3 accounts have no folders: their
//! SyncFolders is refused before it gets here.

use std::future::Future;

use super::worker::{no_password, Slot, Work, Worker};
use super::{Handle, Request};
use crate::account::Account;
use crate::account::SecretChanges;
use crate::error::{Error, Result};
use crate::fetch::blocking;
use crate::imap::{Connection, Folder};
use crate::send::queue::unix_now;

impl Handle {
    /// Lists the account's folders on its task and stores them; resolves
    /// with the names stored.
    pub async fn sync_folders(&self, account: &str) -> Result<Vec<String>> {
        self.ask(account, Request::SyncFolders).await
    }
}

/// The sync (module docs), on `kept` or a new connection.
pub(super) async fn sync(
    me: &Worker,
    kept: Option<Connection>,
) -> (Result<Vec<String>>, Option<Connection>) {
    let a = &me.account;
    if !a.kind.is_imap() {
        let e = Error::invalid("kind", "a POP3 account has no folders to synchronize");
        return (Err(e), kept);
    }
    let (r, back) = me
        .on_connection(kept, &Slot::new(None), &no_password, &List)
        .await;
    let folders = match r {
        Ok(f) => f,
        Err(e) => return (Err(e), back),
    };
    let store = &me.rt.store;
    let synced = unix_now().max(0).unsigned_abs();
    let stored = blocking(|| {
        store.update_account(&a.id, |cur| {
            Ok((
                synced_account(cur, &folders, synced),
                SecretChanges::default(),
            ))
        })
    });
    match stored {
        Ok(account) => {
            tracing::info!(account_id = %a.id, folders = account.folders.len(), "folders synchronized");
            (Ok(account.folders), back)
        }
        Err(e) => (Err(e), back),
    }
}

/// `cur` with the listed folders, the sync time and the proposed folders.
fn synced_account(cur: &Account, listed: &[Folder], at: u64) -> Account {
    let mut next = cur.clone();
    next.folders = listed
        .iter()
        .filter(|f| f.selectable)
        .map(|f| f.name.clone())
        .collect();
    next.folders_synced_at = at;
    let proposed = |want: &str| {
        listed
            .iter()
            .find(|f| f.selectable && f.special_use == want)
            .map(|f| f.name.clone())
    };
    for (setting, use_) in [
        (&mut next.drafts_folder, "\\Drafts"),
        (&mut next.sent_folder, "\\Sent"),
    ] {
        if setting.is_empty() {
            if let Some(name) = proposed(use_) {
                *setting = name;
            }
        }
    }
    // Trash also by name, and a missing namesake replaced (imap::proposal).
    next.trash_folder = crate::imap::proposal::trash_setting(&cur.trash_folder, listed);
    next
}

/// `LIST "" "*"`.
struct List;

impl Work for List {
    type Out = Vec<Folder>;
    fn run<'c>(
        &'c self,
        c: &'c mut Connection,
    ) -> impl Future<Output = Result<Vec<Folder>>> + Send + 'c {
        c.list_folders()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, special_use: &'static str, selectable: bool) -> Folder {
        Folder {
            name: name.into(),
            special_use,
            selectable,
        }
    }

    #[test]
    fn unset_folders_are_proposed_and_set_ones_kept() {
        use crate::account::SettingValue;
        let s = |k: &str, v: &str| (k.to_string(), SettingValue::Str(v.to_string()));
        let settings = [
            s("kind", "imap"),
            s("host", "imap.example.test"),
            s("address", "a@example.test"),
            s("tenant", "t1"),
            s("trash_folder", "Papierkorb"),
        ];
        let (cur, _) = Account::create("a1".into(), &settings).unwrap();
        let listed = [
            folder("INBOX", "", true),
            folder("Archiv", "", false),
            folder("Entwürfe", "\\Drafts", true),
            folder("Trash", "\\Trash", true),
            folder("Sent", "\\Sent", true),
            folder("Sent2", "\\Sent", true),
        ];
        let next = synced_account(&cur, &listed, 7);
        assert_eq!(
            next.folders,
            ["INBOX", "Entwürfe", "Trash", "Sent", "Sent2"]
        );
        assert_eq!(next.folders_synced_at, 7);
        assert_eq!(next.drafts_folder, "Entwürfe");
        assert_eq!(next.trash_folder, "Papierkorb", "an admin's choice stays");
        assert_eq!(next.sent_folder, "Sent", "the first listed wins");
    }
}
