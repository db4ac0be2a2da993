//! Fetched mail: raw bytes, summaries, server ids and content hashes.

use redb::WriteTransaction;
use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::error::Result;

/// One mail as a fetcher received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    /// Opaque, chosen by the fetcher: `pop3:<uidl>`, `imap:INBOX:<uidvalidity>:<uid>`.
    pub server_id: String,
    pub raw: Vec<u8>,
    /// Unix seconds when it was received.
    pub received: i64,
}

/// What ListMessages shows of a message; JSON in the `messages` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageMeta {
    pub id: u64,
    pub account: String,
    pub tenant: String,
    pub folder: String,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub date: i64,
    pub received: i64,
    pub size: u64,
    pub read: bool,
    pub has_attachments: bool,
    pub contact: String,
    pub message_id: String,
    pub sha256: String,
    pub account_name: String,
    pub account_address: String,
}

/// Header summary of a raw mail, made by the MIME module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    /// The Date header; None if missing or unparsable.
    pub date: Option<i64>,
    pub message_id: String,
    pub has_attachments: bool,
}

pub(super) fn delete_account_messages(_tx: &WriteTransaction, _account: &Account) -> Result<()> {
    Ok(())
}
