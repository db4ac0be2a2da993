//! `Mailbox.DeleteMessage`: the server side first, then the store.
//!
//! On an IMAP account with a Trash folder, a mail whose INBOX server id is
//! still known under the INBOX's current UIDVALIDITY is moved to Trash on
//! the server ([`crate::imap::trash`]). Only when that succeeded is the mail
//! deleted locally, so a broken connection, a wrong password or a missing
//! folder leave everything as it was and the caller can retry — nothing is
//! half-done (DESIGN.md §3). A mail with no known server id (POP3, IMAP
//! without Trash folder, already deleted on the server by delete-on-server,
//! or seen under an older UIDVALIDITY) is deleted locally only.

use super::errors::ApiResult;
use super::mailbox::not_found;
use super::service::Ctx;
use crate::account::Account;
use crate::error::{Error, Result};
use crate::imap::fetch::{SyncState, STATE_KEY};
use crate::imap::uidset;
use crate::store::{MessageMeta, SecretKind, Store};

/// What the server side of a delete needs, read from the store in one go.
struct ServerMove {
    account: Account,
    password: String,
    uid_validity: u32,
    uid: u32,
}

impl std::fmt::Debug for ServerMove {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerMove")
            .field("account", &self.account.id)
            .field("uid_validity", &self.uid_validity)
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

/// Deletes `m` (already checked visible to the caller); see the module docs.
pub async fn delete(ctx: &Ctx, m: &MessageMeta) -> ApiResult<()> {
    let (id, account) = (m.id, m.account.clone());
    let plan = ctx.blocking(move |s| server_move(s, &account, id)).await?;
    if let Some(mv) = plan {
        let tls = ctx.tls()?;
        crate::imap::trash::move_to_trash(
            &mv.account,
            &mv.password,
            &tls,
            &ctx.timeouts,
            mv.uid_validity,
            mv.uid,
        )
        .await?;
    }
    let gone = ctx.blocking(move |s| s.delete_message(id)).await?;
    if gone.is_none() {
        // Deleted by another call meanwhile: to this caller it is gone.
        return Err(not_found(id).into());
    }
    tracing::info!(message = id, account_id = %m.account, "message deleted");
    Ok(())
}

/// The server move to make before deleting message `id`, if any.
fn server_move(s: &Store, account: &str, id: u64) -> Result<Option<ServerMove>> {
    let Some(account) = s.account(account)? else {
        return Ok(None);
    };
    if !account.kind.is_imap() || account.trash_folder.is_empty() {
        return Ok(None);
    }
    let Some(state) = s
        .sync_state(&account.id, STATE_KEY)?
        .as_deref()
        .and_then(SyncState::parse)
    else {
        return Ok(None);
    };
    let prefix = uidset::prefix(state.uidvalidity);
    let Some(uid) = s
        .server_ids(id)?
        .iter()
        .find_map(|sid| uidset::uid_of(sid, &prefix))
    else {
        return Ok(None);
    };
    let password = s
        .secret(&account.id, SecretKind::Password)?
        .ok_or_else(|| {
            Error::Authentication(format!(
                "account {} has no password set, so the mail cannot be moved to its Trash \
                 folder; set the password, or clear trash_folder to delete locally only",
                account.id
            ))
        })?
        .expose()
        .to_string();
    Ok(Some(ServerMove {
        account,
        password,
        uid_validity: state.uidvalidity,
        uid,
    }))
}
