//! Mail keys (super::digest) for the mails stored before they existed,
//! built once at open, in bounded transactions after the schema is
//! current, like the packing of schema 9 (super::compress::pack_legacy).
//!
//! No schema step: the keys are more rows of the content index and two
//! summary fields with defaults, which an older postfachd ignores. What
//! the pass needs to resume is one number in `meta`, `rekeyed_upto`: the
//! highest message id done (ids only grow, and every mail committed since
//! this build has its keys already). A kill between two transactions
//! leaves a store that recognises what the keys before the mark
//! recognise; the next open goes on from the mark.
//!
//! `commit_batch` moves the mark past a batch that follows it directly,
//! so a store that is keyed stays keyed without this pass reading the
//! summaries of the mail fetched since the last start; and an open with
//! nothing past the mark writes nothing.
//!
//! A mail deleted before this build left only its raw hash as a
//! tombstone: it is still kept out if the server sends the same bytes
//! again, but not under rewritten bookkeeping fields (its bytes are gone).

use std::io::Read;
use std::path::Path;

use redb::{Database, ReadableTable, WriteTransaction};

use super::blobs::BLOB_DIR;
use super::compress::Dicts;
use super::content::Content;
use super::digest::{Digester, MailKeys};
use super::keytags::tag_of;
use super::schema::{get_u64, put_u64, BLOBS, KEY_REKEYED, MESSAGES, RAW, RAW_DICTS, RAW_PACKED};
use super::summary;
use super::summary::Labels;
use super::write_txn;
use crate::error::{Context, Error, Result};

/// Per transaction: at most this many mails, and about this many bytes read.
const REKEY_ROWS: usize = 500;
const REKEY_BYTES: u64 = 32 * 1024 * 1024;

/// Gives every stored fetched mail its keys; returns how many got them.
pub(super) fn rekey_stored(db: &Database, state_dir: &Path) -> Result<u64> {
    let blobs = state_dir.join(BLOB_DIR);
    let mut keyed = 0u64;
    let dicts = Dicts::default();
    loop {
        let tx = write_txn(db)?;
        // Nothing after the mark: the transaction is dropped unwritten, so
        // opening a store that is keyed writes nothing (super::opening).
        let Some((n, done)) = rekey_some(&tx, &blobs, &dicts)? else {
            return Ok(keyed);
        };
        tx.commit().context("commit mail keys")?;
        keyed += n;
        if n > 0 {
            tracing::info!(keyed, "keying stored mails for servers that rewrite them");
        }
        if done {
            return Ok(keyed);
        }
    }
}

/// One bounded transaction: (mails keyed, all done), or None when no mail
/// is past the mark.
fn rekey_some(tx: &WriteTransaction, blobs: &Path, dicts: &Dicts) -> Result<Option<(u64, bool)>> {
    let from = get_u64(tx, KEY_REKEYED)?.unwrap_or(0);
    let mut messages = tx.open_table(MESSAGES).context("open messages")?;
    let rows: Vec<(u64, Vec<u8>)> = {
        let mut rows = Vec::new();
        for row in messages
            .range(from.saturating_add(1)..)
            .context("read messages")?
            .take(REKEY_ROWS)
        {
            let (k, v) = row.context("read messages")?;
            rows.push((k.value(), v.value().to_vec()));
        }
        rows
    };
    let Some(last) = rows.last().map(|(id, _)| *id) else {
        return Ok(None);
    };
    let mut content = Content::open(tx)?;
    let (mut keyed, mut bytes, mut upto) = (0u64, 0u64, from);
    let full = rows.len() == REKEY_ROWS;
    let labels = Labels::write(tx);
    for (id, json) in rows {
        if bytes >= REKEY_BYTES {
            break;
        }
        upto = id;
        let Ok(mut meta) = summary::decode(&labels, id, &json) else {
            continue;
        };
        let acct = meta.account.clone();
        // Only fetched mail has a content row of its own (not the outbox's
        // or a saved draft), and only those that have none need keys.
        let fetched = match meta.keys.raw {
            Some(tag) => content.names(&acct, tag, id)?,
            None => false,
        };
        if !fetched || meta.keys.header.is_some() {
            continue;
        }
        let Some(keys) = keys_of(tx, blobs, dicts, id)? else {
            continue;
        };
        bytes = bytes.saturating_add(meta.size);
        // As for new mail (super::messages): rows only where the keys
        // differ from what the raw hash already recognises.
        if keys.bookkeeping {
            for key in [keys.mail.as_str(), keys.header.as_str()] {
                content.add(&acct, key, id)?;
            }
            meta.keys.mail = tag_of(&keys.mail);
        }
        meta.keys.header = tag_of(&keys.header);
        messages
            .insert(id, summary::encode(&labels, &meta)?.as_slice())
            .context("write message")?;
        keyed += 1;
    }
    put_u64(tx, KEY_REKEYED, upto)?;
    Ok(Some((keyed, upto == last && !full)))
}

/// The keys of stored mail `id`: from its row, or streamed from its blob
/// file. None if its bytes are gone (the health check reports that).
fn keys_of(
    tx: &WriteTransaction,
    blobs: &Path,
    dicts: &Dicts,
    id: u64,
) -> Result<Option<MailKeys>> {
    let packed = tx.open_table(RAW_PACKED).context("open raw")?;
    if let Some(v) = packed.get(id).context("read raw mail")? {
        let dict_rows = tx.open_table(RAW_DICTS).context("open mail dictionaries")?;
        let raw = super::compress::unpack_stored(v.value(), &dict_rows, dicts)?;
        return Ok(Some(MailKeys::of(&raw)));
    }
    let legacy = tx.open_table(RAW).context("open raw")?;
    if let Some(v) = legacy.get(id).context("read raw mail")? {
        return Ok(Some(MailKeys::of(v.value())));
    }
    if tx
        .open_table(BLOBS)
        .context("open blobs")?
        .get(id)
        .context("read blob row")?
        .is_none()
    {
        return Ok(None);
    }
    let path = blobs.join(id.to_string());
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::storage(
                &format!("cannot read {}", path.display()),
                e,
            ))
        }
    };
    let mut d = Digester::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::storage(&format!("cannot read {}", path.display()), e))?;
        if n == 0 {
            return Ok(Some(d.finish()));
        }
        d.update(buf.get(..n).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests;
