//! `casnix store path-info`: what `nix path-info` prints, in Nix 2.26's forms: one line per path
//! (with sizes and signatures on request), or `--json`, an object keyed by path whose values are
//! Nix 2.26's path-info objects.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::{bail, Result};
use clap::Args;
use nix_formats::path_info::{JsonOptions, ValidPathInfo};
use nix_formats::store_path::{StoreDir, StorePath};
use serde_json::{Map, Value};

use super::connect::{daemon_error, Connection, StoreLocation};
use super::paths::{parse_store_path, require_valid};

/// Options of `casnix store path-info`.
#[derive(Args)]
pub struct PathInfoArgs {
    /// The store paths (or symlinks to them, such as `result`).
    pub(super) paths: Vec<String>,
    /// Every valid path in the store.
    #[arg(long)]
    pub(super) all: bool,
    /// The closures of the paths.
    #[arg(short = 'r', long)]
    pub(super) recursive: bool,
    /// Print a JSON object keyed by path.
    #[arg(long)]
    pub(super) json: bool,
    /// Print the NAR size of each path.
    #[arg(short = 's', long)]
    pub(super) size: bool,
    /// Print the total NAR size of each path's closure.
    #[arg(short = 'S', long)]
    pub(super) closure_size: bool,
    /// Print the signatures (and `ultimate`, `ca:...`).
    #[arg(long)]
    pub(super) sigs: bool,
}

/// The infos of the paths in play, queried once each.
struct Infos<'c> {
    conn: &'c mut Connection,
    known: BTreeMap<StorePath, ValidPathInfo>,
}

