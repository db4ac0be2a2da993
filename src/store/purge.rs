//! What deleting a message or an account removes from the message tables.
//!
//! Mails assigned to a CRM contact [Journalzuordnung] belong to the journal,
//! not to the account, so they stay, with the account's last name and
//! address, which the message record carries for exactly this case.

use redb::{ReadableTable, WriteTransaction};

use super::content::Content;
use super::meta::{MessageMeta, TOMBSTONE};
use super::schema::{BLOBS, MESSAGES};
use super::server_ids::ServerIds;
use super::summary;
use super::summary::Labels;
use super::tracking::take_message_sids;
use super::views::{meta_in, owner_in, Writer};
use super::Store;
use crate::account::Account;
use crate::error::Context;
use crate::error::Result;

/// Part of `delete_account`, in its transaction: remove the account's
/// unassigned messages (raw, summary, view entries) and all its server ids
/// and content hashes; assigned messages stay with the account's last name
/// and address. Reads only the account's own index entries. Returns the
/// ids whose blob files the caller removes after the commit.
pub(super) fn delete_account_messages(
    tx: &WriteTransaction,
    account: &Account,
) -> Result<Vec<u64>> {
    let acct = account.id.as_str();
    let mut w = Writer::open(tx)?;
    let ids = w.account_ids(acct, None)?;
    let mut messages = tx.open_table(MESSAGES).context("open messages")?;
    let mut blob_rows = tx.open_table(BLOBS).context("open blobs")?;
    let mut blobs = Vec::new();
    let labels = Labels::write(tx);
    for id in ids {
        let Some(mut m) = messages
            .get(id)
            .context("read message")?
            .map(|g| summary::decode(&labels, id, g.value()))
            .transpose()?
        else {
            continue;
        };
        take_message_sids(tx, id)?;
        if m.contact.is_empty() {
            w.remove(&m, Some(&account.private_owner))?;
            messages.remove(id).context("remove message")?;
            super::compress::remove(tx, id)?;
            if blob_rows.remove(id).context("remove blob row")?.is_some() {
                blobs.push(id);
            }
        } else {
            m.account_name = account.name.clone();
            m.account_address = account.address.clone();
            messages
                .insert(id, summary::encode(&labels, &m)?.as_slice())
                .context("write message")?;
        }
    }
    Content::open(tx)?.remove_account(acct)?;
    let mut sids = ServerIds::open(tx)?;
    sids.remove_account(acct)?;
    sids.finish()?;
    Ok(blobs)
}

impl Store {
    /// Removes the message (raw, summary, view entries, content hash,
    /// server-id mappings) in one transaction and returns what the caller
    /// needs to act on the server: the account id and the message's server
    /// ids (e.g. `imap:INBOX:<uidvalidity>:<uid>`). None if there is no such
    /// message. Once the hash and server ids are gone, a copy still on the
    /// server would be fetched again, so the caller deletes it there.
    pub fn delete_message(&self, id: u64) -> Result<Option<(String, Vec<String>)>> {
        self.call("delete a message", || {
            let tx = self.write()?;
            let Some((m, had_blob)) = remove_rows_in(&tx, id)? else {
                return Ok(None);
            };
            // A saved draft's server place (store::drafts) goes with it.
            tx.open_table(super::schema::DRAFTS)
                .context("open drafts")?
                .remove(id)
                .context("remove draft record")?;
            let acct = m.account.as_str();
            // Tombstones, not removal: a mail deleted only here may still be on
            // the server (no Trash folder, delete-on-server off), and the next
            // fetch must not bring it back — neither by its server id nor, after
            // a UIDVALIDITY change, by its content. They go with the account,
            // or when the fetcher forgets the server id after a server delete.
            {
                let mut content = Content::open(&tx)?;
                // The mail keys too (super::digest): a server that rewrites
                // its bookkeeping fields must not bring the mail back either.
                for tag in m.keys.all().into_iter().flatten() {
                    content.bury(acct, tag, id)?;
                }
            }
            let sids = super::tracking::take_message_sids(&tx, id)?;
            let mut t = ServerIds::open(&tx)?;
            for sid in &sids {
                t.insert(acct, sid, TOMBSTONE)?;
            }
            t.finish()?;
            if had_blob {
                super::blobs::drain(&tx, &self.blobs)?;
                super::blobs::trash(&tx, &[id])?;
            }
            tx.commit().context("commit message deletion")?;
            if had_blob {
                self.blobs.unlink_deleted(&[id]);
            }
            Ok(Some((m.account, sids)))
        })
    }
}

