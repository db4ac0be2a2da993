//! The conversion of older summary rows (JSON of schema 11 and older,
//! [`BINARY`](super::BINARY) of schema 12, [`LABELLED`](super::LABELLED) of schemas 13 to
//! 17) into the tagged form of schema 18, at open, in bounded
//! transactions.

use redb::{Database, ReadableTable, WriteTransaction};

use super::{decode, encode, Labels, TAGGED};
use crate::error::{Context, Result};
use crate::store::schema::{get_u64, put_u64, MESSAGES, META};
use crate::store::write_txn;

/// Rows read per transaction of [`pack_legacy`] (about 600 bytes each as
/// JSON, a few hundred in the older binary forms).
pub const PACK_ROWS: usize = 1000;
/// In `meta`, present while older rows may be left: the highest message
/// id converted so far (0: none). The schema steps to 12, 13 and 18 set it;
/// the last transaction of [`pack_legacy`] removes it.
pub const KEY_PACKED: &str = "summaries_packed_upto";

/// Rewrites the older rows of a store migrated to schema 18 as tagged
/// rows, at every open until none is left, in transactions of
/// [`PACK_ROWS`] rows. Each transaction converts the rows after the mark
/// [`KEY_PACKED`], adds the labels they need and moves the mark in the
/// same commit, so a kill at any point leaves rows of either form, all
/// readable (every label a committed row names is committed with it), and
/// the next open goes on from the mark. A row that does not decode is
/// left as it is (its readers report it). Without the mark (a current or
/// new store) nothing is written.
pub(in crate::store) fn pack_legacy(db: &Database) -> Result<u64> {
    let mut packed = 0u64;
    loop {
        let tx = write_txn(db)?;
        let Some(from) = get_u64(&tx, KEY_PACKED)? else {
            return Ok(packed);
        };
        let (n, done) = pack_some(&tx, from)?;
        tx.commit().context("commit converted summaries")?;
        packed += n;
        tracing::info!(packed, "converting stored summaries (schema 18)");
        if done {
            return Ok(packed);
        }
    }
}

/// One transaction of [`pack_legacy`]: (rows converted, all done).
pub(super) fn pack_some(tx: &WriteTransaction, from: u64) -> Result<(u64, bool)> {
    let labels = Labels::write(tx);
    let mut messages = tx.open_table(MESSAGES).context("open messages")?;
    let rows: Vec<(u64, Vec<u8>)> = messages
        .range(from.saturating_add(1)..)
        .context("read messages")?
        .take(PACK_ROWS)
        .map(|row| {
            let (k, v) = row.context("read messages")?;
            Ok((k.value(), v.value().to_vec()))
        })
        .collect::<Result<_>>()?;
    let mut converted = 0;
    for (id, row) in &rows {
        if row.first() == Some(&TAGGED) {
            continue;
        }
        match decode(&labels, *id, row) {
            Ok(m) => {
                messages
                    .insert(*id, encode(&labels, &m)?.as_slice())
                    .context("write message")?;
                converted += 1;
            }
            Err(e) => tracing::warn!(id, "summary left as it is: {e}"),
        }
    }
    match rows.last() {
        Some((last, _)) if rows.len() == PACK_ROWS => {
            put_u64(tx, KEY_PACKED, *last)?;
            Ok((converted, false))
        }
        _ => {
            let mut meta = tx.open_table(META).context("open meta")?;
            meta.remove(KEY_PACKED).context("write meta")?;
            Ok((converted, true))
        }
    }
}

#[cfg(test)]
mod tests;