impl Infos<'_> {
    /// Whether `path` is valid (its info is kept if it is).
    async fn is_valid(&mut self, path: &StorePath) -> Result<bool> {
        if self.known.contains_key(path) {
            return Ok(true);
        }
        match self.conn.query_path_info(path).await.map_err(daemon_error)? {
            Some(info) => {
                self.known.insert(path.clone(), info);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn get(&mut self, path: &StorePath) -> Result<&ValidPathInfo> {
        if !self.known.contains_key(path) {
            let info = require_valid(self.conn, path).await?;
            self.known.insert(path.clone(), info);
        }
        Ok(&self.known[path])
    }

    /// The closure of `roots` (every path they refer to, directly or not, and themselves).
    async fn closure(&mut self, roots: impl IntoIterator<Item = StorePath>) -> Result<BTreeSet<StorePath>> {
        let mut seen = BTreeSet::new();
        let mut queue: Vec<StorePath> = roots.into_iter().collect();
        while let Some(path) = queue.pop() {
            if seen.insert(path.clone()) {
                queue.extend(self.get(&path).await?.references.iter().filter(|r| !seen.contains(*r)).cloned());
            }
        }
        Ok(seen)
    }

    async fn closure_size(&mut self, path: &StorePath) -> Result<u64> {
        let closure = self.closure([path.clone()]).await?;
        Ok(closure.iter().map(|p| self.known[p].nar_size).sum())
    }
}

/// Nix's `topoSortPaths`, reversed as `StorePathsCommand` does: every path after the paths it
/// refers to. Depth-first in path order, as Nix; iterative, so deep closures cannot overflow.
fn dependencies_first(paths: &BTreeSet<StorePath>, infos: &BTreeMap<StorePath, ValidPathInfo>) -> Vec<StorePath> {
    let mut sorted = Vec::with_capacity(paths.len());
    let mut visited = BTreeSet::new();
    for root in paths {
        if !visited.insert(root.clone()) {
            continue;
        }
        // Each frame: a path and the references of it still to visit.
        let children = |p: &StorePath| -> Vec<StorePath> {
            infos[p].references.iter().filter(|r| *r != p && paths.contains(*r)).rev().cloned().collect()
        };
        let mut stack = vec![(root.clone(), children(root))];
        while let Some((path, pending)) = stack.last_mut() {
            match pending.pop() {
                Some(next) => {
                    if visited.insert(next.clone()) {
                        let grand = children(&next);
                        stack.push((next, grand));
                    }
                }
                None => {
                    sorted.push(path.clone());
                    stack.pop();
                }
            }
        }
    }
    // Nix's topological sort ends with referrers first; the command reverses it.
    sorted
}

/// Prints the infos.
pub async fn path_info(location: &StoreLocation, args: PathInfoArgs) -> Result<()> {
    if args.paths.is_empty() && !args.all {
        bail!("no paths given (and no --all)");
    }
    let mut conn = location.connect().await?;
    let store_dir = conn.store_dir().clone();
    let mut roots = BTreeSet::new();
    if args.all {
        roots = conn.query_all_valid_paths().await.map_err(daemon_error)?;
    }
    for arg in &args.paths {
        roots.insert(parse_store_path(&store_dir, arg)?);
    }
    let mut infos = Infos { conn: &mut conn, known: BTreeMap::new() };
    // Like Nix 2.26, `--json` shows an invalid path as `null`; text output refuses it.
    let mut invalid = BTreeSet::new();
    if args.json {
        for root in &roots {
            if !infos.is_valid(root).await? {
                invalid.insert(root.clone());
            }
        }
        roots.retain(|r| !invalid.contains(r));
    }
    let paths = if args.recursive { infos.closure(roots).await? } else { roots };
    for path in &paths {
        infos.get(path).await?;
    }
    let mut closure_sizes = BTreeMap::new();
    if args.closure_size {
        for path in &paths {
            closure_sizes.insert(path.clone(), infos.closure_size(path).await?);
        }
    }
    print(&args, &store_dir, &paths, &infos.known, &invalid, &closure_sizes)
}

/// Prints the infos of `paths` (all in `known`) as `args` ask: Nix 2.26's JSON (with `invalid`
/// paths as `null`), or lines in dependency order. Shared with `--store local`.
pub(super) fn print(
    args: &PathInfoArgs,
    store_dir: &StoreDir,
    paths: &BTreeSet<StorePath>,
    known: &BTreeMap<StorePath, ValidPathInfo>,
    invalid: &BTreeSet<StorePath>,
    closure_sizes: &BTreeMap<StorePath, u64>,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut obj = Map::new();
        for path in paths {
            let mut options = JsonOptions::IMPURE;
            if let Some(size) = closure_sizes.get(path) {
                options = options.with_closure_size(*size);
            }
            obj.insert(store_dir.print(path), known[path].to_json(store_dir, &options));
        }
        for path in invalid {
            obj.insert(store_dir.print(path), Value::Null);
        }
        writeln!(out, "{}", Value::Object(obj))?;
        return Ok(());
    }
    let order = dependencies_first(paths, known);
    let width = order.iter().map(|p| store_dir.print(p).len()).max().unwrap_or(0);
    for path in &order {
        let info = &known[path];
        let printed = store_dir.print(path);
        let mut line = printed.clone();
        if args.size || args.closure_size || args.sigs {
            line.push_str(&" ".repeat(width - printed.len()));
        }
        if args.size {
            line.push_str(&format!("\t{:>11}", info.nar_size));
        }
        if let Some(size) = closure_sizes.get(path) {
            line.push_str(&format!("\t{size:>11}"));
        }
        if args.sigs {
            let mut words = Vec::new();
            if info.ultimate {
                words.push("ultimate".to_owned());
            }
            if let Some(ca) = &info.ca {
                words.push(format!("ca:{ca}"));
            }
            words.extend(info.sigs.iter().cloned());
            line.push('\t');
            line.push_str(&words.join(" "));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use super::*;
    use nix_formats::hash::{Algorithm, Hash};

    fn path(n: u32) -> StorePath {
        StorePath::from_base_name(&format!("{n:0>32}-p")).unwrap()
    }

    #[test]
    fn dependencies_come_first() {
        // 3 -> 2 -> 1, 3 -> 1, 4 alone, 5 -> 3 and itself.
        let refs: [(u32, &[u32]); 5] = [(1, &[]), (2, &[1]), (3, &[1, 2]), (4, &[]), (5, &[3, 5])];
        let infos: BTreeMap<_, _> = refs
            .iter()
            .map(|(n, rs)| {
                let mut info = ValidPathInfo::new(path(*n), Hash::zero(Algorithm::Sha256));
                info.references = rs.iter().map(|r| path(*r)).collect();
                (path(*n), info)
            })
            .collect();
        let all: BTreeSet<_> = infos.keys().cloned().collect();
        let order = dependencies_first(&all, &infos);
        let pos = |n| order.iter().position(|p| *p == path(n)).unwrap();
        assert_eq!(order.len(), 5);
        assert!(pos(1) < pos(2) && pos(2) < pos(3) && pos(3) < pos(5));
        // A path outside the set is not followed.
        let some: BTreeSet<_> = [path(3), path(1)].into();
        assert_eq!(dependencies_first(&some, &infos), [path(1), path(3)]);
    }
}
