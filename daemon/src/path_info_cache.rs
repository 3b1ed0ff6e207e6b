//! A connection's memory of the path infos it has answered.
//!
//! Nix's daemon keeps such a memory per connection (its store's `pathInfoCache`), so a client
//! that asks about the same path again (closure walks, repeated validity checks) is answered
//! without a database read. casnix does the same, with fresher rules than Nix's:
//! - only valid paths are remembered (Nix also remembers an invalid one, for an hour);
//! - every request that may change the store, on any connection of this daemon, makes every
//!   connection forget what it remembers: [`StoreChange`] marks the store as changing when
//!   such a request starts and again when it ends (in [`STORE_CHANGES`]), and a connection
//!   compares the mark it remembered under with the current one before each use.
//!
//! What this daemon cannot see are writes by other processes to the same database (a root
//! user's `NIX_REMOTE=local` client, say); Nix's daemon cannot either.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::StorePath;

/// A count of store changes: bumped when a changing request starts and when it ends.
#[derive(Debug, Default)]
pub struct ChangeCounter(AtomicU64);

/// The changes of the store through this daemon (one store per daemon process).
pub static STORE_CHANGES: ChangeCounter = ChangeCounter(AtomicU64::new(0));

/// The most infos a connection remembers (Nix's default `path-info-cache-size`); past it the
/// memory starts again empty.
const MAX_ENTRIES: usize = 65_536;

impl ChangeCounter {
    /// The current mark.
    fn now(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Marks the store as changing until the returned guard is dropped.
    pub fn begin(&'static self) -> StoreChange {
        self.0.fetch_add(1, Ordering::AcqRel);
        StoreChange(self)
    }
}

/// Marks the store as changing for as long as it lives (a request that may change it).
#[derive(Debug)]
#[must_use = "the store counts as changing only while this is held"]
pub struct StoreChange(&'static ChangeCounter);

impl Drop for StoreChange {
    fn drop(&mut self) {
        self.0 .0.fetch_add(1, Ordering::AcqRel);
    }
}

/// One connection's remembered path infos (see the module's documentation).
#[derive(Debug)]
pub struct PathInfoCache {
    changes: &'static ChangeCounter,
    /// The mark under which `entries` were remembered.
    generation: u64,
    entries: HashMap<StorePath, Arc<ValidPathInfo>>,
}

impl Default for PathInfoCache {
    fn default() -> Self {
        Self::new(&STORE_CHANGES)
    }
}

impl PathInfoCache {
    /// An empty memory, kept current with `changes`.
    pub fn new(changes: &'static ChangeCounter) -> Self {
        Self { changes, generation: changes.now(), entries: HashMap::new() }
    }

    /// Forgets everything if the store changed since it was remembered.
    fn catch_up(&mut self) {
        let now = self.changes.now();
        if now != self.generation {
            self.entries.clear();
            self.generation = now;
        }
    }

    /// The remembered info of `path`, if still current.
    pub fn get(&mut self, path: &StorePath) -> Option<Arc<ValidPathInfo>> {
        self.catch_up();
        self.entries.get(path).cloned()
    }

    /// The mark to pass to [`Self::remember`]: take it before reading the database.
    pub fn mark(&self) -> u64 {
        self.changes.now()
    }

    /// Remembers `info`, read from the database after `mark` was taken; nothing is
    /// remembered if the store changed since.
    pub fn remember(&mut self, mark: u64, info: Arc<ValidPathInfo>) {
        self.catch_up();
        if mark != self.generation {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries.insert(info.path.clone(), info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix_formats::hash::{Algorithm, Hash};

    fn info(name: &str) -> Arc<ValidPathInfo> {
        let path = StorePath::from_base_name(&format!("{}-{name}", "0".repeat(32))).unwrap();
        Arc::new(ValidPathInfo::new(path, Hash::zero(Algorithm::Sha256)))
    }

    #[test]
    fn remembers_until_the_store_changes() {
        static CHANGES: ChangeCounter = ChangeCounter(AtomicU64::new(0));
        let mut cache = PathInfoCache::new(&CHANGES);
        let a = info("a");
        let mark = cache.mark();
        cache.remember(mark, Arc::clone(&a));
        assert_eq!(cache.get(&a.path).as_deref(), Some(&*a));
        let change = CHANGES.begin();
        assert_eq!(cache.get(&a.path), None, "a change starting makes it forget");
        // Read during the change: remembered, but forgotten once the change ends.
        let mark = cache.mark();
        cache.remember(mark, Arc::clone(&a));
        assert!(cache.get(&a.path).is_some());
        drop(change);
        assert_eq!(cache.get(&a.path), None, "a change ending makes it forget");
    }

    #[test]
    fn a_read_overtaken_by_a_change_is_not_remembered() {
        static CHANGES: ChangeCounter = ChangeCounter(AtomicU64::new(0));
        let mut cache = PathInfoCache::new(&CHANGES);
        let a = info("a");
        let mark = cache.mark();
        drop(CHANGES.begin());
        cache.remember(mark, Arc::clone(&a));
        assert_eq!(cache.get(&a.path), None);
    }
}
