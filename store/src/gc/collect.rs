//! The collector (Nix's `collectGarbage`): live paths are the closure of the roots (with
//! `keep-outputs`/`keep-derivations` edges), dead ones the other valid paths; deletion goes
//! referrers first, so no valid path ever refers to a deleted one.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix_formats::store_path::{StoreDir, StorePath};
use rustix::fs::FlockOperation;

use super::root_server::RootServer;
use super::Roots;
use crate::db::{ClosureOptions, DbError};
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
    /// The paths reported or deleted: valid paths, and entries of the store directory named like
    /// store paths that are not valid (leftovers), as Nix reports them.
    pub paths: BTreeSet<StorePath>,
    /// Entries of the store directory not named like store paths (base names), deleted (or, for
    /// [`GcAction::ReturnDead`], reported: Nix deletes them even then, casnix does not).
    pub other_entries: BTreeSet<String>,
    /// Bytes freed, counted as Nix does: the size of every deleted file with one or two links.
    pub bytes_freed: u64,
}

impl GcResult {
    /// Everything reported, as full paths (what Nix's `GCResults::paths` holds).
    pub fn printed(&self, store_dir: &StoreDir) -> BTreeSet<String> {
        let other = self.other_entries.iter().map(|name| format!("{}/{name}", store_dir.as_str()));
        self.paths.iter().map(|p| store_dir.print(p)).chain(other).collect()
    }
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

/// Nix's test synchronisation points: if the variable names a file, read it (a FIFO makes the
/// collector wait there until someone writes to it and closes it).
fn sync_point(variable: &str) {
    if let Some(file) = std::env::var_os(variable) {
        let _ = std::fs::read(file);
    }
}

/// One collection's state: the live set grows as roots arrive over the socket.
pub(super) struct Collection<'a> {
    pub(super) store: &'a Store,
    pub(super) server: &'a RootServer,
    pub(super) live: BTreeSet<StorePath>,
    pub(super) forward: ClosureOptions,
    pub(super) result: GcResult,
    pub(super) max_freed: u64,
    /// Told what the collector does, in Nix's words.
    pub(super) progress: &'a mut dyn FnMut(&str),
}

impl Collection<'_> {
    /// Makes the closures of roots received over the socket live.
    pub(super) fn absorb(&mut self, fresh: Vec<String>) -> Result<(), StoreError> {
        for hash_part in fresh {
            if let Some(path) = self.store.db().query_path_from_hash_part(&hash_part)? {
                if !self.live.contains(&path) {
                    let closure = self.store.db().closure([&path], self.forward)?;
                    self.live.extend(closure);
                }
            }
        }
        Ok(())
    }

    /// Whether the byte limit is passed.
    pub(super) fn limit_reached(&self) -> bool {
        self.result.bytes_freed > self.max_freed
    }

    /// Deletes `dead` (closed under referrers, minus what became live) referrers first,
    /// stopping once the byte limit is passed.
    fn delete_in_order(&mut self, dead: &BTreeSet<StorePath>) -> Result<(), StoreError> {
        let order = self.store.db().topo_sort_paths(dead)?;
        let batch = if self.max_freed == u64::MAX { BATCH } else { 1 };
        for chunk in order.chunks(batch) {
            if self.limit_reached() {
                break;
            }
            let claimed = loop {
                let candidates: Vec<(&str, &StorePath)> =
                    chunk.iter().filter(|p| !self.live.contains(*p)).map(|p| (p.hash_part(), p)).collect();
                match self.server.claim(candidates) {
                    Ok(claimed) => break claimed,
                    Err(fresh) => self.absorb(fresh)?,
                }
            };
            let deleted = self.delete_claimed(&claimed);
            self.server.release();
            // Pool files are freed after the claim is released (see `delete_paths_keeping_blobs`).
            self.store.remove_blobs_if_unused(deleted?)?;
        }
        Ok(())
    }

    /// `paths` ordered as Nix deletes them: sorted, each preceded by its referrers among them.
    fn nix_order<'p>(&self, paths: &[&'p StorePath]) -> Vec<&'p StorePath> {
        let set: BTreeSet<&StorePath> = paths.iter().copied().collect();
        let mut done = BTreeSet::new();
        let mut order = Vec::with_capacity(paths.len());
        // Depth-first with an explicit stack: (path, referrers expanded yet?).
        for start in set.iter().copied() {
            let mut stack = vec![(start, false)];
            while let Some((path, expanded)) = stack.pop() {
                if done.contains(path) {
                    continue;
                }
                if expanded {
                    done.insert(path);
                    order.push(path);
                    continue;
                }
                stack.push((path, true));
                let referrers = self.store.db().query_referrers(path).unwrap_or_default();
                for r in referrers.iter().rev() {
                    if let Some(r) = set.get(r) {
                        if !done.contains(*r) && *r != path {
                            stack.push((r, false));
                        }
                    }
                }
            }
        }
        order
    }

    /// Deletes the claimed paths; returns the pool files they used, to be freed once the claim
    /// is released.
    fn delete_claimed(&mut self, claimed: &[&StorePath]) -> Result<BTreeSet<castore::B3Digest>, StoreError> {
        let mut blobs = BTreeSet::new();
        // Before deleting: the order needs the referrers the database still has.
        let order = self.nix_order(claimed);
        let bytes: Vec<u64> = claimed.iter().map(|p| bytes_freed_by(&self.store.real_path(p))).collect();
        let removed = match self.store.delete_paths_keeping_blobs(claimed.iter().copied()) {
            Ok((removed, used)) => {
                blobs.extend(used);
                removed
            }
            Err(StoreError::Db(DbError::PathInUse { .. })) => {
                // A path registered since the collection began refers to one of these (Nix
                // reports such a case as a bug and goes on): delete them one by one.
                let mut removed = BTreeSet::new();
                for path in claimed {
                    match self.store.delete_paths_keeping_blobs([*path]) {
                        Ok((one, used)) => {
                            removed.extend(one);
                            blobs.extend(used);
                        }
                        Err(StoreError::Db(e @ DbError::PathInUse { .. })) => {
                            tracing::error!("not deleting a path in use: {e}");
                            self.live.insert((*path).clone());
                        }
                        Err(e) => return Err(e),
                    }
                }
                removed
            }
            Err(e) => return Err(e),
        };
        // Reported in the order Nix's `deleteReferrersClosure` deletes: paths in sorted order,
        // each after its referrers (within the batch; batches themselves go referrers first).
        let sizes: BTreeMap<&StorePath, u64> = claimed.iter().copied().zip(bytes).collect();
        for path in order {
            let bytes = sizes.get(path).copied().unwrap_or(0);
            if removed.contains(path) {
                (self.progress)(&format!("deleting '{}'", self.store.print(path)));
                self.result.bytes_freed = self.result.bytes_freed.saturating_add(bytes);
            }
        }
        self.result.paths.extend(removed);
        Ok(blobs)
    }
}

