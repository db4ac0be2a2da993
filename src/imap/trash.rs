//! Moving one INBOX mail into the account's Trash folder on the server, for
//! `Mailbox.DeleteMessage` (DESIGN.md §3).
//!
//! How, in order of preference:
//! - `UID MOVE` (RFC 6851) when the server offers MOVE: atomic, nothing is
//!   left behind even if the connection breaks.
//! - `UID COPY`, then `UID STORE +FLAGS.SILENT (\Deleted)` and `UID EXPUNGE`
//!   of that one UID (RFC 4315 §2.1, needs UIDPLUS). A bare `EXPUNGE` is
//!   never sent: it would also remove every mail other clients flagged
//!   `\Deleted` (the same rule as delete-on-server in [`super::fetch`]).
//! - Without UIDPLUS only the copy is made; the original stays in INBOX and
//!   the journal says so.
//!
//! A Trash folder that does not exist is `FolderUnknown`: the server answers
//! COPY/MOVE with `NO [TRYCREATE]` (RFC 3501 §6.4.7) and we never create the
//! folder on our own — a typo in the settings must not grow a new folder.
//! UIDs are only meaningful under the UIDVALIDITY they were seen with
//! (RFC 3501 §2.3.1.1); if the INBOX's UIDVALIDITY changed since, the UID
//! names nothing we know and nothing is touched on the server.

use futures::StreamExt;

use super::session::{self, imap_error, server_text, timed, Caps, Session};
use crate::account::Account;
use crate::error::{Error, Result};
use crate::net::{Timeouts, TlsContext};

/// How a server lets us move one mail, decided from its capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// `UID MOVE` (RFC 6851).
    Move,
    /// `UID COPY` + `UID STORE \Deleted` + `UID EXPUNGE` (RFC 4315).
    CopyAndExpunge,
    /// `UID COPY` only: without UIDPLUS the original must stay.
    CopyOnly,
}

impl Plan {
    pub fn for_caps(caps: &Caps) -> Plan {
        Plan::choose(caps.has("MOVE"), caps.has("UIDPLUS"))
    }

    fn choose(has_move: bool, has_uidplus: bool) -> Plan {
        if has_move {
            Plan::Move
        } else if has_uidplus {
            Plan::CopyAndExpunge
        } else {
            Plan::CopyOnly
        }
    }
}

/// Journal text when the server lacks both MOVE and UIDPLUS.
pub const COPY_ONLY: &str = "the server offers neither MOVE nor UIDPLUS: the mail was copied \
     to the Trash folder and the original left in INBOX, because a plain EXPUNGE could remove \
     other clients' deleted mail";

/// Moves INBOX mail `uid` (seen under `uid_validity`) into
/// `account.trash_folder`; see the module docs. Errors: `FolderUnknown`
/// when the folder does not exist on the server, otherwise what opening the
/// session or the commands fail with (`Connection`, `Tls`, `Authentication`).
/// On any error the caller keeps the mail locally.
pub async fn move_to_trash(
    account: &Account,
    password: &str,
    tls: &TlsContext,
    t: &Timeouts,
    uid_validity: u32,
    uid: u32,
) -> Result<()> {
    if account.trash_folder.is_empty() {
        return Err(Error::FolderUnknown(format!(
            "account {} has no Trash folder set",
            account.id
        )));
    }
    let mut session = session::open(account, password, tls, t).await?;
    let result = run(&mut session, account, t, uid_validity, uid).await;
    if result.is_ok() {
        session::logout(session, t).await;
    }
    result
}

