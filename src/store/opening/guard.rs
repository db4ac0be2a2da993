//! Running a redb open so that what it finds refuses the file instead of
//! crashing the daemon or being taken for a file-system error: a full or
//! read-only disk is not damage, and a damaged file must be left as it is
//! (`super` step 2).

use std::fs::File;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use redb::Database;

use crate::error::{Error, Result};

/// The first bytes of every redb file; anything else is not ours to open.
pub(in crate::store) const REDB_MAGIC: [u8; 9] =
    [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

pub(super) fn refused(path: &Path, why: &dyn std::fmt::Display) -> Error {
    Error::storage_msg(format!(
        "{} is not a usable postfach store ({why}); it was left untouched — restore a backup \
         or move it away",
        path.display()
    ))
}

/// Why an open failed: the file system, or what is in the file.
pub(super) enum Failure {
    Io(std::io::Error),
    Redb(redb::DatabaseError),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Io(e)
    }
}

impl From<redb::DatabaseError> for Failure {
    fn from(e: redb::DatabaseError) -> Failure {
        Failure::Redb(e)
    }
}

/// Runs a redb open: a file-system error says so (a full or read-only
/// disk is not damage), anything redb finds in the file, or a panic while
/// it reads it, refuses the file. With `check`, a file that does not start
/// like a redb file is refused before redb sees it.
pub(super) fn guarded(
    path: &Path,
    check: bool,
    open: impl FnOnce() -> std::result::Result<Database, Failure>,
) -> Result<Database> {
    use redb::{DatabaseError, StorageError};
    if check {
        let mut head = [0u8; REDB_MAGIC.len()];
        let magic = File::open(path).and_then(|mut f| f.read_exact(&mut head));
        if magic.is_err() || head != REDB_MAGIC {
            return Err(refused(path, &"not a redb database"));
        }
    }
    match catch_unwind(AssertUnwindSafe(open)) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(Failure::Io(e) | Failure::Redb(DatabaseError::Storage(StorageError::Io(e))))) => {
            Err(Error::storage(
                &format!("cannot open {}", path.display()),
                e,
            ))
        }
        Ok(Err(Failure::Redb(e))) => Err(refused(path, &e)),
        Err(_) => Err(refused(path, &"redb failed while reading it")),
    }
}
