//! What was fetched from where: server ids, content hashes and the
//! fetchers' resume points.
//!
//! Server ids are opaque strings chosen by the fetchers (`pop3:<uidl>`,
//! `imap:INBOX:<uidvalidity>:<uid>`); a prefix query gives the ids of one
//! mailbox generation, so a UIDVALIDITY change never makes a fetcher act on
//! UIDs of an old generation (ARCHITECTURE.md "Invariants", 2).

use std::collections::HashSet;

use redb::{ReadableTable, WriteTransaction};

use super::account_row::{account_in, no_account};
use super::schema::{MESSAGE_SIDS, SYNC};
use super::server_ids::ServerIds;
use super::Store;
use crate::error::Context;
use crate::error::Result;

/// Remove and return the server ids mapped to message `id` (the reverse
/// map only; the caller removes the `server_ids` rows).
pub(super) fn take_message_sids(tx: &WriteTransaction, id: u64) -> Result<Vec<String>> {
    let mut t = tx.open_table(MESSAGE_SIDS).context("open server ids")?;
    let mut sids = Vec::new();
    for row in t.range((id, "")..).context("read server ids")? {
        let (k, _) = row.context("read server ids")?;
        let (mid, sid) = k.value();
        if mid != id {
            break;
        }
        sids.push(sid.to_string());
    }
    for sid in &sids {
        t.remove((id, sid.as_str())).context("remove server id")?;
    }
    Ok(sids)
}

/// Build the message -> server ids map from the server ids (migration).
pub(super) fn rebuild_message_sids(tx: &WriteTransaction) -> Result<()> {
    let mut back = tx.open_table(MESSAGE_SIDS).context("open server ids")?;
    super::server_ids::each(tx, |sid, id| {
        back.insert((id, sid), ()).context("write server ids")?;
        Ok(())
    })
}

impl Store {
    /// Server ids of the account that start with `prefix` (e.g. the current
    /// `imap:INBOX:<uidvalidity>:`), to decide what to fetch.
    pub fn known_server_ids(&self, account: &str, prefix: &str) -> Result<HashSet<String>> {
        self.call("read server ids", || {
            let tx = self.read()?;
            super::server_ids::known(&tx, account, prefix)
        })
    }

    /// Drop server ids after the mails were deleted on the server; the
    /// messages stay.
    pub fn forget_server_ids(&self, account: &str, ids: &[String]) -> Result<()> {
        self.call("forget server ids", || {
            let tx = self.write()?;
            {
                let mut t = ServerIds::open(&tx)?;
                let mut back = tx.open_table(MESSAGE_SIDS).context("open server ids")?;
                for sid in ids {
                    if let Some(id) = t.remove(account, sid)? {
                        back.remove((id, sid.as_str()))
                            .context("remove server id")?;
                    }
                }
                t.finish()?;
            }
            tx.commit().context("commit forgotten server ids")
        })
    }

    /// The message already stored for the account with this content hash.
    /// The server ids stored for message `id` (its reverse map), e.g. to
    /// move it to Trash on the server.
    pub fn server_ids(&self, id: u64) -> Result<Vec<String>> {
        self.call("read server ids", || {
            let tx = self.read()?;
            let t = tx.open_table(MESSAGE_SIDS).context("open server ids")?;
            let mut out = Vec::new();
            for row in t.range((id, "")..).context("read server ids")? {
                let (k, _) = row.context("read server ids")?;
                let (mid, sid) = k.value();
                if mid != id {
                    break;
                }
                out.push(sid.to_string());
            }
            Ok(out)
        })
    }

    pub fn has_content(&self, account: &str, sha256_hex: &str) -> Result<Option<u64>> {
        self.call("look up a mail", || {
            let tx = self.read()?;
            super::content::lookup(&tx, account, sha256_hex)
        })
    }

    pub fn sync_state(&self, account: &str, key: &str) -> Result<Option<String>> {
        self.call("read the sync state", || {
            let tx = self.read()?;
            let t = tx.open_table(SYNC).context("open sync state")?;
            let v = t.get((account, key)).context("read sync state")?;
            Ok(v.map(|g| g.value().to_string()))
        })
    }

    pub fn set_sync_state(&self, account: &str, key: &str, value: &str) -> Result<()> {
        self.call("write the sync state", || {
            let tx = self.write()?;
            if account_in(&tx, account)?.is_none() {
                return Err(no_account(account));
            }
            tx.open_table(SYNC)
                .context("open sync state")?
                .insert((account, key), value)
                .context("write sync state")?;
            tx.commit().context("commit sync state")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::store::messages::tests::{fixed_summary, inbox, mail};
    use crate::store::sha256_hex;
    use crate::store::tests::pop3;

    #[test]
    fn sync_state_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        assert!(store.sync_state(&a.id, "imap:INBOX").unwrap().is_none());
        store.set_sync_state(&a.id, "imap:INBOX", "7:42").unwrap();
        assert_eq!(
            store.sync_state(&a.id, "imap:INBOX").unwrap().as_deref(),
            Some("7:42")
        );
        assert!(matches!(
            store.set_sync_state("a9", "k", "v"),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn dedups_by_server_id_and_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        let b = store.create_account(|id| pop3(id, None)).unwrap();
        let sum = fixed_summary(Some(1));
        let first = store
            .commit_batch(
                &a,
                vec![mail("imap:INBOX:7:1", "x"), mail("imap:INBOX:7:2", "y")],
                &sum,
            )
            .unwrap();
        assert_eq!(first.len(), 2);
        // Same server id again, and within one batch the same content twice.
        let again = store
            .commit_batch(
                &a,
                vec![
                    mail("imap:INBOX:7:1", "changed"),
                    mail("imap:INBOX:7:3", "z"),
                    mail("imap:INBOX:7:4", "z"),
                ],
                &sum,
            )
            .unwrap();
        assert_eq!(again.len(), 1);
        // A UIDVALIDITY change: the same bytes under new ids are only mapped.
        let after = store
            .commit_batch(
                &a,
                vec![mail("imap:INBOX:8:1", "x"), mail("imap:INBOX:8:2", "y")],
                &sum,
            )
            .unwrap();
        assert!(after.is_empty());
        let new_ids = store.known_server_ids(&a.id, "imap:INBOX:8:").unwrap();
        assert_eq!(new_ids.len(), 2);
        assert!(new_ids.contains("imap:INBOX:8:1"));
        assert_eq!(
            store
                .known_server_ids(&a.id, "imap:INBOX:7:")
                .unwrap()
                .len(),
            4
        );
        let x = b"Subject: x\r\n\r\nx\r\n";
        assert_eq!(
            store.has_content(&a.id, &sha256_hex(x)).unwrap(),
            Some(first[0])
        );
        // Content dedup is per account: another account stores its own copy.
        assert_eq!(
            store
                .commit_batch(&b, vec![mail("pop3:1", "x")], &sum)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(store.list_messages(&inbox()).unwrap().1, 4);

        store
            .forget_server_ids(&a.id, &["imap:INBOX:7:1".to_string()])
            .unwrap();
        let left = store.known_server_ids(&a.id, "imap:INBOX:7:").unwrap();
        assert_eq!(left.len(), 3);
        assert!(!left.contains("imap:INBOX:7:1"));
        assert!(store.message(first[0]).unwrap().is_some());
    }
}
