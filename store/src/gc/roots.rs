//! Finding garbage collector roots (Nix's `findRoots`, `findTempRoots`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use nix_formats::store_path::StorePath;
use rustix::fs::FlockOperation;

use crate::local::{Store, StoreError};

/// Roots found: each store path with the names of what roots it (links, or `{temp:<pid>}`, or
/// `{censored}`).
pub type Roots = BTreeMap<StorePath, BTreeSet<String>>;

/// The name Nix gives roots whose origin is hidden.
const CENSORED: &str = "{censored}";

/// At most this many bytes of one temporary roots file are read.
const MAX_TEMP_ROOTS_FILE: u64 = 64 << 20;

/// Directories are followed this deep under a roots directory.
const MAX_DEPTH: usize = 64;

fn is_ignorable(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied | ErrorKind::NotADirectory)
        || e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error())
}

impl Store {
    /// Every root: permanent and indirect ones, then temporary ones of live processes (Nix's
    /// `findRoots(censor)`). Temporary roots are named `{temp:<pid>}`, or `{censored}` if
    /// `censor`.
    pub fn find_roots(&self, censor: bool) -> Result<Roots, StoreError> {
        self.find_roots_reporting(censor, &mut |line| tracing::info!("{line}"))
    }

    /// [`Store::find_roots`], telling `progress` what Nix tells its user meanwhile (`removing
    /// stale link from '…' to '…'`).
    pub fn find_roots_reporting(&self, censor: bool, progress: &mut dyn FnMut(&str)) -> Result<Roots, StoreError> {
        let mut roots = self.find_roots_no_temp_reporting(censor, progress)?;
        self.find_temp_roots(&mut roots, censor)?;
        Ok(roots)
    }

    /// The roots under `gcroots/` and `profiles/`, and the runtime roots of running processes
    /// (Nix's `findRootsNoTemp`; runtime roots are named `/proc/<pid>/fd/3` and the like, or
    /// `{censored}` if `censor`). Stale links in `gcroots/auto` are removed, as Nix does.
    pub fn find_roots_no_temp(&self, censor: bool) -> Result<Roots, StoreError> {
        self.find_roots_no_temp_reporting(censor, &mut |line| tracing::info!("{line}"))
    }

    /// [`Store::find_roots_no_temp`] with what Nix reports meanwhile going to `progress`.
    pub fn find_roots_no_temp_reporting(&self, censor: bool, progress: &mut dyn FnMut(&str)) -> Result<Roots, StoreError> {
        let mut roots = Roots::new();
        let mut notes = Vec::new();
        for dir in ["gcroots", "profiles"] {
            self.scan_roots(&self.state_dir().join(dir), 0, &mut roots, &mut notes)?;
        }
        for note in &notes {
            progress(note);
        }
        self.find_runtime_roots(&mut roots, censor)?;
        Ok(roots)
    }

    /// Adds the runtime roots (see [`super::runtime_roots`]): valid paths that running
    /// processes use.
    pub fn find_runtime_roots(&self, roots: &mut Roots, censor: bool) -> Result<(), StoreError> {
        let prefix = format!("{}/", self.store_dir().as_str());
        for (target, links) in super::runtime_roots::scan(&prefix) {
            let Some(path) = self.store_path_of_target(Path::new(&target)) else { continue };
            if !self.db().is_valid(&path)? {
                continue;
            }
            let names = roots.entry(path).or_default();
            if censor {
                names.insert(CENSORED.to_string());
            } else {
                names.extend(links);
            }
        }
        Ok(())
    }

    /// The store path that `target` (a link's text) names, if it is inside the store directory.
    fn store_path_of_target(&self, target: &Path) -> Option<StorePath> {
        self.store_dir().parse_prefix(target.to_str()?).ok().map(|(path, _)| path)
    }

    fn found_root(&self, link: &Path, target: &Path, roots: &mut Roots) -> Result<(), StoreError> {
        if let Some(path) = self.store_path_of_target(target) {
            if self.db().is_valid(&path)? {
                roots.entry(path).or_default().insert(link.display().to_string());
            }
        }
        Ok(())
    }

    fn scan_roots(&self, path: &Path, depth: usize, roots: &mut Roots, notes: &mut Vec<String>) -> Result<(), StoreError> {
        match self.scan_one(path, depth, roots, notes) {
            Err(StoreError::Io { source, .. }) if is_ignorable(&source) => Ok(()),
            other => other,
        }
    }

