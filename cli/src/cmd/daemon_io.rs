//! The evaluator's I/O over a store daemon: files are read from the filesystem (store paths are
//! real files once valid), additions go to the daemon (`AddToStore`, `AddTextToStore`), and
//! import from derivation builds through `BuildPaths` first.
//!
//! The evaluator is synchronous and must not run on a tokio worker thread: this I/O owns a
//! current-thread runtime and blocks on it for each request, from the evaluator's own thread.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use eval::builtins::context::{decode, ContextElem};
use eval::io::{EvalIo, FileKind, IoError, LocalIo};
use nix_formats::derived_path::{DerivedPath, OutputsSpec, SingleDerivedPath};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::store_path::{StoreDir, StorePath};
use worker_protocol::ops::request::add::{CaMethodAlgo, IngestionMethod};
use worker_protocol::types::BuildMode;

use super::filtered_nar;
use super::store::bridge;
use super::store::connect::{daemon_error, Connection, StoreLocation};

/// [`EvalIo`] backed by a daemon connection.
pub struct DaemonIo {
    runtime: tokio::runtime::Runtime,
    conn: Connection,
    local: LocalIo,
    store_dir: StoreDir,
    /// Context elements already realised (several imports from one derivation build it once).
    realised: HashSet<String>,
    /// Trees added so far by name, path and selection (a source interpolated many times is sent
    /// once, as Nix caches its copies of sources).
    added: HashMap<(String, String, Hash), String>,
}

fn store_error(e: impl std::fmt::Display) -> IoError {
    IoError::Store(e.to_string())
}

impl DaemonIo {
    /// Connects to the daemon at `location`.
    pub fn connect(location: &StoreLocation) -> anyhow::Result<DaemonIo> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
        let conn = runtime.block_on(location.connect())?;
        let store_dir = StoreDir::from_env();
        Ok(DaemonIo { runtime, local: LocalIo::new(store_dir.as_str()), conn, store_dir, realised: HashSet::new(), added: HashMap::new() })
    }

    fn parse(&self, path: &str) -> Result<StorePath, IoError> {
        self.store_dir.parse(path).map_err(store_error)
    }

    /// Builds `paths` (outputs of derivations) through the daemon.
    pub fn build(&mut self, paths: &[DerivedPath]) -> anyhow::Result<()> {
        let DaemonIo { runtime, conn, .. } = self;
        runtime.block_on(conn.build_paths(paths, BuildMode::Normal)).map_err(daemon_error)
    }

    /// Whether `path` is valid in the daemon's store.
    pub fn is_valid(&mut self, path: &StorePath) -> anyhow::Result<bool> {
        let DaemonIo { runtime, conn, .. } = self;
        runtime.block_on(conn.is_valid_path(path)).map_err(daemon_error)
    }

    /// The outputs of the derivation `drv` and their paths where known
    /// (`QueryDerivationOutputMap`).
    pub fn output_map(&mut self, drv: &StorePath) -> anyhow::Result<std::collections::BTreeMap<String, Option<StorePath>>> {
        let DaemonIo { runtime, conn, .. } = self;
        runtime.block_on(conn.query_derivation_output_map(drv)).map_err(daemon_error)
    }

    /// Makes the symlink `link` (absolute) to `path` and registers it with the daemon as an
    /// indirect GC root, as `nix-build -o` does with a local daemon.
    pub fn add_root(&mut self, path: &StorePath, link: &str) -> anyhow::Result<()> {
        let target = self.store_dir.print(path);
        let tmp = format!("{link}.tmp-{}", std::process::id());
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp)?;
        std::fs::rename(&tmp, link)?;
        let DaemonIo { runtime, conn, .. } = self;
        runtime.block_on(conn.add_indirect_root(link)).map_err(daemon_error)?;
        Ok(())
    }
}

