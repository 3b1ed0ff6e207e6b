//! `builtin:buildenv`: a profile's symlink tree, as Nix 2.26's `buildProfile` makes it. Each
//! active package (in priority order, lower first) is linked in; directories present in
//! several packages are merged; a file in two packages of the same priority is a conflict;
//! packages named in `nix-support/propagated-user-env-packages` follow with lower priority.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix_formats::derivation::Derivation;

use super::{attr, BuiltinError};

/// The most symlinks one profile may get.
const MAX_LINKS: usize = 10_000_000;

/// Names never linked into a profile (useless or pointless collisions).
const SKIPPED_SUFFIXES: &[&str] =
    &["/propagated-build-inputs", "/nix-support", "/perllocal.pod", "/info/dir", "/log", "/manifest.nix", "/manifest.json"];

#[derive(Default)]
struct State {
    priorities: BTreeMap<PathBuf, i64>,
    links: usize,
}

fn conflict(a: &Path, b: &Path) -> BuiltinError {
    BuiltinError(format!(
        "Unable to build profile. There is a conflict for the following files:\n\n  {}\n  {}",
        a.display(),
        b.display()
    ))
}

fn create_links(state: &mut State, src_dir: &Path, dst_dir: &Path, priority: i64, warnings: &mut Vec<String>) -> Result<(), BuiltinError> {
    let entries = match std::fs::read_dir(src_dir) {
        Ok(entries) => entries,
        Err(e) if e.raw_os_error() == Some(20) => {
            warnings.push(format!("not including '{}' in the user environment because it's not a directory", src_dir.display()));
            return Ok(());
        }
        Err(e) => return Err(BuiltinError::io(format!("reading '{}'", src_dir.display()))(e)),
    };
    let mut names: Vec<_> = entries.filter_map(Result::ok).map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        if name.as_encoded_bytes().first() == Some(&b'.') {
            continue;
        }
        let src = src_dir.join(&name);
        let dst = dst_dir.join(&name);
        let src_meta = match std::fs::metadata(&src) {
            Ok(m) => m,
            Err(_) => {
                warnings.push(format!("skipping dangling symlink '{}'", dst.display()));
                continue;
            }
        };
        let src_text = src.to_string_lossy();
        if SKIPPED_SUFFIXES.iter().any(|s| src_text.ends_with(s)) {
            continue;
        }
        let dst_meta = std::fs::symlink_metadata(&dst).ok();
        if src_meta.is_dir() {
            if let Some(dst_meta) = &dst_meta {
                if dst_meta.is_dir() {
                    create_links(state, &src, &dst, priority, warnings)?;
                    continue;
                }
                if dst_meta.file_type().is_symlink() {
                    let target = std::fs::canonicalize(&dst).map_err(BuiltinError::io(format!("resolving '{}'", dst.display())))?;
                    if !target.is_dir() {
                        return Err(BuiltinError(format!(
                            "collision between '{}' and non-directory '{}'",
                            src.display(),
                            target.display()
                        )));
                    }
                    std::fs::remove_file(&dst).map_err(BuiltinError::io(format!("unlinking '{}'", dst.display())))?;
                    std::fs::DirBuilder::new()
                        .mode(0o755)
                        .create(&dst)
                        .map_err(BuiltinError::io(format!("creating directory '{}'", dst.display())))?;
                    let previous = state.priorities.get(&dst).copied().unwrap_or(0);
                    create_links(state, &target, &dst, previous, warnings)?;
                    create_links(state, &src, &dst, priority, warnings)?;
                    continue;
                }
            }
        } else if let Some(dst_meta) = &dst_meta {
            if dst_meta.file_type().is_symlink() {
                let previous = state.priorities.get(&dst).copied().unwrap_or(0);
                if previous == priority {
                    let existing = std::fs::read_link(&dst).unwrap_or_else(|_| dst.clone());
                    return Err(conflict(&existing, &src));
                }
                if previous < priority {
                    continue;
                }
                std::fs::remove_file(&dst).map_err(BuiltinError::io(format!("unlinking '{}'", dst.display())))?;
            } else if dst_meta.is_dir() {
                return Err(BuiltinError(format!(
                    "collision between non-directory '{}' and directory '{}'",
                    src.display(),
                    dst.display()
                )));
            }
        }
        std::os::unix::fs::symlink(&src, &dst).map_err(BuiltinError::io(format!("creating symlink '{}'", dst.display())))?;
        state.priorities.insert(dst, priority);
        state.links += 1;
        if state.links > MAX_LINKS {
            return Err(BuiltinError("too many files in the user environment".into()));
        }
    }
    Ok(())
}

