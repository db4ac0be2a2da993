//! Table layout and the `meta` table.
//!
//! Every table is declared here so that one file shows the whole on-disk
//! format. Values that may grow new fields (accounts, outbox and draft
//! records) are JSON, so an added `#[serde(default)]` field needs no
//! migration; a change of keys or tables does, and goes into
//! [`super::migrate`] as a numbered step.
//!
//! Message summaries are the exception (schema 12): one row per mail, so
//! they are a compact binary encoding with a leading format byte
//! (`super::summary`). A new summary field needs a new format byte, its
//! decoder beside the old ones, a schema step, and a conversion of the
//! older rows at open in bounded transactions (as `super::summary`'s
//! `pack_legacy` converts the JSON rows of schema 11 and the binary rows
//! of schema 12). Since schema 13 a row names its account fields by a
//! label in [`SUMMARY_LABELS`] instead of holding them.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use crate::error::Context;
use crate::error::{Error, Result};

/// The schema this build writes. A store with a newer one is refused: an
/// older daemon must not guess at data a newer one wrote.
pub const SCHEMA_VERSION: u64 = 20;

/// Meta values: `schema_version`, `installation_id`, counters. Numbers are
/// 8 bytes big-endian; text is UTF-8.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Account id -> JSON of [`crate::account::Account`].
pub const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
/// (account id, secret kind code) -> key id ‖ nonce ‖ ChaCha20-Poly1305 ciphertext.
pub const SECRETS: TableDefinition<(&str, u8), &[u8]> = TableDefinition::new("secrets");
/// (account id, key) -> value; fetchers' resume points such as UIDVALIDITY.
pub const SYNC: TableDefinition<(&str, &str), &str> = TableDefinition::new("sync_state");
/// Message id -> raw bytes exactly as received (invariant 3): the layout
/// up to schema 7. Since schema 8 new mail goes to [`RAW_PACKED`]; rows
/// left here (a store or backup of schema 7 or older) are moved over at
/// open (`super::compress::pack_legacy`), so this table is empty once a
/// store is packed.
pub const RAW: TableDefinition<u64, &[u8]> = TableDefinition::new("raw");
/// Message id -> codec byte ‖ the raw bytes compressed (schema 8; see
/// `super::compress`): the bytes exactly as received once unpacked.
pub const RAW_PACKED: TableDefinition<u64, &[u8]> = TableDefinition::new("raw_packed");
/// Dictionary id -> a zstd dictionary trained on the store's own mail,
/// which rows of codec 2 of [`RAW_PACKED`] name (schema 11; see
/// `super::compress::dict`). Rows are added, never changed or removed.
pub const RAW_DICTS: TableDefinition<u32, &[u8]> = TableDefinition::new("raw_dicts");
/// Message id -> length of its file `blobs/<id>`: a mail above
/// `super::blobs::BLOB_MIN`, stored as a file instead of a [`RAW`] row
/// (schema 4; see `super::blobs`).
pub const BLOBS: TableDefinition<u64, u64> = TableDefinition::new("blobs");
/// Message id -> (): a blob whose row a committed deletion removed; its
/// file may still exist until the unlink after the commit (or, while a
/// snapshot pins the blobs, until a later sweep). The sweep removes files
/// of these ids only (see `super::blobs`). Created with the tables (and by
/// the step to schema 5), else on first use; it needs no schema step of its
/// own, since a daemon without it has no use for it and ignores it.
pub const BLOB_TRASH: TableDefinition<u64, ()> = TableDefinition::new("blob_trash");
/// Message id -> [`super::MessageMeta`] without its id: a format byte and
/// the fields in binary with an account label (schema 13) and tags of the
/// content keys (schema 18), or an older form (converted at open); see
/// `super::summary`.
pub const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
/// Label number -> the account fields that summaries name by it (account
/// id, tenant, account name and address as four length-prefixed strings;
/// schema 13, see `super::summary::labels`). Rows are added, never
/// changed or removed.
pub const SUMMARY_LABELS: TableDefinition<u32, &[u8]> = TableDefinition::new("summary_labels");
/// The reverse of [`SUMMARY_LABELS`]: a label's stored form -> its number.
pub const SUMMARY_LABEL_IDS: TableDefinition<&[u8], u32> =
    TableDefinition::new("summary_label_ids");
