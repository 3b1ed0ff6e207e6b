//! Adding paths from NARs whose path info is known (Nix's `addToStore(info, source)`), one or
//! many at once, and the steps every add shares: verification, materialisation, registration.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use castore::{BlobService, Node};
use nix_formats::content_address::{ContentAddress, Method};
use nix_formats::derivation::Derivation;
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::signature::TrustedKeys;
use nix_formats::store_path::StorePath;

use super::error::{Mismatch, StoreError};
use super::modulo_hash::{ModuloHasher, ModuloReader};
use super::path_lock::PathLock;
use super::root_encoding::encode_root;
use super::Store;
use crate::db::CastoreRoot;

/// The largest `.drv` file read for registration.
const MAX_DERIVATION_SIZE: u64 = 64 << 20;

/// One path of a batch for [`Store::add_nars`]: its claimed info and its NAR.
#[derive(Debug)]
pub struct NarToAdd<R> {
    /// The path info; `nar_hash` and `nar_size` (when not 0) are checked against the NAR, and
    /// `ca`, when present, against the contents and the path.
    pub info: ValidPathInfo,
    /// The NAR, read to its end (and not beyond).
    pub nar: R,
}

/// A path ingested and verified, ready to be materialised and registered.
pub(crate) struct Ready {
    pub info: ValidPathInfo,
    pub root: Node,
    pub derivation: Option<Derivation>,
}

impl Store {
    /// Adds the path `info` describes from its NAR (Nix's `addToStore(info, source)`). The NAR is
    /// checked against `info.nar_hash` and `info.nar_size` ([`StoreError::HashMismatch`],
    /// [`StoreError::SizeMismatch`]) and, if `info.ca` is set, against the content address and
    /// the path. References must be valid or the path itself. Returns `false` without reading
    /// the NAR when the path is valid already and `repair` is off; with `repair`, the path's
    /// contents are replaced by the NAR's.
    pub fn add_nar(&self, info: ValidPathInfo, nar: impl Read, repair: bool) -> Result<bool, StoreError> {
        Ok(!self.add_nars(vec![NarToAdd { info, nar }], repair)?.is_empty())
    }

    /// Adds several paths at once: each is locked, ingested and verified, materialised, and then
    /// all are registered in one transaction, so references between them are fine. Paths valid
    /// already are skipped (their NARs not read) unless `repair`. Returns the paths added.
    pub fn add_nars<R: Read>(&self, batch: Vec<NarToAdd<R>>, repair: bool) -> Result<Vec<StorePath>, StoreError> {
        self.add_nars_checked(batch, repair, None)
    }

    /// [`Store::add_nars`] with Nix's signature rule (`require-sigs`) when `trusted` is given:
    /// each path must be ultimately trusted, content-addressed, or signed by one of the keys,
    /// else [`StoreError::Untrusted`] before any NAR is read.
    pub fn add_nars_checked<R: Read>(
        &self,
        batch: Vec<NarToAdd<R>>,
        repair: bool,
        trusted: Option<&TrustedKeys>,
    ) -> Result<Vec<StorePath>, StoreError> {
        let mut seen = BTreeSet::new();
        for item in &batch {
            if !seen.insert(item.info.path.clone()) {
                return Err(StoreError::DuplicatePath(self.print(&item.info.path)));
            }
            if let Some(keys) = trusted {
                let signed = item.info.ultimate || item.info.check_signatures(&self.store_dir, keys).map(|n| n > 0).unwrap_or(false);
                if !signed {
                    return Err(StoreError::Untrusted(self.print(&item.info.path)));
                }
            }
        }
        let real_paths: Vec<_> = batch.iter().map(|item| self.real_path(&item.info.path)).collect();
        let _pool = self.pool_lock(false)?;
        let _locks = PathLock::acquire_all(real_paths.iter().map(|p| p.as_path()))?;
        let mut ready = Vec::new();
        for item in &batch {
            self.add_temp_root(&item.info.path)?;
        }
        let mut staged = Vec::new();
        for NarToAdd { info, nar } in batch {
            if !repair && self.db.is_valid(&info.path)? {
                continue;
            }
            let ingested = self.ingest_checked(&info, nar)?;
            let derivation = self.derivation_of(&info.path, &ingested.ingested.root)?;
            ready.push(Ready { info, root: ingested.ingested.root.clone(), derivation });
            staged.push(ingested);
        }
        // One durability barrier for the batch's blobs and directories, then one for its trees.
        self.castore.commit_staged(&staged)?;
        self.install_and_register(&ready)?;
        Ok(ready.into_iter().map(|r| r.info.path).collect())
    }

