//! The collector (Nix's `collectGarbage`): live paths are the closure of the roots (with
//! `keep-outputs`/`keep-derivations` edges), dead ones the other valid paths; deletion goes
//! referrers first, so no valid path ever refers to a deleted one.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix_formats::store_path::StorePath;
use rustix::fs::FlockOperation;

use crate::db::ClosureOptions;
use crate::local::{Store, StoreError};

/// What the collector does (Nix's `GCOptions::GCAction`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcAction {
    /// Report the live paths.
    ReturnLive,
    /// Report the dead paths.
    ReturnDead,
    /// Delete the dead paths.
    DeleteDead,
    /// Delete these paths, refusing any that is alive.
    DeleteSpecific(BTreeSet<StorePath>),
}

/// How to collect (Nix's `GCOptions` and the `keep-*` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcOptions {
    /// What to do.
    pub action: GcAction,
    /// Ignore permanent roots (temporary roots still count), as `--ignore-liveness`.
    pub ignore_liveness: bool,
    /// Stop deleting once more than this many bytes are freed; 0 means do nothing.
    pub max_freed: u64,
    /// `keep-outputs`: the outputs of a live derivation are live.
    pub keep_outputs: bool,
    /// `keep-derivations`: the deriver of a live path is live.
    pub keep_derivations: bool,
}

impl GcOptions {
    /// Options for `action` with Nix's defaults (no limit, `keep-derivations` on,
    /// `keep-outputs` off).
    pub fn new(action: GcAction) -> Self {
        Self { action, ignore_liveness: false, max_freed: u64::MAX, keep_outputs: false, keep_derivations: true }
    }
}

/// What the collector did (Nix's `GCResults`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcResult {
    /// The paths reported or deleted.
    pub paths: BTreeSet<StorePath>,
    /// Bytes freed, counted as Nix does: the size of every deleted file with one or two links.
    pub bytes_freed: u64,
}

/// Paths deleted per database transaction when there is no byte limit.
const BATCH: usize = 256;

/// The exclusive hold on `gc.lock`.
struct GcLock {
    _file: File,
}

impl GcLock {
    fn acquire(state_dir: &Path) -> Result<Self, StoreError> {
        let path = state_dir.join("gc.lock");
        let file = crate::flock::open_lock_file(&path)
            .map_err(StoreError::io("opening", &path))?;
        crate::flock::lock(&file, FlockOperation::LockExclusive).map_err(StoreError::io("locking", &path))?;
        Ok(Self { _file: file })
    }
}

impl Store {
    /// Collects garbage as Nix's `collectGarbage` does. `gc.lock` is held exclusively
    /// throughout. Roots that are not valid paths are ignored; entries of the store directory
    /// that are not valid paths are left to `remove_leftovers`.
    pub fn collect_garbage(&self, options: &GcOptions) -> Result<GcResult, StoreError> {
        let (mut keep_outputs, mut keep_derivations) = (options.keep_outputs, options.keep_derivations);
        // As Nix: deleting specific paths while ignoring liveness must not spread to outputs
        // or derivers.
        if matches!(options.action, GcAction::DeleteSpecific(_)) && options.ignore_liveness {
            keep_outputs = false;
            keep_derivations = false;
        }
        let _gc_lock = GcLock::acquire(self.state_dir())?;
        let mut roots = if options.ignore_liveness { Default::default() } else { self.find_roots_no_temp()? };
        self.find_temp_roots(&mut roots, true)?;
        let valid = self.db().query_all_valid_paths()?;
        let rooted: Vec<&StorePath> = roots.keys().filter(|p| valid.contains(*p)).collect();
        let forward = ClosureOptions { flip_direction: false, include_outputs: keep_outputs, include_derivers: keep_derivations };
        let live = self.db().closure(rooted, forward)?;
        let mut result = GcResult::default();
        match &options.action {
            GcAction::ReturnLive => result.paths = live,
            GcAction::ReturnDead if options.max_freed > 0 => result.paths = valid.difference(&live).cloned().collect(),
            GcAction::ReturnDead => {}
            GcAction::DeleteDead if options.max_freed > 0 => {
                let dead: BTreeSet<StorePath> = valid.difference(&live).cloned().collect();
                self.delete_in_order(&dead, options.max_freed, &mut result)?;
            }
            GcAction::DeleteDead => {}
            GcAction::DeleteSpecific(paths) => {
                let backward = ClosureOptions { flip_direction: true, include_outputs: keep_outputs, include_derivers: keep_derivations };
                let mut doomed = BTreeSet::new();
                for path in paths.iter().filter(|p| valid.contains(*p)) {
                    // The path goes only if nothing that keeps it alive is live or kept.
                    let keepers = self.db().closure([path], backward)?;
                    if keepers.iter().any(|k| live.contains(k) || !paths.contains(k)) {
                        return Err(StoreError::StillAlive(self.print(path)));
                    }
                    doomed.extend(keepers);
                }
                self.delete_in_order(&doomed, u64::MAX, &mut result)?;
            }
        }
        Ok(result)
    }

    /// Deletes `dead` (closed under referrers) referrers first, stopping once more than
    /// `max_freed` bytes are freed.
    fn delete_in_order(&self, dead: &BTreeSet<StorePath>, max_freed: u64, result: &mut GcResult) -> Result<(), StoreError> {
        let order = self.db().topo_sort_paths(dead)?;
        let batch = if max_freed == u64::MAX { BATCH } else { 1 };
        for chunk in order.chunks(batch) {
            let mut bytes = 0;
            for path in chunk {
                bytes += bytes_freed_by(&self.real_path(path));
            }
            let removed = self.delete_paths(chunk.iter())?;
            result.bytes_freed = result.bytes_freed.saturating_add(bytes);
            result.paths.extend(removed);
            if result.bytes_freed > max_freed {
                break;
            }
        }
        Ok(())
    }
}

/// What deleting the tree at `path` frees, counted as Nix's `deletePath`: the size of every
/// non-directory with one link (the last) or two (likely a store file and its pool twin).
fn bytes_freed_by(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return if matches!(meta.nlink(), 1 | 2) { meta.size() } else { 0 };
    }
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries.flatten().map(|e| bytes_freed_by(&e.path())).fold(0u64, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_freed_counts_files_with_one_or_two_links() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("alone"), [0u8; 10]).unwrap();
        std::fs::write(tree.join("sub/pooled"), [0u8; 100]).unwrap();
        std::fs::hard_link(tree.join("sub/pooled"), dir.path().join("pool-twin")).unwrap();
        std::fs::write(tree.join("shared"), [0u8; 1000]).unwrap();
        std::fs::hard_link(tree.join("shared"), dir.path().join("twin1")).unwrap();
        std::fs::hard_link(tree.join("shared"), dir.path().join("twin2")).unwrap();
        std::os::unix::fs::symlink("alone", tree.join("link")).unwrap();
        // 10 + 100 + the symlink's own size (5); the file with three links frees nothing.
        assert_eq!(bytes_freed_by(&tree), 115);
        assert_eq!(bytes_freed_by(&dir.path().join("missing")), 0);
    }
}
