//! A consistent view of the whole store while fetching goes on: what a
//! backup reads.
//!
//! The tables: a redb read transaction sees the store as of its start,
//! whatever commits meanwhile (MVCC). The big mails: files in `blobs/`,
//! which the snapshot's `blobs` rows name. A committed blob file is never
//! rewritten (message ids are not reused once committed), so those files
//! stay what the snapshot saw, except for deletion: a snapshot pins the
//! blobs, and the files of mails deleted while it lives stay until it is
//! dropped (`super::blobs::sweep`). A swap of the database
//! (`super::Store::swap`) waits until the snapshot is dropped, or gives up.

use std::path::PathBuf;

use redb::{ReadTransaction, ReadableTable};

use super::blobs::{BlobDir, Pin};
use super::schema::BLOBS;
use super::{ReadTx, Store};
use crate::error::{Context, Result};

/// See the module docs. Not Send: it lives on the thread that took it.
pub struct Snapshot<'a> {
    tx: ReadTx<'a>,
    blobs: &'a BlobDir,
    _pin: Pin<'a>,
}

impl std::fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

impl Store {
    /// A snapshot of the tables and the blob files they name.
    pub fn snapshot(&self) -> Result<Snapshot<'_>> {
        self.call("take a snapshot", || {
            // Pinned before the transaction starts: a deletion that
            // commits after the start leaves its file in place.
            let pin = self.blobs.pin();
            let tx = self.read()?;
            Ok(Snapshot {
                tx,
                blobs: &self.blobs,
                _pin: pin,
            })
        })
    }
}

impl Snapshot<'_> {
    /// Every table as of the snapshot.
    pub fn tables(&self) -> &ReadTransaction {
        &self.tx
    }

    /// Every big mail as of the snapshot: message id, length, and the file
    /// that holds it for as long as the snapshot lives.
    pub fn blobs(&self) -> Result<Vec<(u64, u64, PathBuf)>> {
        let table = self.tx.open_table(BLOBS).context("open blobs")?;
        let mut out = Vec::new();
        for row in table.iter().context("read blobs")? {
            let (id, len) = row.context("read blobs")?;
            let id = id.value();
            out.push((id, len.value(), self.blobs.path(id)));
        }
        Ok(out)
    }
}
