//! One batch of RETRs on its way into the store: where each mail's bytes
//! go, decided by the bytes that arrive rather than by the LIST size, and
//! what the batch may hold in memory.
//!
//! A server's LIST size may lie (a mail listed as 100 bytes may be 90 MB
//! long). So every mail starts in memory and moves into a blob file
//! (crate::store::blobs) once it passes [`BLOB_MIN`], whatever was listed;
//! a mail listed above it goes into a blob from its first byte. And the
//! batch, planned by listed sizes, stops asking for more RETRs once the
//! mails it holds in memory reach its byte budget; the RETRs already in
//! flight then stay in memory only as long as they fit in the budget once
//! more, and go into blob files beyond that. So a batch holds at most
//! twice its budget plus a blob head (`HEAD_BYTES`) per RETR in flight,
//! whatever the server sends; an honest server never comes near that.

use super::client::{Mails, Retr};
use crate::error::Result;
use crate::fetch::blocking;
use crate::store::blobs::is_big;
use crate::store::{BlobWriter, Raw, Store, BLOB_MIN};

/// One mail on the server as this fetch sees it.
#[derive(Debug)]
pub(super) struct Entry {
    pub n: u32,
    /// Its LIST size, which may lie.
    pub size: u64,
    /// Server id, when known before RETR (UIDL); None: keyed by content.
    pub key: Option<String>,
}

impl Entry {
    /// How warnings name it: number, server id, and the LIST size when
    /// the mail turned out to be another.
    pub(super) fn label(&self, actual: u64) -> String {
        let id = self.key.as_deref().unwrap_or("no UIDL");
        if actual == self.size {
            format!("message {} ({id})", self.n)
        } else {
            format!("message {} ({id}, listed as {} bytes)", self.n, self.size)
        }
    }
}

/// What became of one RETR.
#[derive(Debug)]
pub(super) enum Got {
    Mail(Raw),
    /// The server refused it: its text.
    Refused(String),
    /// Longer than the limit: its length.
    TooLarge(u64),
}

/// The [`Mails`] of one batch.
pub(super) struct Download<'a> {
    store: &'a Store,
    entries: &'a [&'a Entry],
    /// Bytes the batch may hold in memory before it asks for no more.
    budget: u64,
    /// Bytes the finished mails hold in memory.
    held: u64,
    /// The mail being read, by its index in `entries`.
    current: Option<(usize, Spill<'a>)>,
    got: Vec<Got>,
}

impl<'a> Download<'a> {
    pub fn new(store: &'a Store, entries: &'a [&'a Entry], budget: u64) -> Self {
        Download {
            store,
            entries,
            budget,
            held: 0,
            current: None,
            got: Vec::with_capacity(entries.len()),
        }
    }

    /// What became of each mail answered, in order.
    pub fn into_got(self) -> Vec<Got> {
        self.got
    }

    /// Where the mail at `i` moves into a blob file: see the module docs.
    fn spill_at(&self, i: usize) -> u64 {
        let listed = self.entries.get(i).map_or(0, |e| e.size);
        if is_big(listed) {
            return 0;
        }
        let room = self.budget.saturating_mul(2).saturating_sub(self.held);
        BLOB_MIN.min(room)
    }
}

impl Mails for Download<'_> {
    fn more(&self) -> bool {
        self.held < self.budget
    }

    fn piece(&mut self, i: usize, bytes: &[u8]) -> Result<()> {
        if self.current.as_ref().is_none_or(|(j, _)| *j != i) {
            self.current = Some((i, Spill::new(self.store, self.spill_at(i))));
        }
        match &mut self.current {
            Some((_, spill)) => spill.write(bytes),
            None => Ok(()),
        }
    }

    fn done(&mut self, i: usize, reply: Retr) -> Result<()> {
        let spill = match self.current.take() {
            Some((j, spill)) if j == i => Some(spill),
            _ => None,
        };
        let got = match reply {
            Retr::Mail(_) => {
                let raw = match spill {
                    Some(s) => s.finish()?,
                    None => Raw::Bytes(Vec::new()),
                };
                self.held = self.held.saturating_add(raw.in_memory());
                Got::Mail(raw)
            }
            // Dropping the spill removes its staging file, if any.
            Retr::TooLarge(len) => Got::TooLarge(len),
            Retr::Refused(text) => Got::Refused(text),
        };
        self.got.push(got);
        Ok(())
    }
}

/// One mail's bytes: memory until they pass `at`, then a blob file.
struct Spill<'a> {
    store: &'a Store,
    at: u64,
    mem: Vec<u8>,
    blob: Option<BlobWriter>,
}

impl<'a> Spill<'a> {
    fn new(store: &'a Store, at: u64) -> Self {
        Spill {
            store,
            at,
            mem: Vec::new(),
            blob: None,
        }
    }

    fn write(&mut self, piece: &[u8]) -> Result<()> {
        if self.blob.is_none() && (self.mem.len() + piece.len()) as u64 > self.at {
            let mut w = blocking(|| self.store.blob_writer())?;
            let before = std::mem::take(&mut self.mem);
            if !before.is_empty() {
                blocking(|| w.write(&before))?;
            }
            self.blob = Some(w);
        }
        match &mut self.blob {
            Some(w) => blocking(|| w.write(piece)),
            None => {
                self.mem.extend_from_slice(piece);
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<Raw> {
        match self.blob {
            Some(w) => Ok(Raw::Blob(blocking(|| w.finish())?)),
            None => Ok(Raw::Bytes(self.mem)),
        }
    }
}
