//! The store's zstd dictionary (schema 11): codec [`ZSTD_DICT`] rows.
//!
//! Why: a ~4 KB mail is mostly headers whose names, relay hosts, mailer
//! strings and MIME boilerplate repeat from mail to mail, but a lone zstd
//! frame must spell them out again in every row. A dictionary trained on
//! the store's own mail (RFC 8878 section 5, zstd's `ZDICT` trainer)
//! carries them once; docs/PERFORMANCE.md has the figures.
//!
//! A row of this codec is `2 ‖ dictionary id (u32 big-endian) ‖ frame`:
//! the frame records its content size, as in codec 1, but not the id
//! again. The id is the one zstd's trainer writes into the dictionary, a
//! hash of its content (RFC 8878 section 5, `Dictionary_ID`), so a
//! dictionary trained again after damage can never pass for the one a row
//! was packed with; [`Dict::new`] refuses bytes that do not carry their
//! key's id. The dictionaries live in `raw_dicts` (id -> bytes) and are
//! never changed or removed; a row naming an id the table lacks is a
//! storage error.
//!
//! One dictionary serves every account and tenant of the store. Its bytes
//! are fragments of the store's mail, which is acceptable because it sits
//! in the same file as those mails, behind the same file permissions; no
//! D-Bus call, signal or CLI command shows it, and it leaves the file only
//! in a backup, which carries the mails themselves (and must carry the
//! dictionary, or the restored rows could not be read).
//!
//! [`Dicts`] keeps the prepared (parsed) dictionaries, so that a commit or
//! a read does not parse 16 KiB of entropy tables again. An entry is used
//! only while its bytes equal the table's row in the caller's transaction:
//! a swapped or restored database may hold another dictionary under the
//! same id.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use zstd::zstd_safe::{self, CCtx, CDict, CParameter, DCtx, DDict};

use super::{MAX_RAW, STORED};
use crate::error::{Context, Error, Result};

/// Codec byte: dictionary id, then a zstd frame packed with it.
pub const ZSTD_DICT: u8 = 2;
/// The dictionary's size: bench_codec found 64 KiB no better than 16 KiB
/// on ~4 KB mail, and a bigger one costs more to load and to train.
pub const DICT_BYTES: usize = 16 * 1024;
/// Training waits for this many mails (of the batch and the store): fewer
/// give a dictionary that fits those few mails and little else.
pub const TRAIN_MAILS: usize = 200;
/// At most this many mails are sampled for training.
pub const SAMPLE_MAILS: usize = 2000;
/// At most this many bytes of each mail are sampled: the head, where the
/// repeated text is; the trainer's time grows with the sample bytes.
pub const SAMPLE_HEAD: usize = 8 * 1024;
/// Prepared dictionaries kept at once (one per store in practice; more only
/// across swaps).
const CACHED: usize = 4;
/// Bytes of codec and id before the frame.
const HEADER: usize = 5;

/// A dictionary, prepared for packing and unpacking.
pub struct Dict {
    id: u32,
    bytes: Vec<u8>,
    cdict: CDict<'static>,
    ddict: DDict<'static>,
}

