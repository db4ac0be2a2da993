//! What `crate::backup` needs of the store's files: the state directory
//! (for scratch and staging files that hold mail and so must stay beside
//! the store, never in /tmp) and a big mail's file, opened so that it
//! stays readable even if the mail is deleted while a backup runs.

use std::fs::File;
use std::path::Path;

use super::Store;
use crate::error::{Error, Result};

impl Store {
    /// The state directory this store lives in.
    pub(crate) fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// The file `blobs/<id>`; NotFound when it is not there.
    pub(crate) fn open_blob(&self, id: u64) -> Result<File> {
        let path = self.blobs.path(id);
        File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(format!("no blob file for mail {id}"))
            } else {
                Error::storage(&format!("cannot open {}", path.display()), e)
            }
        })
    }
}
