//! The evaluator's I/O interface. Builtins that touch the filesystem or the store go through
//! [`EvalIo`]; the CLI implements the store side over the daemon socket, [`LocalIo`] reads the
//! local filesystem and only computes store paths.

use std::io;
use std::path::Path;

use nix_formats::hash::Algorithm;
use nix_formats::store_path::StoreDir;

/// The type of a directory entry, as `builtins.readDir` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// Anything else.
    Unknown,
}

impl FileKind {
    /// The name Nix uses (`regular`, `directory`, `symlink`, `unknown`).
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Regular => "regular",
            FileKind::Directory => "directory",
            FileKind::Symlink => "symlink",
            FileKind::Unknown => "unknown",
        }
    }

    /// The kind of a file type as the file system reports it.
    pub fn of(ft: std::fs::FileType) -> FileKind {
        if ft.is_symlink() {
            FileKind::Symlink
        } else if ft.is_dir() {
            FileKind::Directory
        } else if ft.is_file() {
            FileKind::Regular
        } else {
            FileKind::Unknown
        }
    }
}

/// Errors of the I/O interface.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The filesystem said no.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The store is not available or refused.
    #[error("{0}")]
    Store(String),
}

/// Everything the evaluator needs from the outside world.
pub trait EvalIo {
    /// The store directory (`/nix/store`).
    fn store_dir(&self) -> &StoreDir;

    /// Reads a whole file (following symlinks).
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, IoError>;

    /// Lists a directory: entry names and their types, in any order.
    fn read_dir(&mut self, path: &str) -> Result<Vec<(String, FileKind)>, IoError>;

    /// The type of `path` without following a final symlink; `None` if it does not exist.
    fn file_kind(&mut self, path: &str) -> Result<Option<FileKind>, IoError>;

    /// Whether `path` exists (following symlinks).
    fn path_exists(&mut self, path: &str) -> Result<bool, IoError> {
        Ok(self.file_kind(path)?.is_some())
    }

    /// Adds `path` (recursively, NAR-hashed) to the store as `name`, keeping only entries for which
    /// `filter` (given the absolute path and its kind) says yes; returns the store path.
    fn add_path_to_store(
        &mut self,
        path: &str,
        name: &str,
        filter: &mut dyn FnMut(&str, FileKind) -> Result<bool, IoError>,
    ) -> Result<String, IoError>;

    /// Adds one regular file, hashed flat (not as a NAR), to the store as `name`; returns the
    /// store path.
    fn add_flat_file_to_store(&mut self, path: &str, name: &str) -> Result<String, IoError> {
        let data = self.read_file(path)?;
        let hash = nix_formats::hash::Hash::of(Algorithm::Sha256, &data);
        let sp = self.store_dir().make_fixed_output_path(name, false, &hash, [], false).map_err(store_error)?;
        Ok(self.store_dir().print(&sp))
    }

    /// Adds a text file with references to the store (`builtins.toFile`); returns the store path.
    fn add_text_to_store(&mut self, name: &str, text: &[u8], references: &[String]) -> Result<String, IoError>;

    /// Adds one file's bytes flat (SHA-256, no references) as `name` (`fetchurl`); returns the
    /// store path. By default only computes it.
    fn add_flat_to_store(&mut self, name: &str, data: &[u8]) -> Result<String, IoError> {
        let hash = nix_formats::hash::Hash::of(Algorithm::Sha256, data);
        let sp = self.store_dir().make_fixed_output_path(name, false, &hash, [], false).map_err(store_error)?;
        Ok(self.store_dir().print(&sp))
    }

    /// The references of a valid store path (a `=drv` context needs the derivation's closure).
    fn query_references(&mut self, path: &str) -> Result<Vec<String>, IoError> {
        Err(IoError::Store(format!("cannot query the references of '{path}' here")))
    }

    /// Makes sure the store paths are valid (building derivation outputs for IFD) before their
    /// contents are read. `paths` are encoded as in a string's context.
    fn realise_context(&mut self, paths: &[String]) -> Result<(), IoError> {
        let _ = paths;
        Ok(())
    }
}

/// Local filesystem access; store paths are computed, nothing is written.
pub struct LocalIo {
    store_dir: StoreDir,
    /// References of the text files "added" so far, for [`EvalIo::query_references`].
    text_refs: std::collections::HashMap<String, Vec<String>>,
}

impl LocalIo {
    /// For the store directory `store_dir`.
    pub fn new(store_dir: &str) -> LocalIo {
        LocalIo { store_dir: StoreDir::new(store_dir), text_refs: Default::default() }
    }
}

fn store_error(e: impl std::fmt::Display) -> IoError {
    IoError::Store(e.to_string())
}

impl EvalIo for LocalIo {
    fn store_dir(&self) -> &StoreDir {
        &self.store_dir
    }

    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, IoError> {
        Ok(std::fs::read(path)?)
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<(String, FileKind)>, IoError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let kind = FileKind::of(entry.file_type()?);
            out.push((entry.file_name().to_string_lossy().into_owned(), kind));
        }
        Ok(out)
    }

    fn file_kind(&mut self, path: &str) -> Result<Option<FileKind>, IoError> {
        match std::fs::symlink_metadata(path) {
            Ok(m) => Ok(Some(FileKind::of(m.file_type()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn path_exists(&mut self, path: &str) -> Result<bool, IoError> {
        match std::fs::metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn add_path_to_store(
        &mut self,
        path: &str,
        name: &str,
        filter: &mut dyn FnMut(&str, FileKind) -> Result<bool, IoError>,
    ) -> Result<String, IoError> {
        let hash = crate::nar_filter::hash_filtered(Path::new(path), Algorithm::Sha256, filter)?;
        let sp = self.store_dir.make_fixed_output_path(name, true, &hash, [], false).map_err(store_error)?;
        Ok(self.store_dir.print(&sp))
    }

    fn add_text_to_store(&mut self, name: &str, text: &[u8], references: &[String]) -> Result<String, IoError> {
        let refs = references
            .iter()
            .map(|r| self.store_dir.parse(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(store_error)?;
        let hash = nix_formats::hash::Hash::of(Algorithm::Sha256, text);
        let sp = self.store_dir.make_text_path(name, &hash, refs.iter()).map_err(store_error)?;
        let printed = self.store_dir.print(&sp);
        self.text_refs.insert(printed.clone(), references.to_vec());
        Ok(printed)
    }

    fn query_references(&mut self, path: &str) -> Result<Vec<String>, IoError> {
        Ok(self.text_refs.get(path).cloned().unwrap_or_default())
    }
}
