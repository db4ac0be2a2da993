//! Schema migrations: the numbered steps that bring a store written by an
//! older postfachd up to [`SCHEMA_VERSION`], each inside the caller's
//! transaction (opening a store, or building a restored one from an older
//! backup). The layout itself is in [`super::schema`].

use redb::WriteTransaction;

use super::schema::*;
use crate::error::Context;
use crate::error::{Error, Result};

/// A migration step from schema N to N+1 runs inside the open transaction.
type Step = fn(&WriteTransaction) -> Result<()>;

/// `STEPS[i]` migrates schema `i + 1` to `i + 2`. A new step: append it,
/// bump [`SCHEMA_VERSION`], add a test that opens a store written by the old
/// layout.
const STEPS: &[Step] = &[
    migrate_1_to_2,
    migrate_2_to_3,
    migrate_3_to_4,
    migrate_4_to_5,
    migrate_to_outbox,
    migrate_to_drafts,
    migrate_to_search,
    migrate_to_packed_raw,
    migrate_to_packed_search,
    migrate_to_raw_dicts,
    migrate_to_binary_summaries,
    migrate_to_summary_labels,
    migrate_to_scope_numbers,
    migrate_to_binary_content,
    migrate_to_view_chunks,
    migrate_to_place_numbers,
    migrate_to_key_tags,
    migrate_to_coarser_counters,
    migrate_to_server_uids,
];

/// Schema 2 replaced the per-folder and per-account indexes by view scopes
/// with order-statistic counters (visibility classes, tenants, accounts) and
/// added the message -> server id map. Everything is rebuilt from the
/// `messages` and `server_ids` tables, which schema 1 already had.
fn migrate_1_to_2(tx: &WriteTransaction) -> Result<()> {
    tx.delete_table(v1::FOLDER_INDEX)
        .context("drop schema 1 index")?;
    tx.delete_table(v1::ACCOUNT_INDEX)
        .context("drop schema 1 index")?;
    tx.delete_table(v1::COUNTS)
        .context("drop schema 1 counters")?;
    create_tables(tx)?;
    super::tracking::rebuild_message_sids(tx)?;
    super::views::rebuild(tx)
}

/// Schema 3 keeps the finer levels of the view counters as one child array
/// per parent bucket ([`VIEW_COUNTS`]) instead of one row per bucket. The
/// view scopes and their counters are rebuilt from the `messages` table;
/// nothing else changes.
fn migrate_2_to_3(tx: &WriteTransaction) -> Result<()> {
    tx.delete_table(VIEW_INDEX)
        .context("drop schema 2 view index")?;
    tx.delete_table(BUCKETS)
        .context("drop schema 2 view counters")?;
    // Absent in a schema 2 file; present when step 1->2 just rebuilt views.
    tx.delete_table(VIEW_COUNTS)
        .context("drop schema 2 view counters")?;
    // Since schema 14 the rebuild files into the numbered lists: absent in
    // a schema 2 file, filled when step 1->2 just rebuilt views.
    tx.delete_table(VIEW_SCOPES)
        .context("drop schema 2 view counters")?;
    tx.delete_table(VIEW_ENTRIES)
        .context("drop schema 2 view counters")?;
    tx.delete_table(VIEW_CHUNKS)
        .context("drop schema 2 view counters")?;
    tx.delete_table(VIEW_TOTALS)
        .context("drop schema 2 view counters")?;
    tx.delete_table(VIEW_ARRAYS)
        .context("drop schema 2 view counters")?;
    create_tables(tx)?;
    super::views::rebuild(tx)
}

/// Schema 4 stores big mails as files with a row in [`BLOBS`]; the step
/// only creates that table. The version bump is what matters: an older
/// daemon would not know the blob rows and would see those mails without
/// their bytes, so it must refuse the store.
fn migrate_3_to_4(tx: &WriteTransaction) -> Result<()> {
    create_tables(tx)
}

