//! The two ways the store hands its file to redb.
//!
//! [`Watched`] is the file as the daemon writes it. redb latches the first
//! I/O error of a database ("Previous I/O error occurred. Please close and
//! re-open the database") and refuses every later read and write of that
//! handle, so the store must know that it happened in order to reopen: the
//! backend records the first failing operation in a [`Fault`] the store
//! checks after every failed call (see `super::health`).
//!
//! [`DryRun`] reads the file and keeps every write in memory. redb's
//! integrity check (`Builder::set_check_integrity_on_open`) verifies the
//! checksum of every page of the committed trees, but it also repairs and
//! commits; run over a `DryRun` it changes nothing on disk, so a damaged
//! file is refused untouched (`super::opening`), and a database that redb
//! could not open for writing (full disk) can still be read.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// The first I/O error of a [`Watched`] file; set once, never cleared (a
/// reopened database gets a new one).
#[derive(Debug, Default)]
pub(super) struct Fault {
    first: OnceLock<(io::ErrorKind, String)>,
    reported: AtomicBool,
}

impl Fault {
    fn record(&self, what: &str, e: &io::Error) {
        let _ = self.first.set((e.kind(), format!("{what}: {e}")));
    }

    /// The error kind and "operation: error" of the first failure.
    pub(super) fn get(&self) -> Option<&(io::ErrorKind, String)> {
        self.first.get()
    }

    /// True for the first caller only: the failure is acted on once.
    pub(super) fn first_report(&self) -> bool {
        !self.reported.swap(true, Ordering::Relaxed)
    }
}

/// redb's own file backend, with every data operation's error recorded.
#[derive(Debug)]
pub(super) struct Watched {
    inner: FileBackend,
    fault: Arc<Fault>,
}

impl Watched {
    pub(super) fn new(file: File, fault: Arc<Fault>) -> io::Result<Watched> {
        let inner = FileBackend::new(file).map_err(io::Error::other)?;
        Ok(Watched { inner, fault })
    }

    fn watch<T>(&self, what: &str, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            self.fault.record(what, e);
        }
        r
    }
}

impl StorageBackend for Watched {
    fn len(&self) -> io::Result<u64> {
        self.watch("size", self.inner.len())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.watch("read", self.inner.read(offset, out))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.watch("resize", self.inner.set_len(len))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.watch("sync", self.inner.sync_data())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.watch("write", self.inner.write(offset, data))
    }

    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

/// Overlay granularity: redb's page size, so a page write touches one chunk.
const CHUNK: u64 = 4096;

/// A file opened read-only, with writes kept in memory (module docs). Holds
/// only what redb writes: a check or a crash repair writes a few pages.
#[derive(Debug)]
pub(super) struct DryRun {
    file: File,
    state: Mutex<Overlay>,
}

#[derive(Debug)]
struct Overlay {
    /// Chunk index -> its current bytes.
    chunks: BTreeMap<u64, Box<[u8]>>,
    /// The length redb sees.
    len: u64,
    /// The file's bytes below this are still what redb would see where no
    /// chunk overrides them; above it (after a shrink) they read as zeros.
    base: u64,
}

impl DryRun {
    pub(super) fn new(file: File) -> io::Result<DryRun> {
        let len = file.metadata()?.len();
        Ok(DryRun {
            file,
            state: Mutex::new(Overlay {
                chunks: BTreeMap::new(),
                len,
                base: len,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Overlay> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the file's bytes at `offset` as redb would see them without
    /// the overlay: the file below `base`, zeros above.
    fn read_base(&self, base: u64, offset: u64, out: &mut [u8]) -> io::Result<()> {
        out.fill(0);
        if offset < base {
            let n = usize::try_from(base - offset).map_or(out.len(), |n| n.min(out.len()));
            self.file.read_exact_at(&mut out[..n], offset)?;
        }
        Ok(())
    }
}

impl StorageBackend for DryRun {
    fn len(&self) -> io::Result<u64> {
        Ok(self.lock().len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let state = self.lock();
        let end = offset.saturating_add(out.len() as u64);
        if end > state.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the database",
            ));
        }
        let mut done = 0usize;
        while done < out.len() {
            let pos = offset + done as u64;
            let (index, within) = (pos / CHUNK, (pos % CHUNK) as usize);
            let n = (CHUNK as usize - within).min(out.len() - done);
            let part = &mut out[done..done + n];
            match state.chunks.get(&index) {
                Some(chunk) => part.copy_from_slice(&chunk[within..within + n]),
                None => self.read_base(state.base, pos, part)?,
            }
            done += n;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        if len < state.len {
            state.base = state.base.min(len);
            let first_gone = len.div_ceil(CHUNK);
            state.chunks.retain(|index, _| *index < first_gone);
            if len % CHUNK != 0 {
                if let Some(last) = state.chunks.get_mut(&(len / CHUNK)) {
                    last[(len % CHUNK) as usize..].fill(0);
                }
            }
        }
        state.len = len;
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let (index, within) = (pos / CHUNK, (pos % CHUNK) as usize);
            let n = (CHUNK as usize - within).min(data.len() - done);
            if !state.chunks.contains_key(&index) {
                let mut fresh = vec![0u8; CHUNK as usize].into_boxed_slice();
                self.read_base(state.base, index * CHUNK, &mut fresh)?;
                state.chunks.insert(index, fresh);
            }
            if let Some(chunk) = state.chunks.get_mut(&index) {
                chunk[within..within + n].copy_from_slice(&data[done..done + n]);
            }
            done += n;
        }
        state.len = state.len.max(offset.saturating_add(data.len() as u64));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_reads_the_file_and_keeps_writes_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let original: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &original).unwrap();
        let d = DryRun::new(File::open(&path).unwrap()).unwrap();
        let mut model = original.clone();

        d.write(4090, &[1; 20]).unwrap();
        model[4090..4110].fill(1);
        d.write(9_990, &[2; 30]).unwrap();
        model.resize(10_020, 0);
        model[9_990..10_020].fill(2);
        assert_eq!(d.len().unwrap(), 10_020);
        let mut all = vec![0; 10_020];
        d.read(0, &mut all).unwrap();
        assert_eq!(all, model);

        // Shrink, then grow: the cut-off bytes come back as zeros.
        d.set_len(5_000).unwrap();
        d.set_len(12_000).unwrap();
        model.truncate(5_000);
        model.resize(12_000, 0);
        let mut all = vec![0; 12_000];
        d.read(0, &mut all).unwrap();
        assert_eq!(all, model);
        assert!(d.read(11_999, &mut [0; 2]).is_err());

        assert_eq!(std::fs::read(&path).unwrap(), original, "the file changed");
    }

    #[test]
    fn watched_records_the_first_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let fault = Arc::new(Fault::default());
        // Opened read-only: every write fails.
        let w = Watched::new(File::open(&path).unwrap(), fault.clone()).unwrap();
        assert!(fault.get().is_none());
        let mut buf = [0; 3];
        w.read(0, &mut buf).unwrap();
        assert!(w.write(0, b"x").is_err());
        assert!(w.read(10, &mut buf).is_err());
        let (_, what) = fault.get().unwrap();
        assert!(what.starts_with("write: "), "{what}");
    }
}
