//! Saved drafts (schema 7): the mails `Mailbox.SaveDraft` put into an
//! account's Drafts folder on the IMAP server.
//!
//! A draft is stored like an outbox mail: its raw bytes exactly as
//! APPENDed, a summary in folder [`DRAFTS`] and view entries under the
//! account's visibility class, so `ListMessages(folder=drafts)`,
//! `GetMessage` and `GetRaw` show it by the rules of every other mail (a
//! private account's drafts only to its owner, invariant 6). Its message id
//! is the id SaveDraft returns and the `draft_id` a later SaveDraft
//! replaces. Beside it a [`DraftRecord`] says where it lives on the server:
//! folder, UIDVALIDITY and UID from the APPEND's `APPENDUID` (RFC 4315;
//! both 0 when the server has no UIDPLUS) and the Message-ID, by which it
//! is found again when the UID is unknown or no longer valid.
//!
//! [`Store::add_draft`] writes the new version and removes the one it
//! replaces — message, bytes, record — in one durable transaction, so the
//! store never shows both or neither. Removing the old version on the
//! server is the caller's next step and may fail without undoing this.
//!
//! Records of an account that was deleted stay until their draft is
//! replaced (like outbox records): lookups check that the account still
//! exists.

use redb::WriteTransaction;
use serde::{Deserialize, Serialize};

use super::meta::Summary;
use super::purge::remove_rows_in;
use super::schema::DRAFTS as RECORDS;
use super::Store;
use crate::account::Account;
use crate::error::{Context, Error, Result};

/// The folder saved drafts are filed in.
pub const DRAFTS: &str = "drafts";

/// Where a saved draft lives on the server; JSON in the `drafts` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DraftRecord {
    pub account: String,
    /// The CRM user who saved it ("" for an admin acting as nobody).
    pub user: String,
    /// The server's folder name at the time of saving.
    pub folder: String,
    /// From `APPENDUID`; 0 when the server did not say (no UIDPLUS).
    pub uid_validity: u32,
    pub uid: u32,
    /// With angle brackets.
    pub message_id: String,
}

fn record_from(bytes: &[u8]) -> Result<DraftRecord> {
    serde_json::from_slice(bytes).context("stored draft record is unreadable")
}

/// Takes the record of `id` out of the table, if there is one.
fn take_record(tx: &WriteTransaction, id: u64) -> Result<Option<DraftRecord>> {
    let mut t = tx.open_table(RECORDS).context("open drafts")?;
    let v = t.remove(id).context("remove draft record")?;
    v.map(|g| record_from(g.value())).transpose()
}

impl Store {
    /// Stores draft `raw` of `account` with `record` (its `account` is set
    /// here) and, when `replaces` names a draft of the same account,
    /// removes that one in the same transaction (module docs). Returns the
    /// new id and the removed draft's record. NotFound, with nothing
    /// written, if the account was deleted meanwhile or `replaces` is not
    /// a draft of this account.
    pub fn add_draft(
        &self,
        account: &Account,
        raw: Vec<u8>,
        summary: Summary,
        mut record: DraftRecord,
        at: i64,
        replaces: Option<u64>,
    ) -> Result<(u64, Option<DraftRecord>)> {
        self.call("save a draft", || {
            record.account = account.id.clone();
            let json = serde_json::to_vec(&record).context("encode draft record")?;
            let mut removed = None;
            let mut had_blob = false;
            let id = self.add_own_mail(account, DRAFTS, raw, summary, at, |tx, id| {
                if let Some(old) = replaces {
                    let rec = take_record(tx, old)?
                        .filter(|r| r.account == account.id)
                        .ok_or_else(|| no_draft(old))?;
                    had_blob = remove_rows_in(tx, old)?.is_some_and(|(_, blob)| blob);
                    if had_blob {
                        // As for a deleted mail: the file goes only after
                        // the commit, and the trash row proves it may.
                        super::blobs::drain(tx, &self.blobs)?;
                        super::blobs::trash(tx, &[old])?;
                    }
                    removed = Some(rec);
                }
                tx.open_table(RECORDS)
                    .context("open drafts")?
                    .insert(id, json.as_slice())
                    .context("write draft record")?;
                Ok(())
            })?;
            if let (true, Some(old)) = (had_blob, replaces) {
                self.blobs.unlink_deleted(&[old]);
            }
            Ok((id, removed))
        })
    }

