//! What deleting an account removes from the message tables.
//!
//! Mails assigned to a CRM contact [Journalzuordnung] belong to the journal,
//! not to the account, so they stay, with the account's last name and
//! address, which the message record carries for exactly this case.

use redb::{ReadableTable, WriteTransaction};

use super::messages::{meta_from, meta_json};
use super::schema::{CONTENT, MESSAGES, RAW, SERVER_IDS};
use super::st;
use super::tracking::take_message_sids;
use super::views::Writer;
use crate::account::Account;
use crate::error::Result;

/// Part of `delete_account`, in its transaction: remove the account's
/// unassigned messages (raw, summary, view entries) and all its server ids
/// and content hashes; assigned messages stay with the account's last name
/// and address. Reads only the account's own index entries.
pub(super) fn delete_account_messages(tx: &WriteTransaction, account: &Account) -> Result<()> {
    let acct = account.id.as_str();
    let mut w = Writer::open(tx)?;
    let ids = w.account_ids(acct, None)?;
    let mut messages = tx.open_table(MESSAGES).map_err(st("open messages"))?;
    let mut raw = tx.open_table(RAW).map_err(st("open raw"))?;
    for id in ids {
        let Some(mut m) = messages
            .get(id)
            .map_err(st("read message"))?
            .map(|g| meta_from(g.value()))
            .transpose()?
        else {
            continue;
        };
        take_message_sids(tx, id)?;
        if m.contact.is_empty() {
            w.remove(&m, Some(&account.private_owner))?;
            messages.remove(id).map_err(st("remove message"))?;
            raw.remove(id).map_err(st("remove raw mail"))?;
        } else {
            m.account_name = account.name.clone();
            m.account_address = account.address.clone();
            messages
                .insert(id, meta_json(&m)?.as_slice())
                .map_err(st("write message"))?;
        }
    }
    for table in [SERVER_IDS, CONTENT] {
        let mut t = tx.open_table(table).map_err(st("open server ids"))?;
        let mut keys = Vec::new();
        for row in t.range((acct, "")..).map_err(st("read server ids"))? {
            let (k, _) = row.map_err(st("read server ids"))?;
            let (a, key) = k.value();
            if a != acct {
                break;
            }
            keys.push(key.to_string());
        }
        for k in &keys {
            t.remove((acct, k.as_str()))
                .map_err(st("remove server id"))?;
        }
    }
    Ok(())
}

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
