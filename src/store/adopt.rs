//! Recognising mails by their header key (super::digest) without their
//! bytes: for a server that renumbers its UIDs in every session
//! (imap::unstable), the new server ids of mails already stored — or
//! deleted in the CRM — are mapped without downloading them again.

use super::account_row::{account_in, no_account};
use super::content::Content;
use super::digest::AMBIGUOUS;
use super::meta::TOMBSTONE;
use super::schema::MESSAGE_SIDS;
use super::server_ids::ServerIds;
use super::Store;
use crate::error::{Context, Result};

impl Store {
    /// Maps every `(server id, header key)` of `account` whose header key
    /// names one stored mail to it (a deleted one's to the tombstone, so it
    /// stays deleted), all in one transaction. Returns the server ids that
    /// were not mapped: unknown keys, keys of two different mails — those
    /// must be downloaded and recognised by their mail key. NotFound if the
    /// account was deleted.
    pub fn adopt_by_header(
        &self,
        account: &str,
        pairs: &[(String, String)],
    ) -> Result<Vec<String>> {
        self.call("recognise mails by header", || {
            let tx = self.write()?;
            if account_in(&tx, account)?.is_none() {
                return Err(no_account(account));
            }
            let mut unknown = Vec::new();
            {
                let content = Content::open(&tx)?;
                let mut sids = ServerIds::open(&tx)?;
                let mut back = tx.open_table(MESSAGE_SIDS).context("open server ids")?;
                for (sid, key) in pairs {
                    let id = content.get(account, key)?;
                    match id {
                        None | Some(AMBIGUOUS) => unknown.push(sid.clone()),
                        Some(id) => {
                            sids.insert(account, sid, id)?;
                            if id != TOMBSTONE {
                                back.insert((id, sid.as_str()), ())
                                    .context("write server ids")?;
                            }
                        }
                    }
                }
                sids.finish()?;
            }
            tx.commit().context("commit recognised mails")?;
            Ok(unknown)
        })
    }
}

#[cfg(test)]
mod tests;