    /// The record of draft `id` if it is a draft of an account that still
    /// exists.
    pub fn draft_record(&self, id: u64) -> Result<Option<DraftRecord>> {
        self.call("read a draft record", || {
            let rec = {
                let tx = self.read()?;
                let t = tx.open_table(RECORDS).context("open drafts")?;
                let v = t.get(id).context("read drafts")?;
                v.map(|g| record_from(g.value())).transpose()?
            };
            match rec {
                Some(r) if self.account(&r.account)?.is_some() => Ok(Some(r)),
                _ => Ok(None),
            }
        })
    }
}

/// The error for a `draft_id` that names no draft of the account.
pub fn no_draft(id: u64) -> Error {
    Error::NotFound(format!(
        "draft_id: no draft {id} of this account (it was replaced, deleted, or never saved)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::list::tests::account;
    use crate::store::{ListQuery, Visibility};

    fn save(store: &Store, a: &Account, subject: &str, replaces: Option<u64>) -> Result<u64> {
        let raw = format!("Subject: {subject}\r\nMessage-ID: <{subject}@x>\r\n\r\nText\r\n");
        let summary = crate::mime::summarize(raw.as_bytes(), 100);
        let rec = DraftRecord {
            folder: "Drafts".into(),
            uid_validity: 7,
            uid: 3,
            message_id: format!("<{subject}@x>"),
            ..DraftRecord::default()
        };
        store
            .add_draft(a, raw.into_bytes(), summary, rec, 100, replaces)
            .map(|(id, _)| id)
    }

    fn drafts(store: &Store, viewer: Visibility) -> Vec<u64> {
        let (page, _) = store
            .list_messages(&ListQuery::new(viewer, DRAFTS))
            .unwrap();
        page.into_iter().map(|m| m.id).collect()
    }

    #[test]
    fn a_replaced_draft_is_gone_with_its_record_and_the_new_one_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = account(&store, "t1", "alice");
        let first = save(&store, &a, "eins", None).unwrap();
        assert_eq!(drafts(&store, Visibility::User("alice".into())), [first]);
        assert!(drafts(&store, Visibility::User("bob".into())).is_empty());
        let rec = store.draft_record(first).unwrap().unwrap();
        assert_eq!((rec.account.as_str(), rec.uid), (a.id.as_str(), 3));

        let second = save(&store, &a, "zwei", Some(first)).unwrap();
        assert_eq!(drafts(&store, Visibility::All), [second]);
        assert!(store.draft_record(first).unwrap().is_none());
        assert!(store.raw(first).unwrap().is_none());
        assert!(store.raw(second).unwrap().is_some());

        store.delete_message(second).unwrap().unwrap();
        assert!(store.draft_record(second).unwrap().is_none());
    }

    #[test]
    fn an_unknown_or_foreign_draft_id_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = account(&store, "t1", "");
        let b = account(&store, "t1", "");
        let mine = save(&store, &a, "a", None).unwrap();
        let e = save(&store, &b, "b", Some(mine)).unwrap_err();
        assert_eq!(e.name(), "NotFound", "{e}");
        let e = save(&store, &b, "b", Some(9999)).unwrap_err();
        assert_eq!(e.name(), "NotFound", "{e}");
        assert_eq!(drafts(&store, Visibility::All), [mine]);
        assert!(store.draft_record(mine).unwrap().is_some());
    }

    #[test]
    fn schema_6_store_gets_the_drafts_table() {
        use crate::store::schema::{get_u64, put_u64, KEY_VERSION, SCHEMA_VERSION};
        use crate::store::{write_txn, DB_FILE};
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        {
            // What a schema 6 postfachd left: no drafts table.
            let db = redb::Database::open(dir.path().join(DB_FILE)).unwrap();
            let tx = write_txn(&db).unwrap();
            assert!(tx.delete_table(RECORDS).unwrap());
            put_u64(&tx, KEY_VERSION, 6).unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let a = account(&store, "t1", "");
        let id = save(&store, &a, "alt", None).unwrap();
        assert!(store.draft_record(id).unwrap().is_some());
        drop(store);
        let db = redb::Database::open(dir.path().join(DB_FILE)).unwrap();
        let tx = write_txn(&db).unwrap();
        assert_eq!(get_u64(&tx, KEY_VERSION).unwrap(), Some(SCHEMA_VERSION));
    }
}