/// (account id, server id) -> message id: what was already fetched
/// (invariant 2). Since schema 20 only the ids that are not canonical IMAP
/// ids (`pop3:<uidl>`, odd forms); see `super::server_ids`.
pub const SERVER_IDS: TableDefinition<(&str, &str), u64> = TableDefinition::new("server_ids");
/// (account id, generation `imap:<folder>:<uidvalidity>:`, first uid) -> up
/// to 128 (uid, message id) pairs packed: the canonical IMAP server ids
/// (schema 20; the row format is `super::server_ids::chunk`).
pub const SERVER_UIDS: TableDefinition<(&str, &str, u32), &[u8]> =
    TableDefinition::new("server_uids");
/// (account id, content key) -> message id, [`super::meta::TOMBSTONE`]
/// or [`super::digest::AMBIGUOUS`]: the same mail seen again under a new
/// UIDVALIDITY or UIDL is recognised by content (schema 15). The key is the
/// 32 bytes of a content key text (the SHA-256 hex of the raw bytes, a mail
/// key or a header key of `super::digest`), as `super::content::stored_key`
/// maps it.
pub const CONTENT_KEYS: TableDefinition<(&str, &[u8; 32]), u64> =
    TableDefinition::new("content_keys");
/// (account id, content key text) -> message id: [`CONTENT_KEYS`] of
/// schemas 1 to 14, keyed by the text itself. Since schema 15 the rows are
/// moved at open (`super::content::pack`); lookups read both tables
/// meanwhile, and the move drops this one.
pub const CONTENT: TableDefinition<(&str, &str), u64> = TableDefinition::new("content");
/// (message id, server id) -> (): the reverse of [`SERVER_IDS`], so that
/// deleting one message finds its server ids without scanning the account.
pub const MESSAGE_SIDS: TableDefinition<(u64, &str), ()> = TableDefinition::new("message_sids");
/// Scope key -> its number (schema 14; see `super::views::scopes`): each
/// view scope (`super::views` for the scopes) is numbered once, when its
/// first entry is filed, and keeps its number for good (never reused, even
/// when the scope empties), so that the rows below can be keyed by it.
/// The empty key holds the next number to give.
pub const VIEW_SCOPES: TableDefinition<&str, u32> = TableDefinition::new("view_scopes");
/// (scope number, oldest date, oldest id) -> packed entries: one sorted
/// list per view scope in chunks of up to 128 entries (schema 16; the row
/// format is `super::views::chunk`); a reverse range is newest first.
pub const VIEW_CHUNKS: TableDefinition<(u32, i64, u64), &[u8]> =
    TableDefinition::new("view_chunks");
/// (scope number, date, id) -> (): the view lists of schemas 14 and 15, one row
/// per entry. Since schema 16 the rows are moved into [`VIEW_CHUNKS`] at
/// open (`super::views::rechunk`); reads take both tables meanwhile, and
/// the move drops this one. The counters below count the entries of both.
pub const VIEW_ENTRIES: TableDefinition<(u32, i64, u64), ()> = TableDefinition::new("view_entries");
/// (level, scope number, date bucket) -> entries of the scope in that
/// bucket, for the coarsest levels of the order-statistic counters of
/// `super::rank` (skip N entries, exact totals); see `super::counters`
/// (schema 13).
pub const VIEW_TOTALS: TableDefinition<(u8, u32, i64), u64> = TableDefinition::new("view_totals");
/// (level, scope number, parent bucket) -> the counts of the parent's 32
/// child buckets at `level`, sparse-encoded: the finer levels of the same
/// counters (schema 13; see `super::counters`). Since schema 19 the
/// finest is level 1 (9-hour buckets); level 0 rows of older stores are
/// deleted at open (`super::views::finest`) and never read.
pub const VIEW_ARRAYS: TableDefinition<(u8, u32, i64), &[u8]> = TableDefinition::new("view_arrays");

