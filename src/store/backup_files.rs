//! What `crate::backup` needs of the store's files: the state directory,
//! for scratch and staging files that hold mail and so must stay beside
//! the store, never in /tmp.

use std::path::Path;

use super::Store;

impl Store {
    /// The state directory this store lives in.
    pub(crate) fn state_dir(&self) -> &Path {
        &self.dir
    }
}
