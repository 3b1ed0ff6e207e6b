//! `fetchurl`, `fetchTarball` and `fetchGit`, offline: `file://` URLs (and plain paths) and local
//! Git repositories read with the `git` command. The store paths are Nix 2.26's: `fetchurl` adds
//! the file flat (SHA-256) named after the URL's last component, `fetchTarball` unpacks (a single
//! top-level directory is entered) and adds the tree as `source`, `fetchGit` adds the commit's
//! tree as `source` and says `rev`, `shortRev`, `revCount`, `lastModified`, ...

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use nix_formats::hash::{Algorithm, Hash};

use super::{make_attrs, PrimOpDef};
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Evaluator;
use crate::value::{Context, Value};

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "fetchurl", arity: 1, fun: fetchurl },
    PrimOpDef { name: "fetchTarball", arity: 1, fun: fetch_tarball },
    PrimOpDef { name: "fetchGit", arity: 1, fun: fetch_git },
];

fn io_error(e: impl std::fmt::Display) -> EvalError {
    EvalError::new(ErrorKind::Io, e.to_string())
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> EvalResult<Scratch> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "casnix-fetch-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(io_error)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The local file a URL names (`file://` or an absolute path); other schemes need the network.
fn local_file(url: &str) -> EvalResult<String> {
    if let Some(rest) = url.strip_prefix("file://") {
        return Ok(rest.to_string());
    }
    if url.starts_with('/') {
        return Ok(url.to_string());
    }
    Err(EvalError::other(format!(
        "unable to download '{url}': casnix fetches offline only ('file://' URLs and local paths)"
    )))
}

/// `url`, `sha256` and `name` of a `fetchurl`/`fetchTarball` argument.
fn fetch_args(ev: &mut Evaluator, arg: &Value, who: &str, default_name: &str) -> EvalResult<(String, Option<Hash>, String)> {
    let v = ev.force(arg)?;
    let (mut url, mut hash, mut name) = (None, None, String::new());
    let mut name_given = false;
    let is_attrs = matches!(v, Value::Attrs(_));
    if let Value::Attrs(a) = &v {
        for attr in a.iter() {
            match attr.name.as_str() {
                "url" => url = Some(no_context(ev, &attr.value)?),
                "sha256" => {
                    let text = no_context(ev, &attr.value)?;
                    hash = Some(if text.is_empty() {
                        Hash::zero(Algorithm::Sha256)
                    } else {
                        Hash::parse_any(&text, Some(Algorithm::Sha256)).map_err(|e| EvalError::other(e.to_string()))?
                    });
                }
                "name" => {
                    name_given = true;
                    name = no_context(ev, &attr.value)?;
                }
                other => return Err(EvalError::other(format!("unsupported argument '{other}' to '{who}'"))),
            }
        }
    } else {
        url = Some(no_context(ev, &v)?);
    }
    let url = url.ok_or_else(|| EvalError::other("'url' argument required"))?;
    if name.is_empty() {
        name = if default_name.is_empty() { crate::path::base_name(&url).to_string() } else { default_name.to_string() };
    }
    if let Err(e) = nix_formats::store_path::check_name(&name, &name) {
        let resolution = if name_given {
            format!("Please change the value for the 'name' attribute passed to '{who}', so that it can create a valid store path.")
        } else if is_attrs {
            format!("Please add a valid 'name' attribute to the argument for '{who}', so that it can create a valid store path.")
        } else {
            format!("Please pass an attribute set with 'url' and 'name' attributes to '{who}',  so that it can create a valid store path.")
        };
        let reason = e.to_string();
        let reason = reason.split_once(": ").map(|(_, r)| r.to_string()).unwrap_or(reason);
        return Err(EvalError::other(format!(
            "invalid store path name when fetching URL '{url}': {reason}. {resolution}"
        )));
    }
    Ok((url, hash, name))
}

fn no_context(ev: &mut Evaluator, v: &Value) -> EvalResult<String> {
    let s = ev.force_string(v)?;
    if !s.context.is_empty() {
        return Err(EvalError::other(format!("the string '{}' is not allowed to refer to a store path", s.text)));
    }
    Ok(s.text.clone())
}

fn check_hash(url: &str, expected: &Option<Hash>, got: &Hash) -> EvalResult<()> {
    match expected {
        Some(h) if h != got => Err(EvalError::other(format!(
            "hash mismatch in file downloaded from '{url}':\n  specified: {}\n  got:       {}",
            h.encode(nix_formats::hash::Encoding::Nix32, true),
            got.encode(nix_formats::hash::Encoding::Nix32, true)
        ))),
        _ => Ok(()),
    }
}

fn store_path_value(path: String) -> Value {
    let ctx = Context::from([path.clone()]);
    Value::string_with_context(path, ctx)
}

fn fetchurl(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let (url, expected, name) = fetch_args(ev, &args[0], "fetchurl", "")?;
    let file = local_file(&url)?;
    let data = ev.io.read_file(&file).map_err(|e| EvalError::other(format!("unable to download '{url}': {e}")))?;
    check_hash(&url, &expected, &Hash::of(Algorithm::Sha256, &data))?;
    let path = ev.io.add_flat_to_store(&name, &data).map_err(io_error)?;
    Ok(store_path_value(path))
}

/// Unpacks an archive with `tar` (which recognises the compression) into `dest`.
fn unpack(archive: &str, dest: &Path) -> EvalResult<()> {
    let out = Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(dest)
        .arg("--no-same-owner")
        .output()
        .map_err(|e| EvalError::other(format!("cannot run tar: {e}")))?;
    if !out.status.success() {
        return Err(EvalError::other(format!(
            "cannot unpack '{archive}': {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// A tree with a single top-level directory stands for that directory.
fn singleton_directory(dir: &Path) -> EvalResult<PathBuf> {
    let entries: Vec<_> = std::fs::read_dir(dir).map_err(io_error)?.collect::<Result<_, _>>().map_err(io_error)?;
    if let [only] = entries.as_slice() {
        if only.file_type().map_err(io_error)?.is_dir() {
            return Ok(only.path());
        }
    }
    Ok(dir.to_path_buf())
}

/// Adds a directory recursively; returns the store path and its NAR hash.
fn add_tree(ev: &mut Evaluator, dir: &Path, name: &str) -> EvalResult<(String, Hash)> {
    let dir_s = dir.to_string_lossy().into_owned();
    let nar_hash = crate::nar_filter::hash_filtered(dir, Algorithm::Sha256, &mut |_, _| Ok(true)).map_err(io_error)?;
    let path = ev.io.add_path_to_store(&dir_s, name, &mut |_, _| Ok(true)).map_err(io_error)?;
    Ok((path, nar_hash))
}

fn fetch_tarball(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let (url, expected, name) = fetch_args(ev, &args[0], "fetchTarball", "source")?;
    let file = local_file(&url)?;
    let scratch = Scratch::new()?;
    unpack(&file, &scratch.0)?;
    let top = singleton_directory(&scratch.0)?;
    let (path, nar_hash) = add_tree(ev, &top, &name)?;
    check_hash(&url, &expected, &nar_hash)?;
    Ok(store_path_value(path))
}

fn git(dir: &str, args: &[&str]) -> EvalResult<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| EvalError::other(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(EvalError::other(format!(
            "git {} in '{dir}' failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

/// `YYYYMMDDHHMMSS` (UTC) of a Unix time.
fn utc_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Copies the files Git tracks in the working tree of `repo` into `dest`.
fn copy_tracked(repo: &str, dest: &Path) -> EvalResult<()> {
    let list = git(repo, &["ls-files", "-z"])?;
    for rel in list.split('\0').filter(|s| !s.is_empty()) {
        let from = Path::new(repo).join(rel);
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io_error)?;
        }
        let meta = match std::fs::symlink_metadata(&from) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(e)),
        };
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from).map_err(io_error)?, &to).map_err(io_error)?;
        } else if meta.is_file() {
            std::fs::copy(&from, &to).map_err(io_error)?;
        }
    }
    Ok(())
}

fn fetch_git(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let v = ev.force(&args[0])?;
    let (mut url, mut rev, mut git_ref, mut name) = (None, None, None, "source".to_string());
    let mut submodules = false;
    match &v {
        Value::Attrs(a) => {
            for attr in a.iter() {
                let value = attr.value.clone();
                match attr.name.as_str() {
                    "url" => {
                        let mut ctx = Context::new();
                        url = Some(ev.coerce_to_string(&value, &mut ctx, false, false)?);
                    }
                    "rev" => rev = Some(no_context(ev, &value)?),
                    "ref" => git_ref = Some(no_context(ev, &value)?),
                    "name" => name = no_context(ev, &value)?,
                    "submodules" => submodules = ev.expect_bool(&value)?,
                    "shallow" | "allRefs" | "lfs" | "exportIgnore" => {
                        ev.expect_bool(&value)?;
                    }
                    other => return Err(EvalError::other(format!("unsupported argument '{other}' to 'fetchGit'"))),
                }
            }
        }
        _ => {
            let mut ctx = Context::new();
            url = Some(ev.coerce_to_string(&v, &mut ctx, false, false)?);
        }
    }
    let url = url.ok_or_else(|| EvalError::other("'url' argument required"))?;
    if submodules {
        return Err(EvalError::other("casnix's fetchGit does not fetch submodules"));
    }
    if let Some(r) = &git_ref {
        let bad = ["..", "~", "^", ":", "?", "*", "[", "\\", " ", "@{", "//"].iter().any(|b| r.contains(b))
            || r.starts_with('-')
            || r.starts_with('/')
            || r.ends_with('/')
            || r.ends_with(".lock")
            || r.ends_with('.')
            || r.is_empty();
        if bad {
            return Err(EvalError::other(format!("invalid Git branch/tag name '{r}'")));
        }
    }
    let repo = local_file(&url)?;
    let repo = repo.strip_prefix("git+file://").unwrap_or(&repo).to_string();
    let scratch = Scratch::new()?;
    let tree = scratch.0.join("tree");
    std::fs::create_dir_all(&tree).map_err(io_error)?;
    let dirty = rev.is_none()
        && git_ref.is_none()
        && !git(&repo, &["status", "--porcelain", "--untracked-files=no"])?.is_empty();
    let head = git(&repo, &["rev-parse", "--verify", "HEAD^{commit}"])?;
    let commit = match (&rev, &git_ref) {
        (Some(r), _) => git(&repo, &["rev-parse", "--verify", &format!("{r}^{{commit}}")])?,
        (None, Some(r)) => git(&repo, &["rev-parse", "--verify", &format!("{r}^{{commit}}")])?,
        (None, None) => head.clone(),
    };
    if dirty {
        copy_tracked(&repo, &tree)?;
    } else {
        let archive = scratch.0.join("tree.tar");
        let archive_s = archive.to_string_lossy().into_owned();
        git(&repo, &["archive", "--format=tar", "-o", &archive_s, &commit])?;
        unpack(&archive_s, &tree)?;
    }
    let (path, nar_hash) = add_tree(ev, &tree, &name)?;
    let last_modified: i64 = git(&repo, &["log", "-1", "--format=%ct", &commit])?.parse().unwrap_or(0);
    let rev_count: i64 = git(&repo, &["rev-list", "--count", &commit])?.parse().unwrap_or(0);
    let mut fields = vec![
        ("outPath", store_path_value(path)),
        ("narHash", Value::string(nar_hash.to_sri())),
        ("submodules", Value::Bool(false)),
        ("lastModified", Value::Int(last_modified)),
        ("lastModifiedDate", Value::string(utc_date(last_modified))),
    ];
    if dirty {
        let zero = "0".repeat(40);
        fields.push(("rev", Value::string(zero.clone())));
        fields.push(("shortRev", Value::string(zero[..7].to_string())));
        fields.push(("revCount", Value::Int(0)));
        fields.push(("dirtyRev", Value::string(format!("{head}-dirty"))));
        fields.push(("dirtyShortRev", Value::string(format!("{}-dirty", &head[..7.min(head.len())]))));
    } else {
        fields.push(("shortRev", Value::string(commit[..7.min(commit.len())].to_string())));
        fields.push(("rev", Value::string(commit)));
        fields.push(("revCount", Value::Int(rev_count)));
    }
    Ok(make_attrs(fields))
}

#[cfg(test)]
mod tests {
    use super::utc_date;

    #[test]
    fn dates_in_utc() {
        assert_eq!(utc_date(0), "19700101000000");
        assert_eq!(utc_date(1_700_000_000), "20231114221320");
        assert_eq!(utc_date(951_782_400), "20000229000000");
    }
}
