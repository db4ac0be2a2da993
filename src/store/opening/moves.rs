//! The conversions a schema step leaves to the open: each moves older
//! rows to a newer layout in bounded transactions after the migration
//! commits, and resumes wherever a kill left it (the rows left behind, or
//! a mark in `meta`, are the progress). They run on every open, before the
//! store is shared; one that finds nothing to do costs a table lookup.
//!
//! The order matters where one reads what another writes: the word index
//! is packed (10) before its places are numbered (17), and the view lists
//! get scope numbers (14) before they are chunked (16).

use std::path::Path;

use redb::Database;

use crate::error::Result;

/// Run every move at open, in order.
pub(in crate::store) fn at_open(db: &Database, dir: &Path) -> Result<()> {
    // Schema 8's packing of older raw rows, resumed wherever a kill left it.
    crate::store::compress::pack_legacy(db)?;
    // Schema 10's packing of the word index, likewise resumed.
    crate::store::search::pack::pack_legacy(db)?;
    // Schema 17's place numbers in the older word index chunks, likewise.
    crate::store::search::places::pack_legacy(db)?;
    // Schema 14's move of the view lists to scope numbers, likewise resumed.
    crate::store::views::pack::pack_legacy(db)?;
    // Schema 15's move of the content index to binary keys, likewise resumed.
    crate::store::content::pack::pack_legacy(db)?;
    // Schema 16's packing of the view lists into chunks, likewise resumed.
    crate::store::views::rechunk::move_entries(db)?;
    // Schema 19's deletion of the 17-minute view counters, likewise resumed.
    crate::store::views::finest::drop_level_0(db)?;
    // Schema 20's move of the IMAP server ids into chunks, likewise.
    crate::store::server_ids::moves::move_rows(db)?;
    // Schema 11's dictionary: trained if the store has enough mail, and
    // the rows before it repacked, resumed wherever a kill left it.
    crate::store::compress::recompress::at_open(db)?;
    // Schema 12's binary summaries for older JSON rows, likewise resumed.
    crate::store::summary::pack_legacy(db)?;
    // Mail keys for mails stored before them, likewise resumed.
    crate::store::rekey::rekey_stored(db, dir)?;
    Ok(())
}