/// Remove message `id`'s rows (summary, view entries, bytes) if it still
/// exists: its summary, and whether it had a blob file, which the caller
/// trashes in the same transaction and unlinks after the commit. The
/// server-side bookkeeping (content hash, server ids) is the caller's: a
/// deleted mail leaves tombstones, a withdrawn outbox mail has none.
pub(super) fn remove_rows_in(
    tx: &WriteTransaction,
    id: u64,
) -> Result<Option<(MessageMeta, bool)>> {
    let Some(m) = meta_in(tx, id)? else {
        return Ok(None);
    };
    let owner = owner_in(tx, &m.account)?;
    Writer::open(tx)?.remove(&m, owner.as_deref())?;
    tx.open_table(MESSAGES)
        .context("open messages")?
        .remove(id)
        .context("remove message")?;
    super::compress::remove(tx, id)?;
    let had_blob = tx
        .open_table(BLOBS)
        .context("open blobs")?
        .remove(id)
        .context("remove blob row")?
        .is_some();
    Ok(Some((m, had_blob)))
}

#[cfg(test)]
mod tag_tests;

#[cfg(test)]
mod tests {
    use crate::error::Error;
    use crate::store::messages::tests::{fixed_summary, inbox, mail};
    use crate::store::tests::pop3;
    use crate::store::Store;

    #[test]
    fn delete_account_keeps_only_assigned_messages() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_account(|id| pop3(id, None)).unwrap();
        let b = store.create_account(|id| pop3(id, None)).unwrap();
        let sum = fixed_summary(Some(10));
        let ids = store
            .commit_batch(
                &a,
                vec![mail("pop3:1", "keep"), mail("pop3:2", "drop")],
                &sum,
            )
            .unwrap();
        let other = store
            .commit_batch(&b, vec![mail("pop3:1", "b")], &sum)
            .unwrap();
        store.set_contact(ids[0], "K-1001").unwrap();
        store.set_read(ids[0], true).unwrap();
        store.set_sync_state(&a.id, "pop3", "x").unwrap();
        assert!(matches!(
            store.set_contact(999, "K"),
            Err(Error::NotFound(_))
        ));

        store.delete_account(&a.id).unwrap();
        let kept = store.message(ids[0]).unwrap().unwrap();
        assert_eq!((kept.contact.as_str(), kept.read), ("K-1001", true));
        assert_eq!(kept.account_address, "info@example.org");
        assert_eq!(kept.account_name, a.name);
        assert!(store.raw(ids[0]).unwrap().is_some());
        assert!(store.message(ids[1]).unwrap().is_none());
        assert!(store.raw(ids[1]).unwrap().is_none());
        assert!(store.known_server_ids(&a.id, "").unwrap().is_empty());
        assert!(store.sync_state(&a.id, "pop3").unwrap().is_none());
        let (page, total) = store.list_messages(&inbox()).unwrap();
        let listed: Vec<u64> = page.iter().map(|m| m.id).collect();
        assert_eq!((listed, total), (vec![other[0], ids[0]], 2));
        assert_eq!(store.count_messages(&a.id).unwrap(), 1);
        assert_eq!(store.known_server_ids(&b.id, "pop3:").unwrap().len(), 1);
    }
}

#[cfg(test)]
mod removal_tests {
    use crate::store::list::tests::{account, put};
    use crate::store::{ListQuery, NewMail, Store, Visibility};

    fn total(store: &Store, q: ListQuery) -> u32 {
        store.list_messages(&q).unwrap().1
    }

    fn user(u: &str) -> Visibility {
        Visibility::User(u.into())
    }

    #[test]
    fn delete_message_removes_everything_and_returns_server_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = account(&store, "t1", "alice");
        let ids = put(&store, &a, &[(10, "one"), (20, "two")]);
        let raw = store.raw(ids[0]).unwrap().unwrap();
        // The same bytes seen under a second server id map to the message.
        let again = NewMail {
            server_id: "imap:INBOX:9:1".into(),
            raw: raw.clone().into(),
            received: 1,
        };
        let summary = crate::store::list::tests::summary;
        assert!(store
            .commit_batch(&a, vec![again], &summary)
            .unwrap()
            .is_empty());
        let sids = store.known_server_ids(&a.id, "").unwrap();
        assert_eq!(sids.len(), 3);

