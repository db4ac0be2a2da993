//! The published accounts: what every account object serves its
//! properties from, and what `GetManagedObjects` lists.
//!
//! Each account's settings are kept as a snapshot that every successful
//! write replaces, so a property read never fails and never waits for the
//! store. One map for all accounts, rather than a copy in each object, so
//! that `GetManagedObjects` can answer from it without walking zbus's
//! object tree.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::access::Reader;
use crate::account::Account;

/// An account's settings as published, and whether it has a password.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub account: Account,
    pub has_password: bool,
}

/// The snapshots by account id.
#[derive(Debug, Default)]
pub struct Registry {
    map: RwLock<HashMap<String, Arc<Snapshot>>>,
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Snapshot>>> {
        // A map of whole values: a panic elsewhere cannot leave it half-written.
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Snapshot>>> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The published snapshot of an account.
    pub fn get(&self, id: &str) -> Option<Arc<Snapshot>> {
        self.read().get(id).cloned()
    }

    /// Publish a snapshot; returns the one it replaced.
    pub fn put(&self, snapshot: Snapshot) -> Option<Arc<Snapshot>> {
        let id = snapshot.account.id.clone();
        self.write().insert(id, Arc::new(snapshot))
    }

    pub fn remove(&self, id: &str) {
        self.write().remove(id);
    }

    /// The accounts `reader` sees, by id.
    pub fn visible(&self, reader: &Reader) -> Vec<Arc<Snapshot>> {
        let mut v: Vec<Arc<Snapshot>> = self
            .read()
            .values()
            .filter(|s| reader.sees(&s.account.private_owner))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.account.id.cmp(&b.account.id));
        v
    }
}