/// Schema 5 adds signatures and employees ([`SIGNATURES`], [`EMPLOYEES`],
/// [`EMPLOYEE_IMAGES`]); the step only creates them. An older daemon would
/// not back them up or show them, so it must refuse the store.
fn migrate_4_to_5(tx: &WriteTransaction) -> Result<()> {
    create_tables(tx)
}

/// Schema 6 adds the outbox ([`OUTBOX`], [`OUTBOX_ACTIVE`]); the step only
/// creates them. An older daemon would neither send nor list the queued
/// mails, so it must refuse the store. (Self-contained, so that its place in
/// [`STEPS`] can move if another step lands first.)
fn migrate_to_outbox(tx: &WriteTransaction) -> Result<()> {
    tx.open_table(OUTBOX).context("create outbox")?;
    tx.open_table(OUTBOX_ACTIVE).context("create outbox")?;
    Ok(())
}

/// Schema 7 adds the server places of saved drafts ([`DRAFTS`]); the step
/// only creates the table. An older daemon would show the drafts but could
/// not replace them on the server, and its backups would lose the table, so
/// it must refuse the store.
fn migrate_to_drafts(tx: &WriteTransaction) -> Result<()> {
    tx.open_table(DRAFTS).context("create drafts")?;
    Ok(())
}

/// Schema 8 adds the word index of ListMessages `text` ([`SEARCH_INDEX`]),
/// built here from every stored summary in the one transaction of the
/// migration: a crash leaves the schema 7 store untouched and the next
/// start builds it again, and no reader ever sees a half-built index (a
/// resumable build would need a "complete up to" mark that every search
/// checks). Earlier steps may have filed postings already (the view writer
/// keeps both), so the table is cleared first. Self-contained, so that its
/// place in [`STEPS`] can move.
fn migrate_to_search(tx: &WriteTransaction) -> Result<()> {
    tx.delete_table(SEARCH_INDEX)
        .context("clear search index")?;
    // Since schema 10 the postings are written packed (to this table).
    tx.delete_table(SEARCH_POSTINGS)
        .context("clear search index")?;
    super::search::rebuild(tx)
}

/// Schema 9 stores raw mails compressed in [`RAW_PACKED`]; the step only
/// creates the table. Moving the rows of [`RAW`] is not done here, inside
/// one transaction as big as the store, but by
/// `super::compress::pack_legacy` in bounded transactions after the
/// migration commits (resumable: the rows left in [`RAW`] are the
/// progress). An older daemon would not find the packed mails, so it must
/// refuse the store. (Self-contained, so that its place in [`STEPS`] can
/// move if another step lands first.)
fn migrate_to_packed_raw(tx: &WriteTransaction) -> Result<()> {
    tx.open_table(RAW_PACKED)
        .context("create packed raw table")?;
    Ok(())
}

/// Schema 10 packs the word index into chunks ([`SEARCH_POSTINGS`]); the
/// step only creates the table. The postings of the old [`SEARCH_INDEX`]
/// are moved by `super::search::pack::pack_legacy` in bounded transactions
/// after the migration commits (resumable: the rows left in the old table
/// are the progress), and searches read both tables meanwhile. An older
/// daemon would not find the packed postings, so it must refuse the store.
/// (Self-contained, so that its place in [`STEPS`] can move.)
fn migrate_to_packed_search(tx: &WriteTransaction) -> Result<()> {
    tx.open_table(SEARCH_POSTINGS)
        .context("create packed search index")?;
    Ok(())
}

/// Schema 11 packs raw mails with a zstd dictionary trained on the store's
/// own mail, kept in [`RAW_DICTS`]; the step only creates that table.
/// Training and repacking the older rows happen after the migration
/// commits, in bounded transactions (`super::compress::recompress`). An
/// older daemon could not read rows of the new codec, so it must refuse
/// the store. (Self-contained, so that its place in [`STEPS`] can move.)
fn migrate_to_raw_dicts(tx: &WriteTransaction) -> Result<()> {
    tx.open_table(RAW_DICTS)
        .context("create mail dictionary table")?;
    Ok(())
}