        let (acct, mut gone) = store.delete_message(ids[0]).unwrap().unwrap();
        gone.sort();
        assert_eq!(acct, a.id);
        assert_eq!(gone.len(), 2);
        assert!(gone.contains(&"imap:INBOX:9:1".to_string()));
        assert!(store.message(ids[0]).unwrap().is_none());
        assert!(store.raw(ids[0]).unwrap().is_none());
        assert_eq!(
            store
                .has_content(&a.id, &crate::store::sha256_hex(&raw))
                .unwrap(),
            Some(super::super::messages::TOMBSTONE)
        );
        assert!(store
            .visible_message(ids[0], &Visibility::All)
            .unwrap()
            .is_none());
        // The server ids stay known (as tombstones), so no fetch brings the
        // mail back.
        assert_eq!(store.known_server_ids(&a.id, "").unwrap(), sids);
        assert_eq!(store.count_messages(&a.id).unwrap(), 1);
        for viewer in [Visibility::All, user("alice")] {
            let (page, n) = store.list_messages(&ListQuery::new(viewer, "")).unwrap();
            assert_eq!((page[0].id, n), (ids[1], 1));
        }
        let tenant = ListQuery {
            tenant: Some("t1".into()),
            ..ListQuery::new(user("alice"), "inbox")
        };
        assert_eq!(total(&store, tenant), 1);
        assert_eq!(store.delete_message(ids[0]).unwrap(), None);
        // Neither the same server id nor the same bytes under a new one
        // (a UIDVALIDITY change) bring it back.
        for sid in ["imap:INBOX:9:1", "imap:INBOX:10:1"] {
            let back = NewMail {
                server_id: sid.into(),
                raw: raw.clone().into(),
                received: 1,
            };
            assert!(store
                .commit_batch(&a, vec![back], &summary)
                .unwrap()
                .is_empty());
        }
        assert_eq!(store.count_messages(&a.id).unwrap(), 1);
        // Once the server deleted it, the tombstone of that id goes.
        store
            .forget_server_ids(&a.id, &["imap:INBOX:9:1".to_string()])
            .unwrap();
        assert!(!store
            .known_server_ids(&a.id, "")
            .unwrap()
            .contains("imap:INBOX:9:1"));
    }

    #[test]
    fn deleted_private_account_leaves_its_assigned_mail_public() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = account(&store, "t1", "alice");
        let other = account(&store, "t1", "");
        let ids = put(
            &store,
            &a,
            &[(10, "kept"), (20, "dropped"), (30, "kept too")],
        );
        let theirs = put(&store, &other, &[(15, "other")]);
        store.set_contact(ids[0], "K-1").unwrap();
        store.set_contact(ids[2], "K-2").unwrap();
        store.delete_account(&a.id).unwrap();

        for viewer in [Visibility::All, user("alice"), user("bob")] {
            let (page, n) = store
                .list_messages(&ListQuery::new(viewer.clone(), "inbox"))
                .unwrap();
            let listed: Vec<u64> = page.iter().map(|m| m.id).collect();
            assert_eq!((listed, n), (vec![ids[2], theirs[0], ids[0]], 3));
            let kept = &page[0];
            assert_eq!(kept.account_name, a.name);
            assert_eq!(kept.account_address, "info@example.org");
            let by_account = ListQuery {
                account: Some(a.id.clone()),
                ..ListQuery::new(viewer.clone(), "inbox")
            };
            assert_eq!(total(&store, by_account), 2, "{viewer:?}");
            assert!(store.visible_message(ids[0], &viewer).unwrap().is_some());
            assert!(store.visible_message(ids[1], &viewer).unwrap().is_none());
        }
        assert!(store.known_server_ids(&a.id, "").unwrap().is_empty());
        // Unassigned, a mail without an account is an admin's only.
        store.set_contact(ids[0], "").unwrap();
        assert!(store
            .visible_message(ids[0], &user("alice"))
            .unwrap()
            .is_none());
        assert_eq!(total(&store, ListQuery::new(user("alice"), "inbox")), 2);
        assert_eq!(total(&store, ListQuery::new(Visibility::All, "inbox")), 3);
        let unassigned = ListQuery {
            unassigned: Some(true),
            ..ListQuery::new(Visibility::All, "inbox")
        };
        assert_eq!(total(&store, unassigned), 2);
        // Deleting it hands back no server ids: they went with the account.
        assert_eq!(
            store.delete_message(ids[0]).unwrap(),
            Some((a.id.clone(), vec![]))
        );
    }
}
