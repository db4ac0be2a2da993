//! Backups of the store (ARCHITECTURE.md "The D-Bus API", `Backup`): a consistent online
//! snapshot written into a caller's file descriptor.
//!
//! [`format`] is the container (versioned, a checksum over every section
//! and over the whole; docs/BACKUP.md describes it for admins);
//! [`snapshot`] decides what goes in: every table but `secrets`, read in one
//! redb read transaction, and the big-mail files its rows name. Writing runs
//! on a blocking thread and holds no write lock: fetching goes on.
//!
//! Secrets: a backup holds none. Passwords and tokens are entered again
//! after a restore (the `passphrase` option, which would carry them
//! re-encrypted, is refused until it exists).

pub mod format;
pub mod restore;
pub mod snapshot;
pub mod tables;