/// (scope, date, id) -> (): the view lists of schemas 2 to 13, keyed by
/// the scope's key itself. Since schema 14 the rows are moved to
/// [`VIEW_ENTRIES`] at open (`super::views::pack`); reads take both
/// tables meanwhile, and the move drops this table and the two below.
pub const VIEW_INDEX: TableDefinition<(&str, i64, u64), ()> = TableDefinition::new("view_index");
/// (level, scope, date bucket) -> count: [`VIEW_TOTALS`] of schemas 2 to
/// 13, keyed by the scope's key.
pub const BUCKETS: TableDefinition<(u8, &str, i64), u64> = TableDefinition::new("view_buckets");
/// (level, scope, parent bucket) -> child array: [`VIEW_ARRAYS`] of
/// schemas 3 to 13, keyed by the scope's key.
pub const VIEW_COUNTS: TableDefinition<(u8, &str, i64), &[u8]> =
    TableDefinition::new("view_counts");

/// (tenant, user) -> JSON of [`crate::signature::Signature`]; user "" is
/// the tenant's general signature (schema 5; see `super::signatures`).
pub const SIGNATURES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("signatures");
/// (tenant, user) -> JSON of an employee's fields and picture types
/// (schema 5).
pub const EMPLOYEES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("employees");
/// (tenant, user, order) -> an employee's picture file (schema 5).
pub const EMPLOYEE_IMAGES: TableDefinition<(&str, &str, u32), &[u8]> =
    TableDefinition::new("employee_images");

/// Outbox message id -> JSON of [`super::OutboxRecord`]: the envelope,
/// state and attempts of a mail being sent; the mail itself is a message in
/// folder `outbox` (schema 6; see `super::outbox`).
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// (state code, time, message id) -> account id, for the outbox mails not
/// yet final: code 0 `queued` at its next attempt time, code 1 `sending`
/// at the time the attempt began (schema 6; see `super::outbox`).
pub const OUTBOX_ACTIVE: TableDefinition<(u8, i64, u64), &str> =
    TableDefinition::new("outbox_active");

/// Draft message id -> JSON of [`super::DraftRecord`]: where a draft that
/// SaveDraft stored lives on the server (folder, UIDVALIDITY, UID,
/// Message-ID); the draft itself is a message in folder `drafts` (schema 7;
/// see `super::drafts`).
pub const DRAFTS: TableDefinition<u64, &[u8]> = TableDefinition::new("drafts");

/// (word, date, id) -> place (assigned or not, account, folder): one
/// posting per distinct word of a message's subject, sender and recipients,
/// so that ListMessages `text` reads the postings of the query's words
/// instead of every summary: the layout of schemas 8 and 9. Since schema
/// 10 the postings are packed in [`SEARCH_POSTINGS`]; rows left here are
/// moved over at open and the table is then dropped
/// (`super::search::pack`).
pub const SEARCH_INDEX: TableDefinition<(&str, i64, u64), &str> =
    TableDefinition::new("search_index");
/// (word, date, id of the chunk's oldest posting) -> up to 128 postings of
/// the word packed (schema 10; see `super::search::chunk`). Since schema
/// 15 a chunk names its places by number ([`SEARCH_PLACES`]).
pub const SEARCH_POSTINGS: TableDefinition<(&str, i64, u64), &[u8]> =
    TableDefinition::new("search_postings");
/// Place of the word index (`c`/`n`, account, folder) -> its number
/// (schema 17, add-only; `super::numbers`). The empty key holds the next
/// number to assign.
pub const SEARCH_PLACES: TableDefinition<&str, u32> = TableDefinition::new("search_places");
/// Number -> place, the way back of [`SEARCH_PLACES`] for searches.
pub const SEARCH_PLACE_NAMES: TableDefinition<u32, &str> =
    TableDefinition::new("search_place_names");

/// Schema 1 indexes, replaced in schema 2 by [`VIEW_INDEX`] and [`BUCKETS`]
/// (since schema 14 [`VIEW_ENTRIES`] and [`VIEW_TOTALS`]);
/// kept only so that the migration can drop them.
pub mod v1 {
    use redb::TableDefinition;
    /// (folder, date, id) -> ().
    pub const FOLDER_INDEX: TableDefinition<(&str, i64, u64), ()> =
        TableDefinition::new("folder_index");
    /// (account id, folder, date, id) -> ().
    pub const ACCOUNT_INDEX: TableDefinition<(&str, &str, i64, u64), ()> =
        TableDefinition::new("account_index");
    /// (account id or "", folder) -> number of index entries.
    pub const COUNTS: TableDefinition<(&str, &str), u64> = TableDefinition::new("counts");
}