async fn run(
    session: &mut Session,
    account: &Account,
    t: &Timeouts,
    uid_validity: u32,
    uid: u32,
) -> Result<()> {
    let host = account.host.as_str();
    let trash = account.trash_folder.as_str();
    let caps = Caps::of_session(session, t, host).await?;
    let mailbox = timed(t, host, "selecting INBOX", async {
        session
            .select("INBOX")
            .await
            .map_err(|e| imap_error(host, "SELECT INBOX", e))
    })
    .await?;
    if mailbox.uid_validity != Some(uid_validity) {
        tracing::warn!(
            account_id = %account.id,
            host,
            known = uid_validity,
            now = ?mailbox.uid_validity,
            "INBOX UIDVALIDITY changed: the deleted mail cannot be identified on the server \
             and stays there"
        );
        return Ok(());
    }
    let set = uid.to_string();
    let plan = Plan::for_caps(&caps);
    match plan {
        Plan::Move => {
            let what = format!("moving the mail to {trash:?} (UID MOVE)");
            timed(t, host, &what, async {
                session
                    .uid_mv(&set, trash)
                    .await
                    .map_err(|e| folder_error(host, trash, &what, e))
            })
            .await?;
        }
        Plan::CopyAndExpunge | Plan::CopyOnly => {
            let what = format!("copying the mail to {trash:?} (UID COPY)");
            timed(t, host, &what, async {
                session
                    .uid_copy(&set, trash)
                    .await
                    .map_err(|e| folder_error(host, trash, &what, e))
            })
            .await?;
        }
    }
    match plan {
        Plan::Move => {}
        Plan::CopyAndExpunge => expunge_one(session, t, host, &set).await?,
        Plan::CopyOnly => {
            tracing::warn!(account_id = %account.id, host, "{COPY_ONLY}");
        }
    }
    tracing::info!(account_id = %account.id, uid, ?plan, "mail moved to the Trash folder on the server");
    Ok(())
}

/// `UID STORE +FLAGS.SILENT (\Deleted)` and `UID EXPUNGE` of exactly `set`
/// (RFC 4315 §2.1).
async fn expunge_one(session: &mut Session, t: &Timeouts, host: &str, set: &str) -> Result<()> {
    let what = "flagging the original \\Deleted (UID STORE)";
    timed(t, host, what, async {
        let stream = session
            .uid_store(set, "+FLAGS.SILENT (\\Deleted)")
            .await
            .map_err(|e| imap_error(host, what, e))?;
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            item.map_err(|e| imap_error(host, what, e))?;
        }
        Ok(())
    })
    .await?;
    let what = "removing the original (UID EXPUNGE)";
    timed(t, host, what, async {
        let stream = session
            .uid_expunge(set)
            .await
            .map_err(|e| imap_error(host, what, e))?;
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            item.map_err(|e| imap_error(host, what, e))?;
        }
        Ok(())
    })
    .await
}

/// A refused COPY/MOVE with `[TRYCREATE]` (RFC 3501 §6.4.7) or
/// `[NONEXISTENT]` (RFC 5530) means the folder is missing: FolderUnknown.
fn folder_error(host: &str, folder: &str, what: &str, e: async_imap::error::Error) -> Error {
    if let async_imap::error::Error::No(text) = &e {
        if is_missing_folder(text) {
            return Error::FolderUnknown(format!(
                "{host}: the Trash folder {folder:?} does not exist on the server ({}); \
                 run SyncFolders and choose an existing folder",
                server_text(text)
            ));
        }
    }
    imap_error(host, what, e)
}

/// Whether async-imap's rendering of a NO reply carries a missing-mailbox code.
fn is_missing_folder(rendered: &str) -> bool {
    rendered.contains("TryCreate") || rendered.to_ascii_uppercase().contains("NONEXISTENT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_prefers_move_then_uidplus() {
        assert_eq!(Plan::choose(true, true), Plan::Move);
        assert_eq!(Plan::choose(true, false), Plan::Move);
        assert_eq!(Plan::choose(false, true), Plan::CopyAndExpunge);
        assert_eq!(Plan::choose(false, false), Plan::CopyOnly);
        assert_eq!(Plan::for_caps(&Caps::default()), Plan::CopyOnly);
    }

    #[test]
    fn missing_folder_codes_are_recognised() {
        assert!(is_missing_folder(
            r#"code: Some(TryCreate), info: Some("Mailbox doesn't exist: Trash")"#
        ));
        assert!(is_missing_folder(
            r#"code: None, info: Some("[NONEXISTENT] Unknown Mailbox: Trash")"#
        ));
        assert!(!is_missing_folder(
            r#"code: None, info: Some("Permission denied")"#
        ));
    }
}
