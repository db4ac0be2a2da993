//! Table layout, the `meta` table and schema migrations.
//!
//! Every table is declared here so that one file shows the whole on-disk
//! format. Values that may grow new fields (accounts, message summaries) are
//! JSON, so an added `#[serde(default)]` field needs no migration; a change of
//! keys or tables does, and goes into [`migrate`] as a numbered step.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use crate::error::Context;
use crate::error::{Error, Result};

/// The schema this build writes. A store with a newer one is refused: an
/// older daemon must not guess at data a newer one wrote.
pub const SCHEMA_VERSION: u64 = 9;

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
/// Message id -> JSON of [`super::MessageMeta`].
pub const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
/// (account id, server id) -> message id: what was already fetched (invariant 2).
pub const SERVER_IDS: TableDefinition<(&str, &str), u64> = TableDefinition::new("server_ids");
/// (account id, SHA-256 hex of the raw bytes) -> message id: the same mail
/// seen again under a new UIDVALIDITY or UIDL is recognised by content.
pub const CONTENT: TableDefinition<(&str, &str), u64> = TableDefinition::new("content");
/// (message id, server id) -> (): the reverse of [`SERVER_IDS`], so that
/// deleting one message finds its server ids without scanning the account.
pub const MESSAGE_SIDS: TableDefinition<(u64, &str), ()> = TableDefinition::new("message_sids");
/// (scope, date, id) -> (): one sorted list per view scope (see
/// `super::views` for the scopes); a reverse range is newest first.
pub const VIEW_INDEX: TableDefinition<(&str, i64, u64), ()> = TableDefinition::new("view_index");
/// (level, scope, date bucket) -> entries of the scope in that bucket, for
/// the coarsest levels of the order-statistic counters of `super::rank`
/// (skip N entries, exact totals); see `super::counters`.
pub const BUCKETS: TableDefinition<(u8, &str, i64), u64> = TableDefinition::new("view_buckets");
/// (level, scope, parent bucket) -> the counts of the parent's 32 child
/// buckets at `level`, sparse-encoded: the finer levels of the same
/// counters (schema 3; see `super::counters`).
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
/// instead of every summary (schema 8; see `super::search`).
pub const SEARCH_INDEX: TableDefinition<(&str, i64, u64), &str> =
    TableDefinition::new("search_index");

/// Schema 1 indexes, replaced in schema 2 by [`VIEW_INDEX`] and [`BUCKETS`];
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
    tx.open_table(BLOBS).context("create tables")?;
    tx.open_table(BLOB_TRASH).context("create tables")?;
    tx.open_table(MESSAGES).context("create tables")?;
    tx.open_table(SERVER_IDS).context("create tables")?;
    tx.open_table(CONTENT).context("create tables")?;
    tx.open_table(MESSAGE_SIDS).context("create tables")?;
    tx.open_table(VIEW_INDEX).context("create tables")?;
    tx.open_table(BUCKETS).context("create tables")?;
    tx.open_table(VIEW_COUNTS).context("create tables")?;
    tx.open_table(SIGNATURES).context("create tables")?;
    tx.open_table(EMPLOYEES).context("create tables")?;
    tx.open_table(EMPLOYEE_IMAGES).context("create tables")?;
    tx.open_table(OUTBOX).context("create tables")?;
    tx.open_table(OUTBOX_ACTIVE).context("create tables")?;
    tx.open_table(DRAFTS).context("create tables")?;
    tx.open_table(SEARCH_INDEX).context("create tables")?;
    Ok(())
}

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
mod tests {
    use redb::{Database, TableHandle};

    use super::*;
    use crate::store::list::tests::{account, put};
    use crate::store::messages::meta_from;
    use crate::store::{write_txn, ListQuery, Store, Visibility, DB_FILE};