    /// Ingests `nar` (staged: see [`castore::StagedNar`]) and checks it against `info`. The
    /// content address, if any, is checked as Nix 2.26 checks it: hashed modulo the path's own
    /// hash part (see [`super::modulo_hash`]), so self-referencing objects are accepted.
    fn ingest_checked(&self, info: &ValidPathInfo, nar: impl Read) -> Result<castore::StagedNar, StoreError> {
        let hash_part = info.path.hash_part();
        // For a NAR address the NAR is looked through for the hash part; with SHA-256 the NAR
        // hash is the address's hash unless the hash part occurs, and only then is the NAR
        // hashed again (rendered from castore).
        let nar_algo = match &info.ca {
            Some(ca) if ca.method == Method::Nar => Some(ca.hash.algorithm()),
            _ => None,
        };
        let scan = nar_algo.map(|algo| ModuloHasher::new((algo != Algorithm::Sha256).then_some(algo), hash_part));
        let mut reader = ModuloReader::new(nar, scan);
        let staged = self.castore.ingest_nar_staged(&mut reader)?;
        let ingested = &staged.ingested;
        let printed = self.print(&info.path);
        if ingested.nar_hash != info.nar_hash {
            return Err(StoreError::HashMismatch(Box::new(Mismatch {
                path: printed,
                expected: info.nar_hash.clone(),
                got: ingested.nar_hash.clone(),
            })));
        }
        if info.nar_size != 0 && ingested.nar_size != info.nar_size {
            return Err(StoreError::SizeMismatch { path: printed, expected: info.nar_size, got: ingested.nar_size });
        }
        if let Some(ca) = &info.ca {
            let got = match (ca.method, reader.finish()) {
                (Method::Nar, Some((Some(hash), _))) => hash,
                (Method::Nar, Some((None, false))) => ingested.nar_hash.clone(),
                (Method::Nar, _) => {
                    // Rendering reads the directories: store them first.
                    self.castore.commit_staged([&staged])?;
                    let hasher = ModuloHasher::new(Some(ca.hash.algorithm()), hash_part);
                    let (hash, _) = self.castore.render_nar(&ingested.root, hasher)?.finish();
                    hash.unwrap_or_else(|| Hash::zero(ca.hash.algorithm()))
                }
                (Method::Flat | Method::Text, _) => self.flat_hash(&printed, ca, &ingested.root, hash_part)?,
                (Method::Git, _) => {
                    // Rendering reads the directories: store them first.
                    self.castore.commit_staged([&staged])?;
                    self.git_hash(&ingested.root, ca.hash.algorithm())?
                }
            };
            if got != ca.hash {
                return Err(StoreError::CaHashMismatch(Box::new(Mismatch { path: printed, expected: ca.hash.clone(), got })));
            }
            self.check_ca_path(info, ca)?;
        }
        Ok(staged)
    }

    /// The hash of a flat or text object's single file, with the address's algorithm, modulo
    /// `hash_part`. As in Nix (which reads only the file's contents), the file may be
    /// executable: `nix store add-file` of an executable file puts one in binary caches.
    fn flat_hash(&self, printed: &str, ca: &ContentAddress, root: &Node, hash_part: &str) -> Result<Hash, StoreError> {
        let Node::File { digest, .. } = root else {
            if matches!(root, Node::Directory { .. }) {
                return Err(StoreError::FlatIsDirectory(printed.to_owned()));
            }
            return Err(StoreError::NotAFlatFile { path: printed.to_owned(), method: ca.method.name() });
        };
        let mut reader = self
            .castore
            .blobs()
            .open_read(digest)?
            .ok_or_else(|| StoreError::CorruptCastoreRoot(printed.to_owned()))?;
        let mut hasher = ModuloHasher::new(Some(ca.hash.algorithm()), hash_part);
        std::io::copy(&mut reader, &mut hasher).map_err(StoreError::io("reading blob for", printed))?;
        Ok(hasher.finish().0.unwrap_or_else(|| Hash::zero(ca.hash.algorithm())))
    }

    /// Checks that the content address, name and references give the path claimed (Nix's
    /// `ValidPathInfo::isContentAddressed`): a reference to the path itself counts as `self`
    /// (`:self` in the path's type) for NAR SHA-256 addresses; flat and other NAR addresses
    /// allow no references at all; a text address allows no self-reference (Nix 2.26 fails an
    /// assertion there; casnix refuses the path as not content-addressed).
    pub(crate) fn check_ca_path(&self, info: &ValidPathInfo, ca: &ContentAddress) -> Result<(), StoreError> {
        let self_ref = info.references.contains(&info.path);
        let others = info.references.iter().filter(|r| **r != info.path);
        let mismatch = |computed: String| StoreError::CaPathMismatch {
            path: self.print(&info.path),
            ca: ca.to_string(),
            computed,
        };
        let nar_sha256 = ca.method == Method::Nar && ca.hash.algorithm() == Algorithm::Sha256;
        if ca.method != Method::Text && !nar_sha256 && !info.references.is_empty() {
            return Err(StoreError::CaReferencesNotAllowed { name: info.path.name().to_owned() });
        }
        if ca.method == Method::Text && self_ref {
            return Err(mismatch(String::new()));
        }
        let computed = ca.store_path(&self.store_dir, info.path.name(), others, self_ref)?;
        if computed != info.path {
            return Err(mismatch(self.print(&computed)));
        }
        Ok(())
    }

