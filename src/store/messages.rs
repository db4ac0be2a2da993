//! Fetched mail: raw bytes, summaries, server ids and content hashes.
//!
//! [`Store::commit_batch`] is the point of no return of a fetch: once it
//! returns Ok, the raw bytes, the index entries and the server ids of the
//! batch are on disk in one transaction, and only then may a fetcher delete
//! the mails on the server (ARCHITECTURE.md "Invariants", 1–3). Summaries are
//! made after the bytes are in hand and can neither panic the daemon nor
//! stop the mail from being stored (invariant 4).

use std::panic::{catch_unwind, AssertUnwindSafe};

use sha2::{Digest, Sha256};

use super::account_row::{account_in, no_account};
pub use super::blobs::Raw;
use super::content::Content;
use super::digest::MailKeys;
use super::keytags::{tag_of, KeyTags};
pub use super::meta::{MessageMeta, Summary, TOMBSTONE};
use super::schema::{self, BLOBS, MESSAGES, MESSAGE_SIDS, RAW_PACKED};
use super::server_ids::ServerIds;
use super::summary;
use super::summary::Labels;
use super::views::{meta_in, owner_in, Writer};
use super::Store;
use crate::account::Account;
use crate::error::Context;
use crate::error::{Error, Result};

/// The folder fetched mail is filed in.
pub const INBOX: &str = "inbox";

/// One mail as a fetcher received it.
#[derive(Debug)]
pub struct NewMail {
    /// Opaque, chosen by the fetcher: `pop3:<uidl>`, `imap:INBOX:<uidvalidity>:<uid>`.
    pub server_id: String,
    pub raw: Raw,
    /// Unix seconds when it was received.
    pub received: i64,
}

/// Lower-case hex SHA-256 of raw bytes: the content key of [`Store::has_content`].
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::hex::lower(&Sha256::digest(bytes))
}

/// Summarise without letting a panic in the parser escape; a mail that
/// cannot be summarised is still stored (invariant 4).
fn safe_summary(summarize: &dyn Fn(&[u8], i64) -> Summary, raw: &[u8], received: i64) -> Summary {
    catch_unwind(AssertUnwindSafe(|| summarize(raw, received))).unwrap_or_else(|_| {
        tracing::warn!("summarising a mail panicked; stored with an empty summary");
        Summary::default()
    })
}

impl Store {
    /// Store a batch of fetched mails in ONE durable transaction (see the
    /// module docs). Skips mails whose server id is known; a mail whose
    /// content is already stored for the account only gets its server id
    /// mapped. Returns the ids of newly stored messages, in batch order.
    /// NotFound if the account was deleted meanwhile: nothing is stored, so
    /// the fetcher must not delete anything on the server.
    pub fn commit_batch(
        &self,
        account: &Account,
        mails: Vec<NewMail>,
        summarize: &dyn Fn(&[u8], i64) -> Summary,
    ) -> Result<Vec<u64>> {
        self.call("store fetched mail", || {
            let mut moved = Vec::new();
            let prepared = self.prepare_batch(account, mails, summarize, &mut moved);
            let prepared = prepared.and_then(|p| {
                if !moved.is_empty() {
                    // The renames must be durable before the rows that point
                    // to them (invariant 1: the server copy may go after this
                    // commit).
                    self.blobs.sync()?;
                }
                Ok(p)
            });
            let (tx, new_ids, packer) = match prepared {
                Ok(p) => p,
                Err(e) => {
                    // The transaction is dropped uncommitted: the files moved
                    // to `blobs/<id>` belong to nothing, and the ids will be
                    // handed out again.
                    self.blobs.discard(&moved);
                    return Err(e);
                }
            };
            // A failed commit may still have reached the disk (an fsync error
            // after the commit slot was written), so its files stay; the next
            // open removes those that no row points to.
            tx.commit().context("commit fetched mail")?;
            packer.after_commit(self);
            Ok(new_ids)
        })
    }