impl Store {
    /// Collects garbage as Nix's `collectGarbage` does. `gc.lock` is held exclusively
    /// throughout, and `<state_dir>/gc-socket/socket` is served meanwhile (see
    /// [`super::root_server`]), so processes adding temporary roots are not blocked and what
    /// they root is kept. Roots: `gcroots/`, `profiles/`, runtime roots, temporary roots. Live
    /// paths are the roots' closure (with the `keep-*` edges); dead valid paths are deleted
    /// referrers first. Entries of the store directory that are not valid paths (except
    /// `.links`) are dead too unless their hash part is a temporary root or their path's lock
    /// is held (see [`super::entries`]). Deleting ends with a sweep of unused castore blobs.
    ///
    /// Nix's test variables `_NIX_TEST_GC_SYNC_1` (after taking `gc.lock`) and
    /// `_NIX_TEST_GC_SYNC_2` (after finding the roots) name files the collector reads before
    /// going on.
    pub fn collect_garbage(&self, options: &GcOptions) -> Result<GcResult, StoreError> {
        self.collect_garbage_reporting(options, &mut |line| tracing::info!("{line}"))
    }

    /// [`Store::collect_garbage`], telling `progress` what Nix's collector tells its user, in
    /// Nix's words: `finding garbage collector roots...`, `determining live/dead paths...` or
    /// `deleting garbage...`, `deleting '<path>'` for each deleted path, `deleting unused
    /// links...` and `note: currently hard linking saves <n> MiB` (from the castore pool, whose
    /// files are casnix's hard links).
    pub fn collect_garbage_reporting(
        &self,
        options: &GcOptions,
        progress: &mut dyn FnMut(&str),
    ) -> Result<GcResult, StoreError> {
        let (mut keep_outputs, mut keep_derivations) = (options.keep_outputs, options.keep_derivations);
        // As Nix: deleting specific paths while ignoring liveness must not spread to outputs
        // or derivers.
        if matches!(options.action, GcAction::DeleteSpecific(_)) && options.ignore_liveness {
            keep_outputs = false;
            keep_derivations = false;
        }
        let _gc_lock = GcLock::acquire(self.state_dir())?;
        sync_point("_NIX_TEST_GC_SYNC_1");
        let server = RootServer::start(self.state_dir(), self.store_dir().clone())?;
        progress("finding garbage collector roots...");
        let roots =
            if options.ignore_liveness { Default::default() } else { self.find_roots_no_temp_reporting(true, progress)? };
        let mut temp_roots = Roots::new();
        self.find_temp_roots(&mut temp_roots, true)?;
        server.add_roots(temp_roots.keys());
        sync_point("_NIX_TEST_GC_SYNC_2");
        let valid = self.db().query_all_valid_paths()?;
        let rooted: Vec<&StorePath> = roots.keys().chain(temp_roots.keys()).filter(|p| valid.contains(*p)).collect();
        let forward = ClosureOptions { flip_direction: false, include_outputs: keep_outputs, include_derivers: keep_derivations };
        let live = self.db().closure(rooted, forward)?;
        let max_freed = if matches!(options.action, GcAction::DeleteSpecific(_)) { u64::MAX } else { options.max_freed };
        let mut gc = Collection { store: self, server: &server, live, forward, result: GcResult::default(), max_freed, progress };
        match &options.action {
            GcAction::ReturnLive => {
                if options.max_freed > 0 {
                    (gc.progress)("determining live/dead paths...");
                }
                gc.absorb(server.take_fresh())?;
                gc.report_live_entries(&valid)?;
                gc.result.paths.extend(gc.live.iter().cloned());
            }
            GcAction::ReturnDead if options.max_freed > 0 => {
                (gc.progress)("determining live/dead paths...");
                gc.report_dead_entries(&valid)?;
                gc.absorb(server.take_fresh())?;
                gc.result.paths.extend(valid.difference(&gc.live).cloned());
            }
            GcAction::ReturnDead => {}
            GcAction::DeleteDead if options.max_freed > 0 => {
                (gc.progress)("deleting garbage...");
                gc.delete_invalid_entries(&valid)?;
                let dead: BTreeSet<StorePath> = valid.difference(&gc.live).cloned().collect();
                gc.delete_in_order(&dead)?;
                self.sweep_unused_blobs(gc.progress)?;
            }
            GcAction::DeleteDead => self.sweep_unused_blobs(gc.progress)?,
            GcAction::DeleteSpecific(paths) => {
                gc.delete_specific(paths, &valid, keep_outputs, keep_derivations)?;
                self.sweep_unused_blobs(gc.progress)?;
            }
        }
        Ok(gc.result)
    }

