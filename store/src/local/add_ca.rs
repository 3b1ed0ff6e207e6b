//! Adding content-addressed paths from their contents (Nix's `addToStoreFromDump`,
//! `nix-store --add`, `--add-fixed`, `builtins.toFile`): the content-address hash is computed
//! while the contents are ingested, then the path follows from it.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use castore::Ingested;
use nix_formats::content_address::{ContentAddress, Method};
use nix_formats::hash::{Algorithm, Hash, HashingWriter};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::StorePath;

use super::add::Ready;
use super::error::StoreError;
use super::hashing_reader::HashingReader;
use super::path_lock::PathLock;
use super::Store;

impl Store {
    /// Adds an object from its contents with a content address (Nix's `addToStoreFromDump`):
    /// for [`Method::Nar`] `source` is a NAR, for [`Method::Flat`] and [`Method::Text`] the
    /// file's bytes (text needs SHA-256). `references` must be valid (no self-reference).
    /// Returns the path's info (the stored one if the path was valid already).
    pub fn add_to_store(
        &self,
        name: &str,
        method: Method,
        algo: Algorithm,
        references: &BTreeSet<StorePath>,
        source: impl Read,
    ) -> Result<ValidPathInfo, StoreError> {
        let _pool = self.pool_lock(false)?;
        let (ingested, ca_hash) = match method {
            Method::Nar => {
                let extra = (algo != Algorithm::Sha256).then_some(algo);
                let mut reader = HashingReader::new(source, extra);
                let ingested = self.castore.ingest_nar(&mut reader)?;
                let hash = reader.finish().unwrap_or_else(|| ingested.nar_hash.clone());
                (ingested, hash)
            }
            Method::Flat | Method::Text => self.ingest_flat(source, algo)?,
            Method::Git => {
                let ingested = self.castore.ingest_nar(source)?;
                let hash = self.git_hash(&ingested.root, algo)?;
                (ingested, hash)
            }
        };
        let ca = ContentAddress { method, hash: ca_hash };
        self.commit_ca(name, ca, references, ingested)
    }

    /// Adds `text` as a text object (`builtins.toFile`, `.drv` files) referring to `references`.
    pub fn add_text(&self, name: &str, text: &[u8], references: &BTreeSet<StorePath>) -> Result<ValidPathInfo, StoreError> {
        self.add_to_store(name, Method::Text, Algorithm::Sha256, references, text)
    }

    /// Adds the file or tree at `source` (like `nix-store --add`, or `--add-fixed [-r] algo`):
    /// [`Method::Nar`] serialises the tree, [`Method::Flat`] and [`Method::Text`] read one file.
    pub fn add_path(&self, source: &Path, name: &str, method: Method, algo: Algorithm) -> Result<ValidPathInfo, StoreError> {
        match method {
            Method::Nar => {
                let _pool = self.pool_lock(false)?;
                let ingested = self.castore.ingest_path(source)?;
                let hash = if algo == Algorithm::Sha256 {
                    ingested.nar_hash.clone()
                } else {
                    nix_formats::nar::hash_path(source, algo)?.0
                };
                self.commit_ca(name, ContentAddress { method, hash }, &BTreeSet::new(), ingested)
            }
            Method::Flat | Method::Text => {
                let file = std::fs::File::open(source).map_err(StoreError::io("opening", source))?;
                self.add_to_store(name, method, algo, &BTreeSet::new(), file)
            }
            Method::Git => {
                let _pool = self.pool_lock(false)?;
                let ingested = self.castore.ingest_path(source)?;
                let hash = self.git_hash(&ingested.root, algo)?;
                self.commit_ca(name, ContentAddress { method, hash }, &BTreeSet::new(), ingested)
            }
        }
    }

    /// The Git hash (experimental feature `git-hashing`) of an ingested tree: its NAR,
    /// rendered from castore through a pipe, read by [`nix_formats::git::hash_nar`].
    pub(crate) fn git_hash(&self, root: &castore::Node, algo: Algorithm) -> Result<Hash, StoreError> {
        let (reader, writer) = std::io::pipe().map_err(StoreError::io("creating a pipe for", &self.state_dir))?;
        std::thread::scope(|scope| {
            let render = scope.spawn(move || self.castore.render_nar(root, writer).map(drop));
            let hashed = nix_formats::git::hash_nar(std::io::BufReader::new(reader), algo);
            let rendered = render.join().map_err(|_| {
                StoreError::io("rendering", &self.state_dir)(std::io::Error::other("the rendering thread panicked"))
            })?;
            rendered?;
            Ok(hashed?)
        })
    }

    /// Writes flat contents to a scratch file (hashing them), ingests it as a non-executable
    /// file, and removes the scratch file.
    fn ingest_flat(&self, mut source: impl Read, algo: Algorithm) -> Result<(Ingested, Hash), StoreError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let scratch_dir = self.state_dir.join("casnix").join("tmp");
        std::fs::create_dir_all(&scratch_dir).map_err(StoreError::io("creating directory", &scratch_dir))?;
        let scratch = scratch_dir.join(format!("flat-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
        let result = (|| {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&scratch)
                .map_err(StoreError::io("creating", &scratch))?;
            let mut writer = HashingWriter::new(std::io::BufWriter::new(file), algo);
            std::io::copy(&mut source, &mut writer).map_err(StoreError::io("writing", &scratch))?;
            let (hash, _, mut inner) = writer.finish();
            inner.flush().map_err(StoreError::io("writing", &scratch))?;
            drop(inner);
            let ingested = self.castore.ingest_path(&scratch)?;
            Ok((ingested, hash))
        })();
        let _ = std::fs::remove_file(&scratch);
        result
    }

    /// Computes the path of an ingested object, then (under its lock, unless valid already)
    /// materialises and registers it.
    fn commit_ca(
        &self,
        name: &str,
        ca: ContentAddress,
        references: &BTreeSet<StorePath>,
        ingested: Ingested,
    ) -> Result<ValidPathInfo, StoreError> {
        let path = ca.store_path(&self.store_dir, name, references.iter(), false)?;
        let mut info = ValidPathInfo::new(path.clone(), ingested.nar_hash);
        info.nar_size = ingested.nar_size;
        info.references = references.clone();
        info.ca = Some(ca);
        self.add_temp_root(&path)?;
        if let Some(existing) = self.db.query_path_info(&path)? {
            return Ok(existing);
        }
        let _lock = PathLock::acquire(&self.real_path(&path))?;
        if let Some(existing) = self.db.query_path_info(&path)? {
            return Ok(existing);
        }
        let derivation = self.derivation_of(&path, &ingested.root)?;
        self.install_and_register(&[Ready { info, root: ingested.root, derivation }])?;
        self.db.query_path_info(&path)?.ok_or_else(|| StoreError::InvalidPath(self.print(&path)))
    }
}