/// Schema 12 stores message summaries in a binary encoding instead of
/// JSON (`super::summary`); the step only sets the mark
/// [`super::summary::KEY_PACKED`] from which `super::summary::pack_legacy`
/// rewrites the JSON rows in bounded transactions after the migration
/// commits (readers take both forms meanwhile). An older daemon could not
/// read the binary rows, so it must refuse the store. (Self-contained, so
/// that its place in [`STEPS`] can move if another step lands first.)
fn migrate_to_binary_summaries(tx: &WriteTransaction) -> Result<()> {
    put_u64(tx, super::summary::KEY_PACKED, 0)
}

/// Schema 13 names a summary's account fields by a label
/// ([`SUMMARY_LABELS`], [`SUMMARY_LABEL_IDS`]) instead of repeating them
/// in every row (`super::summary::labels`). The step creates the tables
/// and sets the mark [`super::summary::KEY_PACKED`] back to the first
/// row, so that `super::summary::pack_legacy` rewrites every older row
/// (JSON or schema 12 binary) in bounded transactions after the migration
/// commits; readers take every form meanwhile. An older daemon could not
/// read the labelled rows, so it must refuse the store. (Self-contained,
/// so that its place in [`STEPS`] can move.)
fn migrate_to_summary_labels(tx: &WriteTransaction) -> Result<()> {
    tx.open_table(SUMMARY_LABELS)
        .context("create summary labels")?;
    tx.open_table(SUMMARY_LABEL_IDS)
        .context("create summary labels")?;
    put_u64(tx, super::summary::KEY_PACKED, 0)
}

/// Schema 14 keys the view lists by a number per scope instead of the
/// scope key ([`VIEW_SCOPES`], [`VIEW_ENTRIES`], [`VIEW_TOTALS`],
/// [`VIEW_ARRAYS`]); the step only creates the tables. The rows of the
/// old [`VIEW_INDEX`], [`BUCKETS`] and [`VIEW_COUNTS`] are moved by
/// `super::views::pack::pack_legacy` in bounded transactions after the
/// migration commits (resumable: the rows left in the old tables are the
/// progress), and reads take both meanwhile. An older daemon would not
/// find the moved entries, so it must refuse the store. (Self-contained,
/// so that its place in [`STEPS`] can move if another step lands first.)
fn migrate_to_scope_numbers(tx: &WriteTransaction) -> Result<()> {
    tx.open_table(VIEW_SCOPES)
        .context("create view scope numbers")?;
    tx.open_table(VIEW_ENTRIES)
        .context("create view scope numbers")?;
    tx.open_table(VIEW_TOTALS)
        .context("create view scope numbers")?;
    tx.open_table(VIEW_ARRAYS)
        .context("create view scope numbers")?;
    Ok(())
}

/// Schema 15 keys the content index by the 32 bytes of a content key
/// ([`CONTENT_KEYS`]) instead of its text ([`CONTENT`]); the step only
/// creates the table. The old rows are moved by
/// `super::content::pack::pack_legacy` in bounded transactions after the
/// migration commits (resumable: the rows left in the old table are the
/// progress), and lookups read both meanwhile. An older daemon would not
/// find the moved keys and would fetch mail again that it has (or that
/// was deleted in the CRM), so it must refuse the store. (Self-contained,
/// so that its place in [`STEPS`] can move if another step lands first.)
fn migrate_to_binary_content(tx: &WriteTransaction) -> Result<()> {
    tx.open_table(CONTENT_KEYS)
        .context("create binary content keys")?;
    Ok(())
}

/// Schema 16 packs the view lists into chunks of up to 128 entries per
/// row ([`VIEW_CHUNKS`]); the step only creates the table. The rows of
/// [`VIEW_ENTRIES`] are moved by `super::views::rechunk::move_entries` in
/// bounded transactions after the migration commits (resumable: the rows
/// left in the old table are the progress), and reads take both
/// meanwhile; the counters count entries in either table, so they stay
/// as they are. An older daemon would not find the moved entries, so it
/// must refuse the store. (Self-contained, so that its place in
/// [`STEPS`] can move if another step lands first.)
fn migrate_to_view_chunks(tx: &WriteTransaction) -> Result<()> {
    tx.open_table(VIEW_CHUNKS).context("create view chunks")?;
    Ok(())
}