    fn scan_one(&self, path: &Path, depth: usize, roots: &mut Roots, notes: &mut Vec<String>) -> Result<(), StoreError> {
        let meta = std::fs::symlink_metadata(path).map_err(StoreError::io("reading", path))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            if depth >= MAX_DEPTH {
                return Ok(());
            }
            for entry in std::fs::read_dir(path).map_err(StoreError::io("reading", path))? {
                let entry = entry.map_err(StoreError::io("reading", path))?;
                self.scan_roots(&entry.path(), depth + 1, roots, notes)?;
            }
        } else if kind.is_symlink() {
            let target = std::fs::read_link(path).map_err(StoreError::io("reading link", path))?;
            if self.store_path_of_target(&target).is_some() {
                return self.found_root(path, &target, roots);
            }
            // An indirect root: the link points at a link into the store.
            let target = match path.parent() {
                Some(parent) if target.is_relative() => parent.join(&target),
                _ => target,
            };
            match std::fs::symlink_metadata(&target) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if path.starts_with(self.state_dir().join("gcroots").join("auto")) {
                        notes.push(format!(
                            "removing stale link from '{}' to '{}'",
                            path.display(),
                            target.display()
                        ));
                        let _ = std::fs::remove_file(path);
                    }
                }
                Err(e) => return Err(StoreError::io("reading", &target)(e)),
                Ok(meta) if meta.file_type().is_symlink() => {
                    let target2 = std::fs::read_link(&target).map_err(StoreError::io("reading link", &target))?;
                    self.found_root(&target, &target2, roots)?;
                }
                Ok(_) => {}
            }
        } else if kind.is_file() {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                if let Ok(store_path) = StorePath::from_base_name(name) {
                    if self.db().is_valid(&store_path)? {
                        roots.entry(store_path).or_default().insert(path.display().to_string());
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds the temporary roots of live processes (Nix's `findTempRoots`): a file whose lock can
    /// be taken belongs to a dead process and is removed.
    pub fn find_temp_roots(&self, roots: &mut Roots, censor: bool) -> Result<(), StoreError> {
        let dir = self.state_dir().join("temproots");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io("reading", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(StoreError::io("reading", &dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let Some(pid) = temp_roots_owner(name) else { continue };
            let path = entry.path();
            for printed in read_temp_roots_file(&path)? {
                let Some(store_path) = self.store_path_of_target(Path::new(&printed)) else { continue };
                let label = if censor { CENSORED.to_string() } else { format!("{{temp:{pid}}}") };
                roots.entry(store_path).or_default().insert(label);
            }
        }
        Ok(())
    }
}

/// The process a temporary roots file belongs to: its name is `<pid>` (a process's file) or
/// `<pid>-<n>` (one `Store`'s, see [`crate::TempRootsScope`]). Nix reads both with `std::stoi`,
/// which stops at the `-`.
fn temp_roots_owner(name: &str) -> Option<u32> {
    let (pid, rest) = match name.split_once('-') {
        Some((pid, n)) => (pid, Some(n)),
        None => (name, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(pid) || rest.is_some_and(|n| !all_digits(n)) {
        return None;
    }
    pid.parse().ok()
}

/// The roots in one `temproots/<pid>` file, or none if its process is dead (then the file is
/// removed and marked stale as Nix does).
fn read_temp_roots_file(path: &PathBuf) -> Result<Vec<String>, StoreError> {
    let mut file = match std::fs::OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("opening temporary roots file", path)(e)),
    };
    if try_lock_exclusive(&file, path)? {
        let _ = std::fs::remove_file(path);
        let _ = file.write_all(b"d");
        return Ok(Vec::new());
    }
    let mut contents = Vec::new();
    (&mut file)
        .take(MAX_TEMP_ROOTS_FILE)
        .read_to_end(&mut contents)
        .map_err(StoreError::io("reading temporary roots file", path))?;
    // Only NUL-terminated records count: a record being written has no NUL yet.
    let complete = match contents.iter().rposition(|b| *b == 0) {
        Some(last) => &contents[..last],
        None => return Ok(Vec::new()),
    };
    Ok(complete.split(|b| *b == 0).filter_map(|r| std::str::from_utf8(r).ok()).map(str::to_string).collect())
}

fn try_lock_exclusive(file: &File, path: &Path) -> Result<bool, StoreError> {
    crate::flock::lock(file, FlockOperation::NonBlockingLockExclusive).map_err(StoreError::io("locking", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_roots_file_names() {
        assert_eq!(temp_roots_owner("1234"), Some(1234));
        assert_eq!(temp_roots_owner("1234-7"), Some(1234));
        for bad in ["", "-", "12-", "-3", "12-a", "a", "1 2", "12-3-4", "99999999999"] {
            assert_eq!(temp_roots_owner(bad), None, "{bad}");
        }
    }
}