    /// For a `.drv` path, its parsed derivation (the database needs its outputs).
    pub(crate) fn derivation_of(&self, path: &StorePath, root: &Node) -> Result<Option<Derivation>, StoreError> {
        if !path.is_derivation() {
            return Ok(None);
        }
        let printed = self.print(path);
        let Node::File { digest, size, .. } = root else {
            return Err(StoreError::DerivationNotAFile(printed));
        };
        if *size > MAX_DERIVATION_SIZE {
            return Err(StoreError::DerivationNotAFile(printed));
        }
        let reader =
            self.castore.blobs().open_read(digest)?.ok_or_else(|| StoreError::CorruptCastoreRoot(printed.clone()))?;
        let mut bytes = Vec::new();
        reader
            .take(MAX_DERIVATION_SIZE)
            .read_to_end(&mut bytes)
            .map_err(StoreError::io("reading derivation", &printed))?;
        let name = path.name().strip_suffix(".drv").unwrap_or(path.name());
        Derivation::parse_aterm(&bytes, name, &self.store_dir)
            .map(Some)
            .map_err(|source| StoreError::Derivation { path: printed, source })
    }

    /// With the paths' locks held: materialises every path (replacing leftovers), records the
    /// castore roots, then registers all paths in one transaction.
    pub(crate) fn install_and_register(&self, ready: &[Ready]) -> Result<(), StoreError> {
        if ready.is_empty() {
            return Ok(());
        }
        // Paths with nothing at their place are created together (one barrier); the others
        // (leftovers, repairs) are swapped in one by one.
        let reals: Vec<std::path::PathBuf> = ready.iter().map(|r| self.real_path(&r.info.path)).collect();
        let (fresh, occupied): (Vec<_>, Vec<_>) =
            ready.iter().zip(&reals).partition(|(_, real)| std::fs::symlink_metadata(real).is_err());
        let fresh: Vec<(&Node, &std::path::Path)> = fresh.iter().map(|(r, real)| (&r.root, real.as_path())).collect();
        self.castore.materialise_many_atomically(&fresh)?;
        for (r, _) in occupied {
            self.install(&r.info.path, &r.root)?;
        }
        let roots: Vec<CastoreRoot> = ready
            .iter()
            .map(|r| CastoreRoot { path: r.info.path.clone(), nar_hash: r.info.nar_hash.clone(), root: encode_root(&r.root) })
            .collect();
        self.db.set_castore_roots(&roots)?;
        let infos: Vec<ValidPathInfo> = ready.iter().map(|r| r.info.clone()).collect();
        let derivations: BTreeMap<StorePath, Derivation> =
            ready.iter().filter_map(|r| Some((r.info.path.clone(), r.derivation.clone()?))).collect();
        self.db.register_valid_paths(&infos, &derivations)?;
        Ok(())
    }

    /// Materialises `root` at `path`'s place. Whatever is there already (the remains of an add
    /// that did not finish, contents being repaired, a builder's own tree) is swapped out in one
    /// atomic exchange with a complete twin and then deleted, so a valid path is never missing
    /// or partial, even for a moment.
    pub(crate) fn install(&self, path: &StorePath, root: &Node) -> Result<(), StoreError> {
        let real = self.real_path(path);
        if std::fs::symlink_metadata(&real).is_err() {
            self.castore.materialise_atomically(root, &real)?;
            return Ok(());
        }
        // The twin's name ends in `.tmp-…`, so `remove_leftovers` knows it after a crash.
        let twin = self.real_store_dir.join(format!("{path}.tmp-swap-{}", std::process::id()));
        castore::remove_tree(&twin).map_err(StoreError::io("removing", &twin))?;
        self.castore.materialise_atomically(root, &twin)?;
        rustix::fs::renameat_with(rustix::fs::CWD, &twin, rustix::fs::CWD, &real, rustix::fs::RenameFlags::EXCHANGE)
            .map_err(|e| StoreError::io("exchanging", &real)(e.into()))?;
        // `twin` now holds what was there before.
        castore::remove_tree(&twin).map_err(StoreError::io("removing", &twin))?;
        Ok(())
    }
}
