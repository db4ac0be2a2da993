//! Where a store lives: the copied-store check of ARCHITECTURE.md "What it does" ("Restore
//! safety").
//!
//! An admin who clones a virtual machine or copies `/var/lib/postfach`
//! (`cp -a`) gets a second installation with the same accounts and the
//! same installation id. To recognise it, the store records in its `meta`
//! table the machine it runs on (`/etc/machine-id`, machine-id(5), when
//! readable) and its own absolute path. At start the daemon compares both
//! with where it finds itself ([`Store::check_copied`], called before any
//! account task starts, so before the first fetch); when either differs it
//! applies the restore safety reset (`super::reset`) and records the new
//! identity in the same transaction, so a kill -9 cannot leave a reset
//! without the new identity or the other way round.
//!
//! Choices:
//! - A store without a recorded identity (new, or written before this
//!   check existed) records it and resets nothing: there is nothing to
//!   compare with, and resetting every existing installation on upgrade
//!   would be a surprise.
//! - A moved state directory counts as a copy: the daemon cannot tell a
//!   move from a copy whose original still runs. The admin re-enables
//!   delete-on-server per account after checking.
//! - A machine-id that was readable and no longer is counts as a
//!   difference: when in doubt, keep the mail on the server.
//! - The installation id stays: it names the data's lineage (what a backup
//!   came from), not the machine.
//!
//! These are plain meta records, read by no older daemon, so no schema
//! step is needed.

use std::path::{Path, PathBuf};

use redb::ReadableTable;

use super::schema::META;
use super::Store;
use crate::error::{Context, Result};

/// machine-id(5): the machine's id, 32 lowercase hex digits.
pub const MACHINE_ID_FILE: &str = "/etc/machine-id";

const KEY_MACHINE_ID: &str = "machine_id";
const KEY_STORE_PATH: &str = "store_path";

/// Where a store runs: the machine (None when `/etc/machine-id` cannot be
/// read) and the store file's absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub machine_id: Option<String>,
    pub path: String,
}

impl Identity {
    /// The identity of the store file `db` on this machine.
    pub fn here(machine_id_file: &Path, db: &Path) -> Identity {
        let path = std::fs::canonicalize(db).unwrap_or_else(|_| absolute(db));
        Identity {
            machine_id: read_machine_id(machine_id_file),
            path: path.to_string_lossy().into_owned(),
        }
    }

    /// Why `self` (recorded) is not `now`, for the journal; None when equal.
    /// The machine ids themselves are not logged (machine-id(5) asks not to
    /// expose them).
    fn differs(&self, now: &Identity) -> Option<String> {
        if self.machine_id != now.machine_id {
            return Some("the store was copied from another machine (machine-id differs)".into());
        }
        if self.path != now.path {
            return Some(format!(
                "the store was copied or moved from {} to {}",
                self.path, now.path
            ));
        }
        None
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::env::current_dir().map_or_else(|_| p.to_path_buf(), |d| d.join(p))
}

/// The id in `file` when it looks like one (machine-id(5): 32 hex digits
/// and a newline); anything else counts as unreadable.
fn read_machine_id(file: &Path) -> Option<String> {
    let text = std::fs::read(file).ok()?;
    let id = std::str::from_utf8(text.get(..text.len().min(64))?)
        .ok()?
        .trim();
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_ascii_lowercase())
}

impl Store {
    /// The copied-store check with the real `/etc/machine-id` (module
    /// docs). Returns the ids of the accounts it reset.
    pub fn check_copied(&self) -> Result<Vec<String>> {
        self.check_copied_at(&Identity::here(Path::new(MACHINE_ID_FILE), self.path()))
    }

    /// The check against a given identity of "here" (tests inject a
    /// machine-id file through [`Identity::here`]).
    pub fn check_copied_at(&self, here: &Identity) -> Result<Vec<String>> {
        let tx = self.write()?;
        let recorded = {
            let meta = tx.open_table(META).context("open meta")?;
            let text = |key: &str| -> Result<Option<String>> {
                Ok(meta
                    .get(key)
                    .context("read meta")?
                    .map(|g| String::from_utf8_lossy(g.value()).into_owned()))
            };
            match (text(KEY_MACHINE_ID)?, text(KEY_STORE_PATH)?) {
                (Some(m), Some(path)) => Some(Identity {
                    machine_id: Some(m).filter(|m| !m.is_empty()),
                    path,
                }),
                _ => None,
            }
        };
        let why = recorded.as_ref().and_then(|r| r.differs(here));
        if recorded.is_some() && why.is_none() {
            return Ok(Vec::new());
        }
        let reset = match &why {
            Some(_) => super::reset::reset_in(&tx)?,
            None => super::reset::Reset::default(),
        };
        record_in(&tx, here)?;
        tx.commit().context("commit store identity")?;
        if let Some(why) = why {
            tracing::warn!(reason = %why, accounts = reset.accounts.len(), "copied store: applying the restore safety reset");
            super::reset::log_reset(&reset, &why);
        }
        Ok(reset.accounts)
    }

    /// Record `here` as the store's identity without a reset (a restore
    /// does its own reset and then records where it now lives).
    pub fn record_identity(&self, here: &Identity) -> Result<()> {
        let tx = self.write()?;
        record_in(&tx, here)?;
        tx.commit().context("commit store identity")
    }
}

pub(super) fn record_in(tx: &redb::WriteTransaction, here: &Identity) -> Result<()> {
    let mut meta = tx.open_table(META).context("open meta")?;
    let machine = here.machine_id.as_deref().unwrap_or("");
    meta.insert(KEY_MACHINE_ID, machine.as_bytes())
        .context("write meta")?;
    meta.insert(KEY_STORE_PATH, here.path.as_bytes())
        .context("write meta")?;
    Ok(())
}

#[cfg(test)]
mod tests;