/// One package of the `derivations` attribute.
struct Package {
    path: PathBuf,
    active: bool,
    priority: i64,
}

fn parse_packages(text: &str) -> Result<Vec<Package>, BuiltinError> {
    let bad = || BuiltinError("malformed 'derivations' attribute".into());
    let mut words = text.split_whitespace();
    let mut packages = Vec::new();
    while let Some(active) = words.next() {
        let priority: i64 = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
        let count: usize = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
        for _ in 0..count {
            let path = words.next().ok_or_else(bad)?;
            packages.push(Package { path: PathBuf::from(path), active: active != "false", priority });
        }
    }
    Ok(packages)
}

/// Builds the profile at `out`.
pub fn build(drv: &Derivation, out: &Path) -> Result<(), BuiltinError> {
    let mut packages = parse_packages(&attr(drv, "derivations")?)?;
    let manifest = attr(drv, "manifest")?;
    std::fs::create_dir_all(out).map_err(BuiltinError::io(format!("creating '{}'", out.display())))?;
    packages.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.path.cmp(&b.path)));
    let mut state = State::default();
    let mut warnings = Vec::new();
    let mut done = BTreeSet::new();
    let mut postponed = BTreeSet::new();
    let mut add = |dir: &Path, priority: i64, state: &mut State, postponed: &mut BTreeSet<PathBuf>| -> Result<(), BuiltinError> {
        if !done.insert(dir.to_path_buf()) {
            return Ok(());
        }
        create_links(state, dir, out, priority, &mut warnings)?;
        if let Ok(text) = std::fs::read_to_string(dir.join("nix-support/propagated-user-env-packages")) {
            for p in text.split([' ', '\n']).filter(|p| !p.is_empty()) {
                postponed.insert(PathBuf::from(p));
            }
        }
        Ok(())
    };
    for p in packages.iter().filter(|p| p.active) {
        add(&p.path, p.priority, &mut state, &mut postponed)?;
    }
    let mut counter = 1000;
    while !postponed.is_empty() {
        let batch = std::mem::take(&mut postponed);
        for dir in batch {
            add(&dir, counter, &mut state, &mut postponed)?;
            counter += 1;
        }
    }
    std::os::unix::fs::symlink(&manifest, out.join("manifest.nix"))
        .map_err(BuiltinError::io(format!("creating '{}/manifest.nix'", out.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drv(env: &[(&str, String)]) -> Derivation {
        Derivation {
            name: "user-environment".into(),
            outputs: Default::default(),
            input_drvs: Default::default(),
            input_srcs: Default::default(),
            system: b"builtin".to_vec(),
            builder: b"builtin:buildenv".to_vec(),
            args: vec![],
            env: env.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.clone().into_bytes())).collect(),
        }
    }

    #[test]
    fn merges_packages_by_priority_and_reports_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        for (pkg, content) in [(&a, "a"), (&b, "b")] {
            std::fs::create_dir_all(pkg.join("bin")).unwrap();
            std::fs::write(pkg.join("bin/tool"), content).unwrap();
            std::fs::write(pkg.join(format!("bin/only-{content}")), content).unwrap();
        }
        let out = dir.path().join("out");
        let packages = format!("true 5 1 {} true 3 1 {}", a.display(), b.display());
        build(&drv(&[("derivations", packages), ("manifest", "/m".into())]), &out).unwrap();
        // b has the lower number, so the higher priority: its tool wins.
        assert_eq!(std::fs::read_to_string(out.join("bin/tool")).unwrap(), "b");
        assert!(out.join("bin/only-a").exists() && out.join("bin/only-b").exists());
        assert_eq!(std::fs::read_link(out.join("manifest.nix")).unwrap(), Path::new("/m"));
        let out2 = dir.path().join("out2");
        let same = format!("true 5 1 {} true 5 1 {}", a.display(), b.display());
        let err = build(&drv(&[("derivations", same), ("manifest", "/m".into())]), &out2).unwrap_err();
        assert!(err.0.contains("There is a conflict"), "{err}");
        let inactive = format!("false 5 1 {}", a.display());
        let out3 = dir.path().join("out3");
        build(&drv(&[("derivations", inactive), ("manifest", "/m".into())]), &out3).unwrap();
        assert!(!out3.join("bin").exists());
    }
}
