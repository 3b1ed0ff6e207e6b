//! The evaluator's I/O over a store daemon: files are read from the filesystem (store paths are
//! real files once valid), additions go to the daemon (`AddToStore`, `AddTextToStore`), and
//! import from derivation builds through `BuildPaths` first.
//!
//! The evaluator is synchronous and must not run on a tokio worker thread: this I/O owns a
//! current-thread runtime and blocks on it for each request, from the evaluator's own thread.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use eval::builtins::context::{decode, ContextElem};
use eval::io::{EvalIo, FileKind, IoError, LocalIo};
use nix_formats::derived_path::{DerivedPath, OutputsSpec, SingleDerivedPath};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::store_path::{StoreDir, StorePath};
use worker_protocol::ops::request::add::{CaMethodAlgo, IngestionMethod};
use worker_protocol::types::BuildMode;

use super::store::connect::{daemon_error, Connection, StoreLocation};

/// [`EvalIo`] backed by a daemon connection.
pub struct DaemonIo {
    runtime: tokio::runtime::Runtime,
    conn: Connection,
    local: LocalIo,
    store_dir: StoreDir,
    /// Context elements already realised (several imports from one derivation build it once).
    realised: HashSet<String>,
    /// Trees added so far by name and NAR hash (a source interpolated many times is sent once).
    added: HashMap<(String, Hash), String>,
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

/// Serialises `path` as a NAR into `out`, leaving out entries `filter` rejects.
fn filtered_nar(
    path: &Path,
    filter: &mut dyn FnMut(&str, FileKind) -> Result<bool, IoError>,
    out: &mut Vec<u8>,
) -> Result<(), IoError> {
    put(out, b"nix-archive-1");
    nar_node(path, filter, out)
}

fn put(out: &mut Vec<u8>, s: &[u8]) {
    out.write_all(&(s.len() as u64).to_le_bytes()).ok();
    out.extend_from_slice(s);
    out.resize(out.len() + (8 - s.len() % 8) % 8, 0);
}

fn nar_node(
    path: &Path,
    filter: &mut dyn FnMut(&str, FileKind) -> Result<bool, IoError>,
    out: &mut Vec<u8>,
) -> Result<(), IoError> {
    let meta = std::fs::symlink_metadata(path)?;
    put(out, b"(");
    put(out, b"type");
    if meta.file_type().is_symlink() {
        put(out, b"symlink");
        put(out, b"target");
        put(out, std::fs::read_link(path)?.as_os_str().as_bytes());
    } else if meta.is_dir() {
        put(out, b"directory");
        let mut names: Vec<_> = std::fs::read_dir(path)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child = path.join(&name);
            let ft = std::fs::symlink_metadata(&child)?.file_type();
            let kind = if ft.is_symlink() {
                FileKind::Symlink
            } else if ft.is_dir() {
                FileKind::Directory
            } else if ft.is_file() {
                FileKind::Regular
            } else {
                FileKind::Unknown
            };
            if !filter(&child.to_string_lossy(), kind)? {
                continue;
            }
            put(out, b"entry");
            put(out, b"(");
            put(out, b"name");
            put(out, name.as_bytes());
            put(out, b"node");
            nar_node(&child, filter, out)?;
            put(out, b")");
        }
    } else if meta.is_file() {
        put(out, b"regular");
        if meta.permissions().mode() & 0o100 != 0 {
            put(out, b"executable");
            put(out, b"");
        }
        put(out, b"contents");
        put(out, &std::fs::read(path)?);
    } else {
        return Err(IoError::Store(format!("file '{}' has an unsupported type", path.display())));
    }
    put(out, b")");
    Ok(())
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
        let mut nar = Vec::new();
        filtered_nar(Path::new(path), filter, &mut nar)?;
        let key = (name.to_string(), Hash::of(Algorithm::Sha256, &nar));
        if let Some(known) = self.added.get(&key) {
            return Ok(known.clone());
        }
        let method = CaMethodAlgo { method: IngestionMethod::Nar, algo: Algorithm::Sha256 };
        let DaemonIo { runtime, conn, store_dir, .. } = self;
        let mut source: &[u8] = &nar;
        let info = runtime
            .block_on(conn.add_to_store(name, method, &BTreeSet::new(), false, &mut source))
            .map_err(|e| IoError::Store(format!("{:#}", daemon_error(e))))?;
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
