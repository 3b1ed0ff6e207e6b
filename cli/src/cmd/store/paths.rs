//! Store paths given on the command line: paths in the store (possibly inside a store path), or
//! symlinks that lead there (such as `result`); and what the daemon knows of them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::{StoreDir, StorePath};

use super::connect::{daemon_error, Connection};

/// The most symlinks followed to reach the store (Linux's own bound).
const MAX_LINKS: usize = 40;

/// The store path `arg` lies in and the rest of it (`""` or `/sub/path`).
pub fn parse_in_store(store_dir: &StoreDir, arg: &str) -> Result<(StorePath, String)> {
    if let Ok((path, rest)) = store_dir.parse_prefix(arg) {
        return Ok((path, rest.trim_end_matches('/').to_owned()));
    }
    let cwd = std::env::current_dir().context("cannot find the current directory")?;
    let mut current = cwd.join(arg);
    for _ in 0..MAX_LINKS {
        let text = current.to_str().with_context(|| format!("path '{arg}' is not valid UTF-8"))?;
        if let Ok((path, rest)) = store_dir.parse_prefix(text) {
            return Ok((path, rest.trim_end_matches('/').to_owned()));
        }
        match std::fs::read_link(&current) {
            Ok(target) => current = current.parent().unwrap_or(Path::new("/")).join(target),
            Err(_) => bail!("path '{arg}' is not in the Nix store"),
        }
    }
    bail!("path '{arg}': too many levels of symbolic links")
}

/// The store path `arg` names (nothing may follow it).
pub fn parse_store_path(store_dir: &StoreDir, arg: &str) -> Result<StorePath> {
    let (path, rest) = parse_in_store(store_dir, arg)?;
    if !rest.is_empty() {
        bail!("path '{arg}' is not a store path");
    }
    Ok(path)
}

/// What the daemon knows of `path`, which must be valid.
pub async fn require_valid(conn: &mut Connection, path: &StorePath) -> Result<ValidPathInfo> {
    match conn.query_path_info(path).await.map_err(daemon_error)? {
        Some(info) => Ok(info),
        None => bail!("path '{}' is not valid", conn.store_dir().print(path)),
    }
}

/// The absolute form of a local file name, for messages.
pub fn absolute(path: &Path) -> PathBuf {
    std::env::current_dir().map(|cwd| cwd.join(path)).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use super::*;

    #[test]
    fn paths_in_the_store() {
        let store = StoreDir::new("/nix/store");
        let base = "00000000000000000000000000000000-foo";
        let (p, rest) = parse_in_store(&store, &format!("/nix/store/{base}/bin/x")).unwrap();
        assert_eq!((p.to_string(), rest.as_str()), (base.to_owned(), "/bin/x"));
        assert_eq!(parse_store_path(&store, &format!("/nix/store/{base}/")).unwrap().to_string(), base);
        assert!(parse_store_path(&store, &format!("/nix/store/{base}/bin")).is_err());
        assert!(parse_in_store(&store, "/definitely/not/in/the/store").is_err());

        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("result");
        std::os::unix::fs::symlink(format!("/nix/store/{base}"), &link).unwrap();
        let second = dir.path().join("again");
        std::os::unix::fs::symlink("result", &second).unwrap();
        assert_eq!(parse_store_path(&store, second.to_str().unwrap()).unwrap().to_string(), base);
    }
}
