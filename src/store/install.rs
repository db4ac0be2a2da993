//! Installing a restored store: replacing `postfach.redb` and `blobs/`
//! together, so that a kill -9 at any point leaves the old installation or
//! the new one, never a mix (docs/BACKUP.md "Restore").
//!
//! Two renames cannot be one atomic step, so an intent file decides which
//! side of the switch a crash lands on:
//! 1. The restore builds the whole new installation in [`NEW_DIR`]
//!    (`restore-new/postfach.redb` and `restore-new/blobs/`), every file
//!    and directory fsynced. A crash here: no intent file, so the next
//!    start removes `restore-new/` and keeps the old installation.
//! 2. [`INTENT_FILE`] is created and fsynced with its directory. From this
//!    moment the new installation is the one that counts.
//! 3. For the database file, then `blobs/`: the old one is renamed into
//!    [`OLD_DIR`], the new one from [`NEW_DIR`] into its place (each rename
//!    atomic, the directory fsynced after each pair).
//! 4. The intent file is removed (fsynced), then `restore-old/` and
//!    `restore-new/`.
//!
//! [`recover`] runs at every start before the database is opened: with an
//! intent file it redoes step 3 for whatever is still in `restore-new/`
//! (each step is idempotent: what was moved is not there any more) and
//! finishes step 4; without one it removes any `restore-*` leftovers.
//!
//! The secret key file is not part of the switch: the new store holds only
//! secrets sealed by this installation's key (or none).
//!
//! Fault hook: when the daemon runs with `POSTFACH_RESTORE_CRASH_AT=<point>`
//! it kills itself with SIGKILL at that point of a restore (`staged`,
//! `built`, `marked`, `moved-db`, `moved-blobs`, `installed`), so that the
//! crash safety above is tested against a real kill -9. Unset, it costs one
//! environment lookup per point.

use std::fs::File;
use std::path::Path;

use super::blobs::BLOB_DIR;
use super::DB_FILE;
use crate::error::{Error, Result};

/// The complete new installation, before the switch.
pub const NEW_DIR: &str = "restore-new";
/// Where the old installation goes during the switch.
pub const OLD_DIR: &str = "restore-old";
/// Where a backup is unpacked and verified.
pub const STAGING_DIR: &str = "restore-staging";
/// Present from the moment the new installation counts until the switch
/// is done.
pub const INTENT_FILE: &str = "restore.intent";

/// The test fault hook of the module docs.
pub fn crash_point(point: &str) {
    if std::env::var("POSTFACH_RESTORE_CRASH_AT").is_ok_and(|p| p == point) {
        tracing::warn!(point, "POSTFACH_RESTORE_CRASH_AT: killing the daemon");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::storage(&format!("cannot {what} {}", path.display()), e)
}

/// fsync a directory, so that the renames in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("sync", dir, e))
}

fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove", path, e)),
    }
}

/// Steps 2 to 4 of the module docs, on a state directory whose database
/// is closed and whose [`NEW_DIR`] is complete.
pub(crate) fn switch(dir: &Path) -> Result<()> {
    let intent = dir.join(INTENT_FILE);
    File::create(&intent)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("create", &intent, e))?;
    sync_dir(dir)?;
    crash_point("marked");
    roll_forward(dir)
}

/// Steps 3 and 4 (module docs).
fn roll_forward(dir: &Path) -> Result<()> {
    let new = dir.join(NEW_DIR);
    let old = dir.join(OLD_DIR);
    if !old.exists() {
        std::fs::create_dir(&old).map_err(|e| io("create", &old, e))?;
    }
    for (name, point) in [(DB_FILE, "moved-db"), (BLOB_DIR, "moved-blobs")] {
        let fresh = new.join(name);
        if !fresh.exists() {
            continue;
        }
        let current = dir.join(name);
        if current.exists() {
            let aside = old.join(name);
            remove_tree(&aside)?;
            std::fs::rename(&current, &aside).map_err(|e| io("move aside", &current, e))?;
        }
        std::fs::rename(&fresh, &current).map_err(|e| io("install", &fresh, e))?;
        sync_dir(dir)?;
        crash_point(point);
    }
    let intent = dir.join(INTENT_FILE);
    std::fs::remove_file(&intent).map_err(|e| io("remove", &intent, e))?;
    sync_dir(dir)?;
    crash_point("installed");
    remove_tree(&old)?;
    remove_tree(&new)
}

/// At start, before the database is opened (module docs). Returns true
/// when an interrupted restore was completed.
pub(crate) fn recover(dir: &Path) -> Result<bool> {
    if dir.join(INTENT_FILE).exists() {
        tracing::warn!(
            dir = %dir.display(),
            "a restore was interrupted after its new store was complete; installing it"
        );
        roll_forward(dir)?;
        return Ok(true);
    }
    for leftover in [NEW_DIR, OLD_DIR, STAGING_DIR] {
        let path = dir.join(leftover);
        if path.exists() {
            tracing::warn!(path = %path.display(), "removing what an interrupted restore left");
            remove_tree(&path)?;
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(dir: &Path, tag: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(DB_FILE), tag).unwrap();
        std::fs::create_dir_all(dir.join(BLOB_DIR)).unwrap();
        std::fs::write(dir.join(BLOB_DIR).join("7"), tag).unwrap();
    }

    fn which(dir: &Path) -> (String, String) {
        (
            std::fs::read_to_string(dir.join(DB_FILE)).unwrap(),
            std::fs::read_to_string(dir.join(BLOB_DIR).join("7")).unwrap(),
        )
    }

    /// Every state a crash can leave, recovered: old or new, never a mix.
    #[test]
    fn recovery_from_every_step_gives_old_or_new() {
        // Steps: 0 nothing moved, 1 db moved aside, 2 db installed,
        // 3 blobs moved aside, 4 blobs installed.
        for intent in [false, true] {
            for step in 0..=4 {
                let d = tempfile::tempdir().unwrap();
                let dir = d.path();
                install(dir, "old");
                install(&dir.join(NEW_DIR), "new");
                if intent {
                    File::create(dir.join(INTENT_FILE)).unwrap();
                }
                std::fs::create_dir(dir.join(OLD_DIR)).unwrap();
                let mv = |a: &str, b: &str| std::fs::rename(dir.join(a), dir.join(b)).unwrap();
                if step >= 1 {
                    mv(DB_FILE, "restore-old/postfach.redb");
                }
                if step >= 2 {
                    mv("restore-new/postfach.redb", DB_FILE);
                }
                if step >= 3 {
                    mv(BLOB_DIR, "restore-old/blobs");
                }
                if step >= 4 {
                    mv("restore-new/blobs", BLOB_DIR);
                }
                if !intent && step > 0 {
                    // Without the intent file nothing is ever moved.
                    continue;
                }
                assert_eq!(recover(dir).unwrap(), intent);
                let want = if intent { "new" } else { "old" };
                assert_eq!(which(dir), (want.into(), want.into()), "step {step}");
                for gone in [NEW_DIR, OLD_DIR, INTENT_FILE] {
                    assert!(!dir.join(gone).exists(), "{gone} left at step {step}");
                }
            }
        }
    }
}
