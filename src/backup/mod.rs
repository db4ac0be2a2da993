//! Backups of the store (ARCHITECTURE.md "The D-Bus API", `Backup`): a consistent online
//! snapshot written into a caller's file descriptor.
//!
//! [`format`] is the container (versioned, a checksum over every section
//! and over the whole; docs/BACKUP.md describes it for admins);
//! [`snapshot`] decides what goes in: every table but `secrets`, read in one
//! redb read transaction, and the big-mail files its rows name. Writing runs
//! on a blocking thread and holds no write lock: fetching goes on.
//!
//! Secrets: without the `passphrase` option a backup holds none, and
//! passwords and tokens are entered again after a restore; with it they
//! travel sealed under a key derived from it (`crate::store::BackupKey`).
//! The installation's key never goes in. [`restore`] reads a backup back
//! (then `crate::store::install` switches to it); [`tables`] says which
//! tables travel and how.

pub mod format;
pub mod restore;
pub mod snapshot;
pub mod tables;
