//! Training the store's dictionary from stored mail, and repacking the rows
//! stored before it (schema 11).
//!
//! Training happens outside any write transaction (it takes a fraction of
//! a second to seconds). The dictionary row is committed in the same
//! transaction as the first rows packed with it — a fetched batch
//! (`super::super::packer`) or the first step here — so no committed row
//! ever names a dictionary that is not stored.
//!
//! Rows of codec 0 and 1 (an older store, or the first batches of a
//! new store, before it held [`TRAIN_MAILS`](super::dict::TRAIN_MAILS)
//! mails) are repacked in transactions of at most [`EXAMINE_ROWS`] rows or
//! [`super::PACK_BYTES`] repacked bytes, and only where the dictionary
//! makes the row smaller. The progress is `meta.dict_packed_upto`, the
//! highest id offered to the dictionary, moved in the same transaction as
//! the rows: a kill at any point leaves every row in its old or its new
//! form, both readable, and the next open goes on after the mark. Commits
//! of batches packed with the dictionary move the mark along when they
//! follow it, so a store that is caught up reads nothing at open. It runs
//! at open and right after a fetch trained the dictionary.

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::dict::{self, Dict, Dicts, SAMPLE_HEAD, SAMPLE_MAILS, TRAIN_MAILS};
use super::{unpack, PACK_BYTES, STORED, ZSTD};
use crate::error::{Context, Error, Result};
use crate::store::schema::{get_u64, put_u64, KEY_DICT_PACKED, RAW_DICTS, RAW_PACKED};
use crate::store::write_txn;

/// Rows read per transaction; most are skipped unchanged, so more than
/// [`super::PACK_ROWS`].
pub const EXAMINE_ROWS: usize = 1000;

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Rows offered to the dictionary.
    pub examined: usize,
    /// Rows replaced by a smaller one.
    pub repacked: usize,
    /// The dictionary row was written by this step.
    pub stored_dict: bool,
    /// Nothing is left after the mark.
    pub done: bool,
}

/// At open: the store's dictionary, trained now from stored mail if it
/// has none and holds enough, and the rows before it repacked. Returns
/// how many rows were repacked.
pub(in crate::store) fn at_open(db: &Database) -> Result<u64> {
    let dicts = Dicts::default();
    let Some(dict) = stored_or_trained(db, &dicts)? else {
        return Ok(0);
    };
    let mut repacked = 0u64;
    loop {
        let tx = write_txn(db)?;
        let step = step(&tx, &dict)?;
        if step.examined == 0 && !step.stored_dict {
            return Ok(repacked);
        }
        tx.commit().context("commit repacked mails")?;
        repacked += step.repacked as u64;
        tracing::info!(repacked, "packing stored mails with the store's dictionary");
        if step.done {
            return Ok(repacked);
        }
    }
}

/// The stored dictionary, or one trained on the stored mail (not yet
/// stored: the first step stores it); None while the store holds too
/// little mail, or when zstd's trainer refuses the samples.
fn stored_or_trained(db: &Database, dicts: &Dicts) -> Result<Option<std::sync::Arc<Dict>>> {
    let tx = db.begin_read().context("begin read")?;
    let rows = tx.open_table(RAW_DICTS).context("open mail dictionaries")?;
    if let Some((id, bytes)) = rows.last().context("read mail dictionaries")? {
        return dicts.prepared(id.value(), bytes.value()).map(Some);
    }
    let packed = tx.open_table(RAW_PACKED).context("open raw")?;
    if (packed.len().context("count raw mails")? as usize) < TRAIN_MAILS {
        return Ok(None);
    }
    let samples = stored_samples(&packed, SAMPLE_MAILS)?;
    if samples.len() < TRAIN_MAILS {
        return Ok(None);
    }
    let heads: Vec<&[u8]> = samples.iter().map(Vec::as_slice).collect();
    tracing::info!(
        samples = heads.len(),
        "training the store's mail dictionary"
    );
    match dict::train(&heads).and_then(Dict::trained) {
        Ok(d) => Ok(Some(std::sync::Arc::new(d))),
        Err(e) => {
            tracing::warn!("mail dictionary not trained, mail stays packed without: {e}");
            Ok(None)
        }
    }
}

/// The heads of up to `max` stored mails of codec 0 or 1, oldest first;
/// a damaged row is left out (the health check reports it).
pub fn stored_samples<T: ReadableTable<u64, &'static [u8]>>(
    packed: &T,
    max: usize,
) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for row in packed.iter().context("read raw mails")? {
        if out.len() >= max {
            break;
        }
        let (_, v) = row.context("read raw mail")?;
        if !matches!(v.value().first(), Some(&STORED) | Some(&ZSTD)) {
            continue;
        }
        if let Ok(mut raw) = unpack(v.value()) {
            raw.truncate(SAMPLE_HEAD);
            out.push(raw);
        }
    }
    Ok(out)
}

/// One bounded transaction: stores `dict` if the table lacks it, and
/// repacks the rows after the mark with it where that makes them smaller.
pub fn step(tx: &WriteTransaction, dict: &Dict) -> Result<Step> {
    let mut out = Step {
        stored_dict: store_dict(tx, dict)?,
        ..Step::default()
    };
    let mark = get_u64(tx, KEY_DICT_PACKED)?.unwrap_or(0);
    let mut packed = tx.open_table(RAW_PACKED).context("open raw")?;
    let mut updates = Vec::new();
    let (mut last, mut bytes) = (mark, 0usize);
    out.done = true;
    for row in packed
        .range(mark.saturating_add(1)..)
        .context("read raw mails")?
    {
        if out.examined >= EXAMINE_ROWS || bytes >= PACK_BYTES {
            out.done = false;
            break;
        }
        let (k, v) = row.context("read raw mail")?;
        out.examined += 1;
        last = k.value();
        let old = v.value();
        if !matches!(old.first(), Some(&STORED) | Some(&ZSTD)) {
            continue;
        }
        let raw = match unpack(old) {
            Ok(raw) => raw,
            Err(e) => {
                // Left as it is: the health check reports it, and a damaged
                // row must not stop the store from opening.
                tracing::warn!(id = last, "stored mail not repacked: {e}");
                continue;
            }
        };
        let new = dict.pack(&raw)?;
        if new.len() < old.len() {
            bytes += raw.len();
            updates.push((last, new));
        }
    }
    out.repacked = updates.len();
    for (id, row) in updates {
        packed
            .insert(id, row.as_slice())
            .context("write raw mail")?;
    }
    if last > mark {
        put_u64(tx, KEY_DICT_PACKED, last)?;
    }
    Ok(out)
}

/// Writes `dict`'s row unless the table holds it; true if written. Another
/// dictionary under its id is a storage error: rows packed with one cannot
/// be read with the other.
pub fn store_dict(tx: &WriteTransaction, dict: &Dict) -> Result<bool> {
    let mut rows = tx.open_table(RAW_DICTS).context("open mail dictionaries")?;
    let same = rows
        .get(dict.id())
        .context("read mail dictionaries")?
        .map(|b| b.value() == dict.bytes());
    match same {
        Some(true) => Ok(false),
        Some(false) => Err(Error::storage_msg(format!(
            "the store holds another mail dictionary {}",
            dict.id()
        ))),
        None => {
            rows.insert(dict.id(), dict.bytes())
                .context("write mail dictionary")?;
            Ok(true)
        }
    }
}
