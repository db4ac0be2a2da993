//! What the store knows of one message apart from its bytes: the
//! summary ListMessages shows ([`MessageMeta`], stored by
//! `super::summary`), the header summary the MIME module makes of a raw
//! mail ([`Summary`]), and the id deleted mail points to ([`TOMBSTONE`]).
//!
//! These are plain data that every part of the store passes around
//! (fetch, views, word index, purge, content keys, summaries), so they
//! live apart from any of them: each of those modules depends on this
//! one and none on another just for the types.

use serde::{Deserialize, Serialize};

use super::keytags::KeyTags;

/// What ListMessages shows of a message; its row in the `messages` table
/// is `super::summary`'s encoding (JSON up to schema 11).
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
    pub account_name: String,
    pub account_address: String,
    /// Tags of its keys in the content index (super::content): the raw
    /// hash, the mail key without server bookkeeping fields
    /// (super::digest) and the header key, so that a deletion tombstones
    /// each of them (super::keytags). Not part of the JSON of schema 11
    /// and older, which held the key texts (super::summary reads them).
    #[serde(skip)]
    pub keys: KeyTags,
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

/// The message id that server ids and content keys of a mail deleted in
/// the CRM point to (message ids start at 1).
pub const TOMBSTONE: u64 = 0;