/// Schema 17 names the places of the word index's chunks by number
/// ([`SEARCH_PLACES`], [`SEARCH_PLACE_NAMES`]) instead of their strings;
/// the step creates the tables and sets the mark
/// [`super::search::places::KEY_PLACES`] from which
/// `super::search::places::pack_legacy` rewrites the older chunks in
/// bounded transactions after the migration commits (resumable: the mark
/// is the progress), and searches take both forms meanwhile. An older
/// daemon could not read the numbered chunks, so it must refuse the
/// store. (Self-contained, so that its place in [`STEPS`] can move.)
fn migrate_to_place_numbers(tx: &WriteTransaction) -> Result<()> {
    tx.open_table(SEARCH_PLACES)
        .context("create search place numbers")?;
    tx.open_table(SEARCH_PLACE_NAMES)
        .context("create search place numbers")?;
    super::search::places::start(tx)
}

/// Schema 18 keeps in each summary a short tag of each content key
/// instead of its text (`super::keytags`; format byte
/// [`super::summary::TAGGED`]). Older rows still decode (their texts give
/// the tags), so the step only sets the mark [`super::summary::KEY_PACKED`]
/// back to the first message: `super::summary::pack_legacy` rewrites every
/// row that is not tagged yet in bounded transactions after the migration
/// commits (resumable: the mark is the progress), including rows that a
/// conversion of schema 13 left behind. An older daemon could not read the
/// tagged rows, so it must refuse the store. (Self-contained, so that its
/// place in [`STEPS`] can move.)
fn migrate_to_key_tags(tx: &WriteTransaction) -> Result<()> {
    put_u64(tx, super::summary::KEY_PACKED, 0)
}

/// Schema 19 no longer counts the 17-minute level of the view counters
/// (level 0 of [`VIEW_ARRAYS`]): a deep page walks the entries of one
/// 9-hour bucket instead (`super::rank`). The step changes no table;
/// `super::views::finest::drop_level_0` deletes the level 0 rows in
/// bounded transactions after the migration commits (resumable: the rows
/// left are the progress), and nothing reads them meanwhile. An older
/// daemon would take the missing level 0 arrays for empty buckets and
/// page wrongly, so it must refuse the store. (Self-contained, so that
/// its place in [`STEPS`] can move if another step lands first.)
fn migrate_to_coarser_counters(_tx: &WriteTransaction) -> Result<()> {
    Ok(())
}

/// Schema 20 keeps the canonical IMAP server ids in chunks of their
/// generation ([`SERVER_UIDS`]) instead of one [`SERVER_IDS`] row each;
/// the step creates the table and sets the mark
/// [`super::server_ids::moves::KEY_MOVE`] from which
/// `super::server_ids::moves::move_rows` moves the rows in bounded
/// transactions after the migration commits (resumable: the mark is the
/// progress), and readers take both meanwhile. An older daemon would not
/// find the moved ids and would fetch those mails again, so it must
/// refuse the store. (Self-contained, so that its place in [`STEPS`] can
/// move.)
fn migrate_to_server_uids(tx: &WriteTransaction) -> Result<()> {
    tx.open_table(SERVER_UIDS)
        .context("create server id chunks")?;
    super::server_ids::moves::start(tx)
}

/// Bring a store written at schema `from` (>= 1) up to [`SCHEMA_VERSION`]
/// inside the caller's transaction, so that a failed step leaves the file as
/// it was.
pub fn migrate(tx: &WriteTransaction, from: u64) -> Result<()> {
    for version in from..SCHEMA_VERSION {
        let step = version
            .checked_sub(1)
            .and_then(|i| STEPS.get(usize::try_from(i).ok()?))
            .ok_or_else(|| {
                Error::storage_msg(format!(
                    "no migration from store schema {version} to {}",
                    version + 1
                ))
            })?;
        step(tx)?;
    }
    create_tables(tx)?;
    put_u64(tx, KEY_VERSION, SCHEMA_VERSION)
}

#[cfg(test)]
mod tests;
