//! Figures for `Manager.Status` (`postfachctl status`): the outbox by state
//! and the bytes the store takes on disk.
//!
//! Both are read on demand, not kept as counters: an admin asks rarely, and
//! a counter would be one more thing a restore or a crash could leave wrong.
//! Failed mails have no index entry (see `outbox`), so counting them reads
//! every outbox record once; queued and sending ones come from the small
//! active index.

use std::path::Path;

use redb::ReadableTable;

use super::blobs::BLOB_DIR;
use super::outbox::record_from;
use super::schema::{OUTBOX as RECORDS, OUTBOX_ACTIVE};
use super::{Store, DB_FILE};
use crate::error::{Context, Error, Result};

/// How many outbox mails are in each state that still matters to an admin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub queued: u64,
    pub sending: u64,
    pub failed: u64,
}

impl Store {
    /// The outbox mails by state, from one read transaction.
    pub fn outbox_counts(&self) -> Result<OutboxCounts> {
        self.call("count the outbox", || {
            let tx = self.read()?;
            let mut c = OutboxCounts::default();
            let active = tx.open_table(OUTBOX_ACTIVE).context("open outbox")?;
            for row in active.iter().context("read outbox index")? {
                let (k, _) = row.context("read outbox index")?;
                match k.value().0 {
                    0 => c.queued += 1,
                    _ => c.sending += 1,
                }
            }
            let records = tx.open_table(RECORDS).context("open outbox")?;
            for row in records.iter().context("read outbox")? {
                let (_, v) = row.context("read outbox")?;
                if record_from(v.value())?.state == super::OutboxState::Failed {
                    c.failed += 1;
                }
            }
            Ok(c)
        })
    }

    /// Bytes of `postfach.redb` plus every file under `blobs/` (staged
    /// ones in `blobs/tmp/` included: they take the disk too).
    pub fn disk_bytes(&self) -> Result<u64> {
        let db = std::fs::metadata(self.dir.join(DB_FILE))
            .map_err(|e| Error::storage("cannot read the size of the store file", e))?
            .len();
        Ok(db + tree_bytes(&self.dir.join(BLOB_DIR))?)
    }
}

/// What one table takes in the store file (redb's own figures).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableBytes {
    pub name: String,
    pub rows: u64,
    /// Keys and values as stored in leaf pages.
    pub stored: u64,
    /// Everything the table's pages take: rows, page headers, branch
    /// pages, and the unused rest of each page.
    pub allocated: u64,
}

impl Store {
    /// Per table, where the bytes of the store file go: for the footprint
    /// figures of the benchmarks (docs/PERFORMANCE.md), not for the bus.
    pub fn table_bytes(&self) -> Result<Vec<TableBytes>> {
        use redb::{ReadableTableMetadata, TableHandle};
        self.call("measure the tables", || {
            let tx = self.read()?;
            let mut out = Vec::new();
            for handle in tx.list_tables().context("list tables")? {
                let t = tx
                    .open_untyped_table(handle.clone())
                    .context("open a table")?;
                let st = t.stats().context("read table stats")?;
                out.push(TableBytes {
                    name: handle.name().to_string(),
                    rows: t.len().context("count a table")?,
                    stored: st.stored_bytes(),
                    allocated: st.stored_bytes() + st.metadata_bytes() + st.fragmented_bytes(),
                });
            }
            Ok(out)
        })
    }
}

/// Sum of the regular files' lengths below `dir`; symlinks are not
/// followed. A file that vanishes while we walk (a blob deleted meanwhile)
/// counts as gone.
fn tree_bytes(dir: &Path) -> Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::storage(&format!("cannot list {}", dir.display()), e)),
    };
    let mut sum = 0;
    for entry in entries {
        let entry =
            entry.map_err(|e| Error::storage(&format!("cannot list {}", dir.display()), e))?;
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::storage("cannot read a blob file's size", e)),
        };
        if meta.is_dir() {
            sum += tree_bytes(&entry.path())?;
        } else if meta.is_file() {
            sum += meta.len();
        }
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::tree_bytes;

    #[test]
    fn tree_bytes_sums_files_below_and_follows_no_symlink() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("blobs");
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        std::fs::write(dir.join("1"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.join("tmp").join("2"), vec![0u8; 24]).unwrap();
        let outside = root.path().join("outside");
        std::fs::write(&outside, vec![0u8; 5000]).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
        assert_eq!(tree_bytes(&dir).unwrap(), 1024);
        assert_eq!(tree_bytes(&root.path().join("absent")).unwrap(), 0);
    }
}
