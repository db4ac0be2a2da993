//! What the store offers a restore (`crate::backup::restore`): the safety
//! reset and the identity record inside the transaction that builds the
//! new database, and the swap that installs it (`super::install`).

use std::path::Path;
use std::time::Duration;

use redb::WriteTransaction;

use super::identity::{Identity, MACHINE_ID_FILE};
use super::reset::Reset;
use super::{install, Store, DB_FILE};
use crate::error::Result;

/// Inside the transaction that builds a restored database: the restore
/// safety reset (`super::reset`), and the identity of where the database
/// will live once installed in `state_dir`, so that the copied-store check
/// at the next start finds nothing to reset again. Returns what was reset;
/// the caller commits, then calls [`log_restored_reset`].
pub(crate) fn reset_restored(tx: &WriteTransaction, state_dir: &Path) -> Result<Reset> {
    let reset = super::reset::reset_in(tx)?;
    let here = Identity::here(Path::new(MACHINE_ID_FILE), &state_dir.join(DB_FILE));
    super::identity::record_in(tx, &here)?;
    Ok(reset)
}

/// The warning per reset account, once the reset is committed.
pub(crate) fn log_restored_reset(reset: &Reset) {
    super::reset::log_reset(reset, "a backup was restored");
}

impl Store {
    /// Installs the complete new store in `restore-new/` (`super::install`)
    /// in place of the current one, under running callers (`Store::swap`:
    /// waits at most `wait` for the calls in flight, Busy and nothing
    /// changed if they do not finish).
    pub fn install_restored(&self, wait: Duration) -> Result<()> {
        self.swap(wait, install::switch)
    }
}