pub const KEY_VERSION: &str = "schema_version";
pub const KEY_INSTALLATION: &str = "installation_id";
pub const KEY_NEXT_ACCOUNT: &str = "next_account";
pub const KEY_NEXT_MESSAGE: &str = "next_message";
/// The highest message id whose mail keys are filed (super::rekey);
/// `commit_batch` moves it along when it commits right after it.
pub const KEY_REKEYED: &str = "rekeyed_upto";
/// The highest message id whose raw row was offered to the store's
/// dictionary (super::compress::recompress).
pub const KEY_DICT_PACKED: &str = "dict_packed_upto";

/// Read a number from `meta`; absent = None.
pub fn get_u64(tx: &WriteTransaction, key: &str) -> Result<Option<u64>> {
    let t = tx.open_table(META).context("open meta")?;
    let v = t.get(key).context("read meta")?;
    match v {
        None => Ok(None),
        Some(g) => {
            let b: [u8; 8] = g.value().try_into().map_err(|_| {
                Error::storage_msg(format!("meta value {key} is not an 8-byte number"))
            })?;
            Ok(Some(u64::from_be_bytes(b)))
        }
    }
}

pub fn put_u64(tx: &WriteTransaction, key: &str, value: u64) -> Result<()> {
    let mut t = tx.open_table(META).context("open meta")?;
    t.insert(key, value.to_be_bytes().as_slice())
        .context("write meta")?;
    Ok(())
}

/// Take the next value of a counter (starting at 1) and advance it.
pub fn next_counter(tx: &WriteTransaction, key: &str) -> Result<u64> {
    let n = get_u64(tx, key)?.unwrap_or(1);
    let next = n
        .checked_add(1)
        .ok_or_else(|| Error::storage_msg(format!("counter {key} overflowed")))?;
    put_u64(tx, key, next)?;
    Ok(n)
}

/// Create every table, so that readers never meet a missing one.
pub fn create_tables(tx: &WriteTransaction) -> Result<()> {
    tx.open_table(META).context("create tables")?;
    tx.open_table(ACCOUNTS).context("create tables")?;
    tx.open_table(SECRETS).context("create tables")?;
    tx.open_table(SYNC).context("create tables")?;
    tx.open_table(RAW).context("create tables")?;
    tx.open_table(RAW_PACKED).context("create tables")?;
    tx.open_table(RAW_DICTS).context("create tables")?;
    tx.open_table(BLOBS).context("create tables")?;
    tx.open_table(BLOB_TRASH).context("create tables")?;
    tx.open_table(MESSAGES).context("create tables")?;
    tx.open_table(SUMMARY_LABELS).context("create tables")?;
    tx.open_table(SUMMARY_LABEL_IDS).context("create tables")?;
    tx.open_table(SERVER_IDS).context("create tables")?;
    tx.open_table(SERVER_UIDS).context("create tables")?;
    tx.open_table(CONTENT_KEYS).context("create tables")?;
    tx.open_table(MESSAGE_SIDS).context("create tables")?;
    tx.open_table(VIEW_SCOPES).context("create tables")?;
    tx.open_table(VIEW_CHUNKS).context("create tables")?;
    tx.open_table(VIEW_TOTALS).context("create tables")?;
    tx.open_table(VIEW_ARRAYS).context("create tables")?;
    tx.open_table(SIGNATURES).context("create tables")?;
    tx.open_table(EMPLOYEES).context("create tables")?;
    tx.open_table(EMPLOYEE_IMAGES).context("create tables")?;
    tx.open_table(OUTBOX).context("create tables")?;
    tx.open_table(OUTBOX_ACTIVE).context("create tables")?;
    tx.open_table(DRAFTS).context("create tables")?;
    tx.open_table(SEARCH_POSTINGS).context("create tables")?;
    tx.open_table(SEARCH_PLACES).context("create tables")?;
    tx.open_table(SEARCH_PLACE_NAMES).context("create tables")?;
    Ok(())
}