    /// Everything of [`Store::commit_batch`] but the commit; `moved`
    /// collects the ids whose blob file is already in `blobs/`.
    fn prepare_batch(
        &self,
        account: &Account,
        mails: Vec<NewMail>,
        summarize: &dyn Fn(&[u8], i64) -> Summary,
        moved: &mut Vec<u64>,
    ) -> Result<(super::WriteTx<'_>, Vec<u64>, super::packer::Packer<'_>)> {
        // Compressed before the write transaction begins, so that other
        // accounts' commits do not wait for it (a mail seen before is
        // compressed in vain: rare, and cheaper than a second pass).
        let mut packer = self.packer(&mails)?;
        let mut packed: Vec<Option<Vec<u8>>> = mails
            .iter()
            .map(|m| match &m.raw {
                Raw::Bytes(b) => packer.pack(b).map(Some),
                Raw::Blob(_) => Ok(None),
            })
            .collect::<Result<_>>()?;
        // Likewise the mail keys (super::digest), a second pass over the bytes.
        let keyed: Vec<MailKeys> = mails.iter().map(|m| m.raw.keys()).collect();
        let tx = self.write()?;
        packer.settle(&tx, &mails, &mut packed)?;
        // The stored account, not the caller's copy, decides the visibility
        // class: an owner change committed meanwhile must not be undone.
        let Some(stored) = account_in(&tx, &account.id)? else {
            return Err(no_account(&account.id));
        };
        let owner = stored.private_owner;
        let acct = account.id.as_str();
        let first_id = schema::get_u64(&tx, schema::KEY_NEXT_MESSAGE)?.unwrap_or(1);
        let mut next_id = first_id;
        let mut new_ids = Vec::new();
        {
            // Every table is opened once per batch, not once per mail: in
            // redb each open and close of a table also reads and rewrites
            // its root in the table directory, which cost more than the
            // mail's own inserts.
            let mut sids = ServerIds::open(&tx)?;
            let mut content = Content::open(&tx)?;
            let mut message_sids = tx.open_table(MESSAGE_SIDS).context("open server ids")?;
            let mut raws = tx.open_table(RAW_PACKED).context("open raw")?;
            let mut blob_rows = tx.open_table(BLOBS).context("open blobs")?;
            let mut messages = tx.open_table(MESSAGES).context("open messages")?;
            let mut views = Writer::batch(&tx)?;
            let labels = Labels::write(&tx);
            for ((mail, packed), keys) in mails.into_iter().zip(packed).zip(keyed) {
                let NewMail {
                    server_id,
                    raw,
                    received,
                } = mail;
                let sid = server_id.as_str();
                if sids.get(acct, sid)?.is_some() {
                    continue;
                }
                let sha = raw.sha256_hex();
                // The mail key first: the same mail with other bookkeeping
                // fields (super::digest); the raw hash for mails stored (or
                // deleted) before mail keys existed.
                let mut known = None;
                for key in [keys.mail.as_str(), sha.as_str()] {
                    known = content.get(acct, key)?;
                    if known.is_some() {
                        break;
                    }
                }
                if known == Some(TOMBSTONE) {
                    // Deleted in the CRM: seen again (e.g. after a UIDVALIDITY
                    // change), it stays deleted.
                    sids.insert(acct, sid, TOMBSTONE)?;
                    continue;
                }
                if let Some(existing) = known {
                    // Seen again: its keys, for the next time (a header key is
                    // only filed now for mail without bookkeeping fields).
                    for key in [keys.mail.as_str(), keys.header.as_str()] {
                        content.add(acct, key, existing)?;
                    }
                    sids.insert(acct, sid, existing)?;
                    message_sids
                        .insert((existing, server_id.as_str()), ())
                        .context("write server ids")?;
                    continue;
                }
                let id = next_id;
                next_id = id
                    .checked_add(1)
                    .ok_or_else(|| Error::storage_msg("message id counter overflowed".into()))?;
                // A blob is summarised from its head (see super::blobs).
                let sum = safe_summary(summarize, raw.summary_bytes(), received);
                let meta = MessageMeta {
                    id,
                    account: acct.to_string(),
                    tenant: account.tenant.clone(),
                    folder: INBOX.to_string(),
                    from: sum.from,
                    to: sum.to,
                    cc: sum.cc,
                    subject: sum.subject,
                    date: sum.date.unwrap_or(received),
                    received,
                    size: raw.len(),
                    read: false,
                    has_attachments: sum.has_attachments,
                    contact: String::new(),
                    message_id: sum.message_id,
                    account_name: account.name.clone(),
                    account_address: account.address.clone(),
                    keys: KeyTags {
                        raw: tag_of(&sha),
                        mail: if keys.bookkeeping {
                            tag_of(&keys.mail)
                        } else {
                            None
                        },
                        header: tag_of(&keys.header),
                    },
                };
                match (raw, packed) {
                    (Raw::Bytes(_), Some(row)) => {
                        raws.insert(id, row.as_slice()).context("write raw mail")?;
                    }
                    (Raw::Bytes(b), None) => super::compress::insert(&mut raws, id, &b)?,
                    (Raw::Blob(b), _) => {
                        let len = b.len();
                        self.blobs.commit_file(b, id)?;
                        moved.push(id);
                        blob_rows.insert(id, len).context("write blob row")?;
                    }
                }
                sids.insert(acct, sid, id)?;
                content.insert(acct, &sha, id)?;
                // Other mail is recognised by its raw hash, and gets a header
                // key once it is seen again (above).
                if keys.bookkeeping {
                    for key in [keys.mail.as_str(), keys.header.as_str()] {
                        content.add(acct, key, id)?;
                    }
                }
                message_sids
                    .insert((id, server_id.as_str()), ())
                    .context("write server ids")?;
                messages
                    .insert(id, summary::encode(&labels, &meta)?.as_slice())
                    .context("write message")?;
                views.add(&meta, Some(&owner))?;
                new_ids.push(id);
            }
            views.finish()?;
            sids.finish()?;
        }
        if next_id != first_id {
            schema::put_u64(&tx, schema::KEY_NEXT_MESSAGE, next_id)?;
            packer.advance(&tx, first_id, next_id)?;
            // These mails have their keys: a mark right before them moves
            // past them, so the next open does not read them again.
            let mark = schema::get_u64(&tx, schema::KEY_REKEYED)?.unwrap_or(0);
            if mark.saturating_add(1) == first_id {
                schema::put_u64(&tx, schema::KEY_REKEYED, next_id - 1)?;
            }
        }
        Ok((tx, new_ids, packer))
    }