impl EvalIo for DaemonIo {
    fn store_dir(&self) -> &StoreDir {
        &self.store_dir
    }

    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, IoError> {
        self.local.read_file(path)
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<(String, FileKind)>, IoError> {
        self.local.read_dir(path)
    }

    fn file_kind(&mut self, path: &str) -> Result<Option<FileKind>, IoError> {
        self.local.file_kind(path)
    }

    fn path_exists(&mut self, path: &str) -> Result<bool, IoError> {
        self.local.path_exists(path)
    }

    fn add_path_to_store(
        &mut self,
        path: &str,
        name: &str,
        filter: &mut dyn FnMut(&str, FileKind) -> Result<bool, IoError>,
    ) -> Result<String, IoError> {
        let selection = filtered_nar::select(Path::new(path), filter)?;
        let key = (name.to_string(), path.to_string(), selection.digest().clone());
        if let Some(known) = self.added.get(&key) {
            return Ok(known.clone());
        }
        let method = CaMethodAlgo { method: IngestionMethod::Nar, algo: Algorithm::Sha256 };
        let root = PathBuf::from(path);
        let DaemonIo { runtime, conn, store_dir, .. } = self;
        let (added, produced) = runtime.block_on(async {
            let (mut reader, producer) = bridge::produce(move |out| {
                filtered_nar::dump(&root, &selection, out)
                    .map_err(|e| anyhow::anyhow!("cannot serialise '{}': {e}", root.display()))
            });
            let added = conn.add_to_store(name, method, &BTreeSet::new(), false, &mut reader).await;
            drop(reader);
            (added, producer.await)
        });
        // The reading side's error says more than the short stream it caused.
        match produced {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(IoError::Store(format!("{e:#}"))),
            Err(e) => return Err(IoError::Store(format!("the reading thread failed: {e}"))),
        }
        let info = added.map_err(|e| IoError::Store(format!("{:#}", daemon_error(e))))?;
        let printed = store_dir.print(&info.path);
        self.added.insert(key, printed.clone());
        Ok(printed)
    }

    fn add_flat_to_store(&mut self, name: &str, data: &[u8]) -> Result<String, IoError> {
        let method = CaMethodAlgo { method: IngestionMethod::Flat, algo: Algorithm::Sha256 };
        let DaemonIo { runtime, conn, store_dir, .. } = self;
        let mut source: &[u8] = data;
        let info = runtime
            .block_on(conn.add_to_store(name, method, &BTreeSet::new(), false, &mut source))
            .map_err(|e| IoError::Store(format!("{:#}", daemon_error(e))))?;
        Ok(store_dir.print(&info.path))
    }

    fn add_text_to_store(&mut self, name: &str, text: &[u8], references: &[String]) -> Result<String, IoError> {
        let refs = references.iter().map(|r| self.parse(r)).collect::<Result<BTreeSet<_>, _>>()?;
        let DaemonIo { runtime, conn, store_dir, .. } = self;
        let path = runtime
            .block_on(conn.add_text_to_store(name, text, &refs))
            .map_err(|e| IoError::Store(format!("{:#}", daemon_error(e))))?;
        Ok(store_dir.print(&path))
    }

    fn query_references(&mut self, path: &str) -> Result<Vec<String>, IoError> {
        let sp = self.parse(path)?;
        let DaemonIo { runtime, conn, store_dir, .. } = self;
        let info = runtime
            .block_on(conn.query_path_info(&sp))
            .map_err(|e| IoError::Store(format!("{:#}", daemon_error(e))))?
            .ok_or_else(|| IoError::Store(format!("path '{path}' is not valid")))?;
        Ok(info.references.iter().map(|r| store_dir.print(r)).collect())
    }

    fn realise_context(&mut self, paths: &[String]) -> Result<(), IoError> {
        let mut wanted = Vec::new();
        let mut elems = Vec::new();
        for elem in paths {
            if self.realised.contains(elem) {
                continue;
            }
            let derived = match decode(elem) {
                ContextElem::Opaque(p) | ContextElem::DrvDeep(p) => DerivedPath::Opaque(self.parse(p)?),
                ContextElem::Built { output, drv } => DerivedPath::Built {
                    drv_path: SingleDerivedPath::Opaque(self.parse(drv)?),
                    outputs: OutputsSpec::Names(BTreeSet::from([output.to_string()])),
                },
            };
            wanted.push(derived);
            elems.push(elem.clone());
        }
        if wanted.is_empty() {
            return Ok(());
        }
        self.build(&wanted).map_err(|e| IoError::Store(format!("{e:#}")))?;
        self.realised.extend(elems);
        Ok(())
    }
}
