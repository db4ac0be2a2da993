//! How a fetched batch's raw rows are packed: with the store's dictionary
//! once it has one, and the batch that brings the store to
//! [`TRAIN_MAILS`] mails trains it (see `super::compress::dict` and
//! `super::compress::recompress`).
//!
//! The dictionary is found or trained before the write transaction begins,
//! so other accounts' commits do not wait for it; inside the transaction
//! [`Packer::settle`] checks that the table still holds it (a restore may
//! have swapped the database meanwhile) or stores it with the batch (a
//! freshly trained one), and otherwise repacks the batch without it.

use std::sync::{Arc, MutexGuard};

use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::compress::dict::{self, Dict, Training, SAMPLE_HEAD, SAMPLE_MAILS, TRAIN_MAILS};
use super::compress::recompress::{self, stored_samples};
use super::schema::{get_u64, put_u64, KEY_DICT_PACKED, RAW_DICTS, RAW_PACKED};
use super::{NewMail, Raw, Store};
use crate::error::{Context, Result};

/// The packing of one batch.
pub(super) struct Packer<'a> {
    dict: Option<Arc<Dict>>,
    /// Trained for this batch: stored with it. The guard keeps a second
    /// batch from training meanwhile.
    trained: Option<MutexGuard<'a, Training>>,
}

impl Store {
    /// The packer for `mails` (module docs).
    pub(super) fn packer(&self, mails: &[NewMail]) -> Result<Packer<'_>> {
        let none = Packer {
            dict: None,
            trained: None,
        };
        let (stored, count) = {
            let tx = self.read()?;
            let rows = tx.open_table(RAW_DICTS).context("open mail dictionaries")?;
            if let Some((id, bytes)) = rows.last().context("read mail dictionaries")? {
                let dict = self.dicts.prepared(id.value(), bytes.value())?;
                return Ok(Packer {
                    dict: Some(dict),
                    trained: None,
                });
            }
            let packed = tx.open_table(RAW_PACKED).context("open raw")?;
            let count = packed.len().context("count raw mails")? as usize;
            let ours = mails.iter().filter(|m| is_row(&m.raw)).count();
            if count + ours < TRAIN_MAILS {
                return Ok(none);
            }
            let Some(training) = self.dicts.try_train() else {
                return Ok(none);
            };
            if (count + ours) < training.refused_at.saturating_mul(2) {
                return Ok(none);
            }
            drop(training);
            let room = SAMPLE_MAILS.saturating_sub(ours.min(SAMPLE_MAILS));
            (stored_samples(&packed, room)?, count + ours)
        };
        let Some(mut training) = self.dicts.try_train() else {
            return Ok(none);
        };
        let mut heads: Vec<&[u8]> = stored.iter().map(Vec::as_slice).collect();
        heads.extend(mails.iter().filter_map(|m| match &m.raw {
            Raw::Bytes(b) => Some(&b[..b.len().min(SAMPLE_HEAD)]),
            Raw::Blob(_) => None,
        }));
        heads.truncate(SAMPLE_MAILS);
        tracing::info!(
            samples = heads.len(),
            "training the store's mail dictionary"
        );
        match dict::train(&heads).and_then(Dict::trained) {
            Ok(d) => {
                let d = Arc::new(d);
                self.dicts.keep(&d);
                Ok(Packer {
                    dict: Some(d),
                    trained: Some(training),
                })
            }
            Err(e) => {
                training.refused_at = count;
                tracing::warn!("mail dictionary not trained, mail stays packed without: {e}");
                Ok(none)
            }
        }
    }
}

fn is_row(raw: &Raw) -> bool {
    matches!(raw, Raw::Bytes(_))
}

impl Packer<'_> {
    /// The stored form of `raw`.
    pub(super) fn pack(&self, raw: &[u8]) -> Result<Vec<u8>> {
        match &self.dict {
            Some(d) => d.pack(raw),
            None => super::compress::pack(raw),
        }
    }

    /// Inside the batch's transaction: stores a freshly trained dictionary,
    /// or checks that the table still holds the one `packed` used; if not,
    /// repacks `packed` (one row per mail of `mails`) without it.
    pub(super) fn settle(
        &mut self,
        tx: &WriteTransaction,
        mails: &[NewMail],
        packed: &mut [Option<Vec<u8>>],
    ) -> Result<()> {
        let Some(d) = &self.dict else {
            return Ok(());
        };
        let holds = {
            let rows = tx.open_table(RAW_DICTS).context("open mail dictionaries")?;
            let stored = rows.get(d.id()).context("read mail dictionaries")?;
            match stored {
                Some(b) => b.value() == d.bytes(),
                // A fresh dictionary goes only into a store without one.
                None => {
                    self.trained.is_some() && rows.is_empty().context("read mail dictionaries")?
                }
            }
        };
        if holds {
            recompress::store_dict(tx, d)?;
            return Ok(());
        }
        self.dict = None;
        self.trained = None;
        for (row, mail) in packed.iter_mut().zip(mails) {
            if let Raw::Bytes(b) = &mail.raw {
                *row = Some(super::compress::pack(b)?);
            }
        }
        Ok(())
    }

    /// After the batch's rows `first..next` are written: a mark right
    /// before them moves past them, since they are packed with the
    /// dictionary already.
    pub(super) fn advance(&self, tx: &WriteTransaction, first: u64, next: u64) -> Result<()> {
        if self.dict.is_none() || self.trained.is_some() || next <= first {
            return Ok(());
        }
        let mark = get_u64(tx, KEY_DICT_PACKED)?.unwrap_or(0);
        if mark.saturating_add(1) == first {
            put_u64(tx, KEY_DICT_PACKED, next - 1)?;
        }
        Ok(())
    }

    /// After the batch committed: if it stored a new dictionary, the rows
    /// stored before it are repacked now (bounded steps); a failure is only
    /// logged, since the batch is stored and the next open goes on.
    pub(super) fn after_commit(self, store: &Store) {
        let (Some(d), Some(_training)) = (self.dict, self.trained) else {
            return;
        };
        let mut repacked = 0usize;
        loop {
            let step = store.write().and_then(|tx| {
                let step = recompress::step(&tx, &d)?;
                tx.commit().context("commit repacked mails")?;
                Ok(step)
            });
            match step {
                Ok(s) => {
                    repacked += s.repacked;
                    if s.done {
                        tracing::info!(repacked, "repacked stored mail with the new dictionary");
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!("stored mail not repacked with the new dictionary: {e}");
                    return;
                }
            }
        }
    }
}