    /// Rewrite a current store file into the schema 1 layout, as a
    /// postfachd of that version left it.
    fn downgrade_to_v1(path: &std::path::Path) {
        let db = Database::open(path).unwrap();
        let tx = write_txn(&db).unwrap();
        for t in [VIEW_INDEX.name(), BUCKETS.name(), MESSAGE_SIDS.name()] {
            assert!(tx.list_tables().unwrap().any(|h| h.name() == t));
        }
        tx.delete_table(VIEW_INDEX).unwrap();
        tx.delete_table(BUCKETS).unwrap();
        tx.delete_table(VIEW_COUNTS).unwrap();
        tx.delete_table(MESSAGE_SIDS).unwrap();
        {
            let messages = tx.open_table(MESSAGES).unwrap();
            let mut folder = tx.open_table(v1::FOLDER_INDEX).unwrap();
            let mut account = tx.open_table(v1::ACCOUNT_INDEX).unwrap();
            let mut counts = tx.open_table(v1::COUNTS).unwrap();
            for row in messages.iter().unwrap() {
                let m = meta_from(row.unwrap().1.value()).unwrap();
                folder
                    .insert((m.folder.as_str(), m.date, m.id), ())
                    .unwrap();
                let key = (m.account.as_str(), m.folder.as_str(), m.date, m.id);
                account.insert(key, ()).unwrap();
                for scope in [m.account.as_str(), ""] {
                    let n = counts
                        .get((scope, "inbox"))
                        .unwrap()
                        .map_or(0, |g| g.value());
                    counts.insert((scope, "inbox"), n + 1).unwrap();
                }
            }
        }
        put_u64(&tx, KEY_VERSION, 1).unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn schema_1_store_is_migrated_with_views_and_server_id_map() {
        let dir = tempfile::tempdir().unwrap();
        let (public, private, ids) = {
            let store = Store::open(dir.path()).unwrap();
            let public = account(&store, "t1", "");
            let private = account(&store, "t1", "alice");
            let mut ids = put(&store, &public, &[(5, "a"), (7, "b")]);
            ids.extend(put(&store, &private, &[(6, "c"), (8, "d")]));
            store.set_contact(ids[3], "K-1").unwrap();
            (public, private, ids)
        };
        downgrade_to_v1(&dir.path().join(DB_FILE));

        let store = Store::open(dir.path()).unwrap();
        let page = |viewer: Visibility| -> (Vec<u64>, u32) {
            let (p, n) = store
                .list_messages(&ListQuery::new(viewer, "inbox"))
                .unwrap();
            (p.into_iter().map(|m| m.id).collect(), n)
        };
        let everything = vec![ids[3], ids[1], ids[2], ids[0]];
        assert_eq!(page(Visibility::All), (everything.clone(), 4));
        assert_eq!(page(Visibility::User("alice".into())), (everything, 4));
        let bob = vec![ids[3], ids[1], ids[0]];
        assert_eq!(page(Visibility::User("bob".into())), (bob, 3));
        assert_eq!(store.count_messages(&public.id).unwrap(), 2);
        assert_eq!(store.count_messages(&private.id).unwrap(), 2);
        let (acct, sids) = store.delete_message(ids[2]).unwrap().unwrap();
        assert_eq!((acct, sids.len()), (private.id.clone(), 1));
        drop(store);

        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        let tx = write_txn(&db).unwrap();
        assert_eq!(get_u64(&tx, KEY_VERSION).unwrap(), Some(SCHEMA_VERSION));
        let names: Vec<String> = tx
            .list_tables()
            .unwrap()
            .map(|h| h.name().to_string())
            .collect();
        for old in ["folder_index", "account_index", "counts"] {
            assert!(!names.iter().any(|n| n == old), "{old} still there");
        }
    }

    /// Rewrite a current store file into the schema 2 layout: one counter
    /// row per bucket at every level, no child arrays.
    fn downgrade_to_v2(path: &std::path::Path) {
        let db = Database::open(path).unwrap();
        let tx = write_txn(&db).unwrap();
        tx.delete_table(VIEW_COUNTS).unwrap();
        {
            let index = tx.open_table(VIEW_INDEX).unwrap();
            let mut buckets = tx.open_table(BUCKETS).unwrap();
            for row in index.iter().unwrap() {
                let (k, _) = row.unwrap();
                let (scope, date, _) = k.value();
                for level in 0..crate::store::counters::ARRAY_LEVELS {
                    let key = (level, scope, crate::store::rank::bucket(level, date));
                    let n = buckets.get(key).unwrap().map_or(0, |g| g.value());
                    buckets.insert(key, n + 1).unwrap();
                }
            }
        }
        put_u64(&tx, KEY_VERSION, 2).unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn schema_2_store_is_migrated_to_child_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let ids = {
            let store = Store::open(dir.path()).unwrap();
            let public = account(&store, "t1", "");
            let private = account(&store, "t1", "alice");
            // Dates an hour apart over ~8 days: many buckets at every level.
            let mails: Vec<(i64, String)> = (0..200).map(|i| (i * 3600, format!("m{i}"))).collect();
            let refs: Vec<(i64, &str)> = mails.iter().map(|(d, s)| (*d, s.as_str())).collect();
            let mut ids = put(&store, &public, &refs[..150]);
            ids.extend(put(&store, &private, &refs[150..]));
            ids
        };
        downgrade_to_v2(&dir.path().join(DB_FILE));

        let store = Store::open(dir.path()).unwrap();
        let page = |viewer: Visibility, offset: u32| -> (Vec<u64>, u32) {
            let q = ListQuery {
                offset,
                limit: 3,
                ..ListQuery::new(viewer, "inbox")
            };
            let (p, n) = store.list_messages(&q).unwrap();
            (p.into_iter().map(|m| m.id).collect(), n)
        };
        // Newest first; offset 100 is found by rank through the new arrays.
        let all: Vec<u64> = ids.iter().rev().copied().collect();
        assert_eq!(page(Visibility::All, 100), (all[100..103].to_vec(), 200));
        let bob: Vec<u64> = ids[..150].iter().rev().copied().collect();
        assert_eq!(
            page(Visibility::User("bob".into()), 100),
            (bob[100..103].to_vec(), 150)
        );
        drop(store);

        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        let tx = write_txn(&db).unwrap();
        assert_eq!(get_u64(&tx, KEY_VERSION).unwrap(), Some(SCHEMA_VERSION));
        let buckets = tx.open_table(BUCKETS).unwrap();
        let fine = buckets
            .iter()
            .unwrap()
            .filter(|r| r.as_ref().unwrap().0.value().0 < crate::store::counters::ARRAY_LEVELS)
            .count();
        assert_eq!(
            fine, 0,
            "schema 2 per-bucket rows of the fine levels remain"
        );
        assert!(
            redb::ReadableTableMetadata::len(&tx.open_table(VIEW_COUNTS).unwrap()).unwrap() > 0
        );
    }
}