    /// The bytes exactly as received: the unpacked row (see
    /// `super::compress`), or the blob file.
    pub fn raw(&self, id: u64) -> Result<Option<Vec<u8>>> {
        self.call("read a mail", || {
            let blob_len = {
                let tx = self.read()?;
                if let Some(raw) = super::compress::read(&tx, &self.dicts, id)? {
                    return Ok(Some(raw));
                }
                super::blobs::blob_len(&tx, id)?
            };
            match blob_len {
                None => Ok(None),
                Some(len) => self.read_blob(id, len),
            }
        })
    }

    pub fn message(&self, id: u64) -> Result<Option<MessageMeta>> {
        self.call("read a message", || {
            let tx = self.read()?;
            let t = tx.open_table(MESSAGES).context("open messages")?;
            let v = t.get(id).context("read message")?;
            v.map(|g| summary::decode(&tx.labels()?, id, g.value()))
                .transpose()
        })
    }

    /// Change messages' summaries and re-file them, all in one transaction;
    /// NotFound (and nothing written) if one does not exist.
    fn change_messages(
        &self,
        ids: impl IntoIterator<Item = u64>,
        mut change: impl FnMut(u64, &mut MessageMeta),
    ) -> Result<()> {
        let tx = self.write()?;
        for id in ids {
            let before = meta_in(&tx, id)?.ok_or_else(|| no_message(id))?;
            let mut after = before.clone();
            change(id, &mut after);
            let owner = owner_in(&tx, &before.account)?;
            Writer::open(&tx)?.refile(&before, owner.as_deref(), &after, owner.as_deref())?;
            tx.open_table(MESSAGES)
                .context("open messages")?
                .insert(id, summary::encode(&Labels::write(&tx), &after)?.as_slice())
                .context("write message")?;
        }
        tx.commit().context("commit message change")
    }

    /// Assign to a CRM contact ("" = unassign). An assigned message outlives
    /// its account and is visible to all users even from a private account;
    /// unassigning it makes the account's current owner decide again.
    pub fn set_contact(&self, id: u64, contact: &str) -> Result<()> {
        self.call("assign a message", || {
            self.change_messages([id], |_, m| m.contact = contact.to_string())
        })
    }

    /// [`Store::set_contact`] for many messages in one transaction (a bulk
    /// journal assignment, an import): one fsync instead of one per mail.
    pub fn set_contacts(&self, changes: &[(u64, String)]) -> Result<()> {
        self.call("assign messages", || {
            let by_id: std::collections::HashMap<u64, &str> =
                changes.iter().map(|(id, c)| (*id, c.as_str())).collect();
            self.change_messages(changes.iter().map(|(id, _)| *id), |id, m| {
                if let Some(c) = by_id.get(&id) {
                    m.contact = (*c).to_string();
                }
            })
        })
    }

    pub fn set_read(&self, id: u64, read: bool) -> Result<()> {
        self.call("mark a message read", || {
            self.change_messages([id], |_, m| m.read = read)
        })
    }
}

fn no_message(id: u64) -> Error {
    Error::NotFound(format!("no message {id}"))
}

#[cfg(test)]
pub(crate) mod tests;
