//! Registering build outputs: trees a builder wrote (in the store directory at their own path,
//! or anywhere else) become valid paths, all in one transaction.

use std::collections::BTreeSet;
use std::path::PathBuf;

use nix_formats::content_address::ContentAddress;
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::StorePath;

use super::add::Ready;
use super::error::StoreError;
use super::path_lock::PathLock;
use super::Store;

/// One output of a build, as the builder left it.
#[derive(Debug, Clone)]
pub struct BuiltOutput {
    /// The store path it becomes.
    pub path: StorePath,
    /// Where the builder wrote it; may be the path's own place in the store directory.
    pub source: PathBuf,
    /// Its references (found by the caller's reference scan), possibly itself.
    pub references: BTreeSet<StorePath>,
    /// The derivation that built it.
    pub deriver: Option<StorePath>,
    /// Its content address, for content-addressed outputs (checked against the path).
    pub ca: Option<ContentAddress>,
}

impl Store {
    /// Ingests each output, replaces it by its canonical materialised tree (files hardlinked
    /// from the pool, read-only, mtime 1), and registers all of them (ultimately trusted) in one
    /// transaction. The caller must not hold the outputs' path locks in this process. Outputs
    /// already valid are left alone (their source is not touched). Returns the infos registered.
    pub fn register_outputs(&self, outputs: &[BuiltOutput]) -> Result<Vec<ValidPathInfo>, StoreError> {
        self.register_outputs_inner(outputs, true)
    }

    /// [`Store::register_outputs`] for a caller that holds the outputs' path locks already
    /// (a builder locks its outputs for the whole build).
    pub fn register_locked_outputs(&self, outputs: &[BuiltOutput]) -> Result<Vec<ValidPathInfo>, StoreError> {
        self.register_outputs_inner(outputs, false)
    }

    fn register_outputs_inner(&self, outputs: &[BuiltOutput], lock: bool) -> Result<Vec<ValidPathInfo>, StoreError> {
        let mut seen = BTreeSet::new();
        for o in outputs {
            if !seen.insert(o.path.clone()) {
                return Err(StoreError::DuplicatePath(self.print(&o.path)));
            }
        }
        let real_paths: Vec<_> = outputs.iter().map(|o| self.real_path(&o.path)).collect();
        let _pool = self.pool_lock(false)?;
        let _locks = if lock { PathLock::acquire_all(real_paths.iter().map(|p| p.as_path()))? } else { Vec::new() };
        let mut ready = Vec::new();
        for o in outputs {
            self.add_temp_root(&o.path)?;
            if self.db.is_valid(&o.path)? {
                continue;
            }
            let ingested = self.castore.ingest_path(&o.source)?;
            let mut info = ValidPathInfo::new(o.path.clone(), ingested.nar_hash);
            info.nar_size = ingested.nar_size;
            info.references = o.references.clone();
            info.deriver = o.deriver.clone();
            info.ultimate = true;
            info.ca = o.ca.clone();
            if let Some(ca) = &info.ca {
                self.check_ca_path(&info, ca)?;
            }
            let derivation = self.derivation_of(&o.path, &ingested.root)?;
            ready.push(Ready { info, root: ingested.root, derivation });
        }
        // `install` replaces whatever is at each path, the builder's own tree included; sources
        // elsewhere are left to the caller.
        self.install_and_register(&ready)?;
        Ok(ready.into_iter().map(|r| r.info).collect())
    }
}