    /// Deletes the castore's pool files that no materialised tree uses (Nix's removal of unused
    /// `.links` entries), with the pool lock held exclusively.
    fn sweep_unused_blobs(&self, progress: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
        progress("deleting unused links...");
        let _pool = self.pool_lock(true)?;
        // Nix's `.links` (filled by Nix's `nix-store --optimise`): entries used by nothing go;
        // an entry and a pool file linked only to each other both go.
        let links = self.real_store_dir().join(".links");
        let (paired, _) = super::links::sweep(&links);
        let swept = self.castore().blobs().sweep_unused_but(&paired)?;
        if !paired.is_empty() {
            super::links::sweep(&links);
        }
        tracing::debug!("deleted {} unused pool files ({} bytes)", swept.files, swept.bytes);
        // Nix subtracts the size of its `.links` directory itself.
        let overhead = std::fs::metadata(&links).map_or(0, |m| std::os::unix::fs::MetadataExt::blocks(&m) * 512);
        let saved = swept.linked_savings as f64 - overhead as f64;
        progress(&format!("note: currently hard linking saves {:.2} MiB", saved / (1024.0 * 1024.0)));
        Ok(())
    }
}

impl Collection<'_> {
    fn delete_specific(
        &mut self,
        paths: &BTreeSet<StorePath>,
        valid: &BTreeSet<StorePath>,
        keep_outputs: bool,
        keep_derivations: bool,
    ) -> Result<(), StoreError> {
        let backward = ClosureOptions { flip_direction: true, include_outputs: keep_outputs, include_derivers: keep_derivations };
        let mut doomed = BTreeSet::new();
        for path in paths {
            if !valid.contains(path) {
                self.delete_invalid_specific(path)?;
                continue;
            }
            // The path goes only if nothing that keeps it alive is live or kept.
            let keepers = self.store.db().closure([path], backward)?;
            if keepers.iter().any(|k| self.live.contains(k) || !paths.contains(k)) {
                return Err(StoreError::StillAlive(self.store.print(path)));
            }
            doomed.extend(keepers);
        }
        self.delete_in_order(&doomed)?;
        // A root that arrived meanwhile may have saved one of them.
        match doomed.iter().find(|p| !self.result.paths.contains(*p)) {
            Some(kept) => Err(StoreError::StillAlive(self.store.print(kept))),
            None => Ok(()),
        }
    }
}

/// What deleting the tree at `path` frees, counted as Nix's `deletePath`: the size of every
/// non-directory with one link (the last) or two (likely a store file and its pool twin).
pub(super) fn bytes_freed_by(path: &Path) -> u64 {
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
