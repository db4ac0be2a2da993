//! The record of a clean close, so that a start after one does not read
//! every page of the store.
//!
//! Why: step 2 of `super::opening` walks every page checksum before
//! anything is written, so that a damaged or foreign file is refused
//! untouched. That walk reads the whole file: at 1,000,000 mails it made a
//! start take seconds warm and half a minute cold (docs/PERFORMANCE.md
//! "Start-up and idle memory at scale"), for a file that nobody but this
//! daemon touched since it closed it.
//!
//! What is trusted, and why that is safe:
//! - When the store is dropped after a clean run (a writable database
//!   without an I/O fault, closed by redb, which then marks the file
//!   cleanly shut down), the file's identity is written to
//!   [`CLOSED_FILE`]: device, inode, length, and mtime and ctime in
//!   nanoseconds.
//! - At the next start the record is read and removed, before the file is
//!   opened for writing. Only a record equal to the file's identity skips
//!   the walk. Anything that writes the file changes its ctime, which no
//!   program can set back (a restore, an editor, `dd`, a truncation); a
//!   copy is a new inode. Those files are walked like any other.
//! - A crash, a kill -9 or a failed close leaves no record (it was removed
//!   at the start), so the next start walks every page, and redb's own
//!   recovery runs as before.
//! - What the record cannot see is damage the disk does to the file at
//!   rest without a write. Such a page shows when a read meets it, and a
//!   failure there makes `super::health` reopen with the full walk.
//!   Removing the record forces the walk at the next start.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use super::{Store, DB_FILE};

/// The record, next to the store file in the state directory.
pub const CLOSED_FILE: &str = "postfach.redb.closed";

/// What identifies the store file as written last: one line.
fn identity(db: &Path) -> std::io::Result<String> {
    let m = std::fs::metadata(db)?;
    Ok(format!(
        "v1 {} {} {} {}.{:09} {}.{:09}\n",
        m.dev(),
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

/// Whether the store file of `dir` is exactly as this daemon left it at a
/// clean close. The record is removed either way: from here on the file
/// is in use, and only the next clean close may vouch for it again.
pub(super) fn take(dir: &Path) -> bool {
    let path = dir.join(CLOSED_FILE);
    let record = std::fs::read_to_string(&path);
    if record.is_ok() {
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!("cannot remove {}: {e}", path.display());
            return false;
        }
    }
    match (record, identity(&dir.join(DB_FILE))) {
        (Ok(r), Ok(now)) => r == now,
        _ => false,
    }
}

/// How long a close waits after the file's last change: the kernel stamps
/// ctime from a coarse clock (one tick, a few ms), so a write right after
/// the close could otherwise get the same ctime as the close.
const TICK: Duration = Duration::from_millis(20);

/// Writes the record for the store file of `dir`, after its database was
/// closed cleanly. A failure only costs the next start its speed.
fn record(dir: &Path) {
    let path = dir.join(CLOSED_FILE);
    let written = identity(&dir.join(DB_FILE)).and_then(|id| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(id.as_bytes())?;
        f.sync_all()?;
        std::thread::sleep(TICK);
        Ok(())
    });
    if let Err(e) = written {
        tracing::warn!("cannot write {}: {e}", path.display());
        let _ = std::fs::remove_file(&path);
    }
}

impl Drop for Store {
    /// Closes the database while the state directory's lock is still held
    /// (the lock is a field, dropped after this), and records a clean close.
    fn drop(&mut self) {
        let Some(current) = self.current.swap(Duration::from_secs(1), std::mem::take) else {
            return;
        };
        let Some(db) = current.db else { return };
        let clean = current.writable && current.fault.get().is_none();
        drop(db);
        if clean && current.fault.get().is_none() {
            record(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with_file() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), b"store bytes").unwrap();
        dir
    }

    #[test]
    fn an_unchanged_file_matches_once() {
        let dir = dir_with_file();
        record(dir.path());
        assert!(take(dir.path()));
        assert!(!dir.path().join(CLOSED_FILE).exists());
        assert!(!take(dir.path()), "the record vouches for one start only");
    }

    #[test]
    fn a_write_after_the_close_does_not_match() {
        let dir = dir_with_file();
        record(dir.path());
        let db = dir.path().join(DB_FILE);
        let mtime = std::fs::metadata(&db).unwrap().modified().unwrap();
        // Same length, and the mtime set back: the ctime still moved.
        std::fs::write(&db, b"store bytez").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&db)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert!(!take(dir.path()));
        assert!(!dir.path().join(CLOSED_FILE).exists());
    }

    #[test]
    fn a_copy_does_not_match() {
        let dir = dir_with_file();
        record(dir.path());
        let copy = tempfile::tempdir().unwrap();
        for f in [DB_FILE, CLOSED_FILE] {
            std::fs::copy(dir.path().join(f), copy.path().join(f)).unwrap();
        }
        assert!(!take(copy.path()));
    }

    #[test]
    fn no_record_or_a_garbled_one_does_not_match() {
        let dir = dir_with_file();
        assert!(!take(dir.path()));
        std::fs::write(dir.path().join(CLOSED_FILE), b"v1 garbage\n").unwrap();
        assert!(!take(dir.path()));
    }
}