impl std::fmt::Debug for Dict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dict")
            .field("id", &self.id)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Dict {
    /// Prepares `bytes` as dictionary `id`; an error if zstd refuses them
    /// or they carry another id (a damaged row of `raw_dicts`).
    pub fn new(id: u32, bytes: Vec<u8>) -> Result<Dict> {
        if zstd_safe::get_dict_id_from_dict(&bytes).map(|n| n.get()) != Some(id) {
            return Err(Error::storage_msg(format!(
                "stored mail dictionary {id} does not carry its id"
            )));
        }
        let cdict = CDict::try_create(&bytes, super::LEVEL);
        let ddict = DDict::try_create(&bytes);
        match (cdict, ddict) {
            (Some(cdict), Some(ddict)) => Ok(Dict {
                id,
                bytes,
                cdict,
                ddict,
            }),
            _ => Err(Error::storage_msg(format!(
                "stored mail dictionary {id} is not a valid zstd dictionary"
            ))),
        }
    }

    /// Prepares a dictionary just trained, under the id zstd gave it.
    pub fn trained(bytes: Vec<u8>) -> Result<Dict> {
        let id = zstd_safe::get_dict_id_from_dict(&bytes)
            .ok_or_else(|| Error::storage_msg("the trained mail dictionary has no id".into()))?;
        Dict::new(id.get(), bytes)
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The stored form of `raw`: packed with this dictionary, or as it is
    /// when that is not smaller (never larger than the mail plus one byte).
    pub fn pack(&self, raw: &[u8]) -> Result<Vec<u8>> {
        let frame = self.frame(raw)?;
        let mut out = Vec::with_capacity(HEADER + frame.len().min(raw.len()));
        if HEADER + frame.len() < 1 + raw.len() {
            out.push(ZSTD_DICT);
            out.extend_from_slice(&self.id.to_be_bytes());
            out.extend_from_slice(&frame);
        } else {
            out.push(STORED);
            out.extend_from_slice(raw);
        }
        Ok(out)
    }

    fn frame(&self, raw: &[u8]) -> Result<Vec<u8>> {
        let failed = |code| Error::storage_msg(format!("compress a mail: {}", zstd_err(code)));
        let mut cctx =
            CCtx::try_create().ok_or_else(|| Error::storage_msg("compress a mail".into()))?;
        cctx.set_parameter(CParameter::ContentSizeFlag(true))
            .map_err(failed)?;
        cctx.set_parameter(CParameter::DictIdFlag(false))
            .map_err(failed)?;
        cctx.ref_cdict(&self.cdict).map_err(failed)?;
        let mut out = Vec::with_capacity(zstd_safe::compress_bound(raw.len()));
        cctx.compress2(&mut out, raw).map_err(failed)?;
        Ok(out)
    }

    /// The raw bytes of a frame packed with this dictionary.
    fn unpack(&self, frame: &[u8]) -> Result<Vec<u8>> {
        let size = zstd_safe::get_frame_content_size(frame)
            .ok()
            .flatten()
            .filter(|n| *n <= MAX_RAW)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| Error::storage_msg("stored mail has no valid compressed size".into()))?;
        let mut dctx =
            DCtx::try_create().ok_or_else(|| Error::storage_msg("decompress a mail".into()))?;
        let mut raw = Vec::with_capacity(size);
        dctx.decompress_using_ddict(&mut raw, frame, &self.ddict)
            .map_err(|code| Error::storage_msg(format!("decompress a mail: {}", zstd_err(code))))?;
        if raw.len() != size {
            return Err(Error::storage_msg(
                "stored mail is shorter than its frame says".into(),
            ));
        }
        Ok(raw)
    }
}

fn zstd_err(code: usize) -> &'static str {
    zstd_safe::get_error_name(code)
}

/// The dictionary id a codec-2 row names, and its frame.
pub fn split(payload: &[u8]) -> Result<(u32, &[u8])> {
    let (id, frame) = payload
        .split_first_chunk::<4>()
        .ok_or_else(|| Error::storage_msg("stored mail row names no dictionary".into()))?;
    Ok((u32::from_be_bytes(*id), frame))
}

/// Unpacks the frame of a codec-2 row whose dictionary bytes are `bytes`
/// (None: the store does not hold it).
pub fn unpack_with(dicts: &Dicts, id: u32, bytes: Option<&[u8]>, frame: &[u8]) -> Result<Vec<u8>> {
    let bytes = bytes.ok_or_else(|| {
        Error::storage_msg(format!(
            "stored mail names dictionary {id}, which the store does not hold"
        ))
    })?;
    dicts.prepared(id, bytes)?.unpack(frame)
}

/// Trains a dictionary on `samples` (mail heads); an error when zstd's
/// trainer finds too little to learn from (too few or too uniform samples).
pub fn train(samples: &[&[u8]]) -> Result<Vec<u8>> {
    zstd::dict::from_samples(samples, DICT_BYTES).context("train the mail dictionary")
}

/// The prepared dictionaries of a store, and who is training one.
#[derive(Debug, Default)]
pub struct Dicts {
    prepared: Mutex<Vec<Arc<Dict>>>,
    training: Mutex<Training>,
}

/// The state of training: held by the one caller that trains.
#[derive(Debug, Default)]
pub struct Training {
    /// Samples of the last training that zstd refused; the next try waits
    /// for twice as many, so that a store of odd mail does not pay for a
    /// failed training with every batch.
    pub refused_at: usize,
}

impl Dicts {
    /// Dictionary `id` of `bytes`, prepared once.
    pub fn prepared(&self, id: u32, bytes: &[u8]) -> Result<Arc<Dict>> {
        let mut cache = self.prepared.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = cache.iter().find(|d| d.id == id && d.bytes == bytes) {
            return Ok(Arc::clone(d));
        }
        let d = Arc::new(Dict::new(id, bytes.to_vec())?);
        if cache.len() >= CACHED {
            cache.remove(0);
        }
        cache.push(Arc::clone(&d));
        Ok(d)
    }

    /// Keeps an already prepared dictionary (a freshly trained one).
    pub fn keep(&self, dict: &Arc<Dict>) {
        let mut cache = self.prepared.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHED {
            cache.remove(0);
        }
        cache.push(Arc::clone(dict));
    }

    /// The right to train, unless another caller is training now (its
    /// batch then goes without a dictionary, as before one exists).
    pub fn try_train(&self) -> Option<MutexGuard<'_, Training>> {
        match self.training.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}
