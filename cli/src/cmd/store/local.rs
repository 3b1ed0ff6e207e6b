//! `--store local` (or `NIX_REMOTE=local`): the commands run on casnix's own local store
//! ([`store::Store`]) in this process, with no daemon: the store directory is `NIX_STORE_DIR`
//! (default `/nix/store`), the state directory `NIX_STATE_DIR` (default `/nix/var/nix`).
//! `add`, `path-info` (every option), `dump`, `cat`, `gc`, `delete` and `verify` work on it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use store::db::ClosureOptions;
use store::local::PathProblem;
use store::{Store, StoreConfig};
use worker_protocol::ops::response::GcResult;

use super::add::{AddArgs, AddRequest};
use super::gc::{print_freed, DeleteArgs, GcArgs, VerifyArgs};
use super::nar::{components, extract, CatArgs, DumpArgs};
use super::path_info::{print as print_path_infos, PathInfoArgs};
use super::paths::{parse_in_store, parse_store_path};
use super::StoreCommand;

/// Whether `spec` (from `--store`, else `NIX_REMOTE`) names the local store.
pub fn is_local(spec: Option<&str>) -> bool {
    let spec = match spec {
        Some(s) => s.to_owned(),
        None => std::env::var("NIX_REMOTE").unwrap_or_default(),
    };
    spec == "local"
}

/// Opens the local store the environment names, and cleans up after interrupted processes
/// (`Store::recover`), as every local command does; a store this user cannot clean up (another
/// user's) is still opened, with a warning.
fn open() -> Result<Store> {
    let non_empty = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    let store_dir = non_empty("NIX_STORE_DIR").unwrap_or_else(|| "/nix/store".to_owned());
    let state_dir = non_empty("NIX_STATE_DIR").map_or_else(|| PathBuf::from("/nix/var/nix"), PathBuf::from);
    let store = Store::open(&StoreConfig::new(store_dir, state_dir)).context("cannot open the local store")?;
    if let Err(e) = store.recover() {
        eprintln!("warning: cannot clean up the local store: {e}");
    }
    Ok(store)
}

/// Runs one command on the local store.
pub fn run(command: StoreCommand) -> Result<()> {
    let store = open()?;
    match command {
        StoreCommand::Ping(_) => {
            println!("Store URL: local");
            Ok(())
        }
        StoreCommand::Add(a) => add(&store, a),
        StoreCommand::PathInfo(a) => path_info(&store, a),
        StoreCommand::Cat(a) => cat(&store, a),
        StoreCommand::Dump(a) => dump(&store, a),
        StoreCommand::Gc(a) => gc(&store, a),
        StoreCommand::Delete(a) => delete(&store, a),
        StoreCommand::Verify(a) => verify(&store, a),
    }
}

fn add(store: &Store, args: AddArgs) -> Result<()> {
    let AddRequest { path, name, method, algo } = args.resolve()?;
    let info = store.add_path(&path, &name, method, algo)?;
    println!("{}", store.print(&info.path));
    Ok(())
}

fn path_info(store: &Store, args: PathInfoArgs) -> Result<()> {
    if args.paths.is_empty() && !args.all {
        bail!("no paths given (and no --all)");
    }
    let mut roots = BTreeSet::new();
    if args.all {
        roots = store.query_all_valid_paths()?;
    }
    for arg in &args.paths {
        roots.insert(parse_store_path(store.store_dir(), arg)?);
    }
    // Like Nix 2.26, `--json` shows an invalid path as `null`; text output refuses it.
    let mut invalid = BTreeSet::new();
    for root in &roots {
        if !store.is_valid(root)? {
            if !args.json {
                bail!("path '{}' is not valid", store.print(root));
            }
            invalid.insert(root.clone());
        }
    }
    roots.retain(|r| !invalid.contains(r));
    let paths = if args.recursive { store.closure(roots.iter(), ClosureOptions::default())? } else { roots };
    let mut known = BTreeMap::new();
    for path in &paths {
        let info = store.query_path_info(path)?.with_context(|| format!("path '{}' is not valid", store.print(path)))?;
        known.insert(path.clone(), info);
    }
    let mut closure_sizes = BTreeMap::new();
    if args.closure_size {
        for path in &paths {
            let mut size = 0;
            for member in store.closure([path], ClosureOptions::default())? {
                size += store.query_path_info(&member)?.map_or(0, |i| i.nar_size);
            }
            closure_sizes.insert(path.clone(), size);
        }
    }
    print_path_infos(&args, store.store_dir(), &paths, &known, &invalid, &closure_sizes)
}

fn dump(store: &Store, args: DumpArgs) -> Result<()> {
    let path = parse_store_path(store.store_dir(), &args.path)?;
    let stdout = std::io::stdout();
    let mut out = store.nar_from_path(&path, std::io::BufWriter::new(stdout.lock()))?;
    out.flush()?;
    Ok(())
}

fn cat(store: &Store, args: CatArgs) -> Result<()> {
    let (path, rest) = parse_in_store(store.store_dir(), &args.path)?;
    let nar = store.nar_from_path(&path, Vec::new())?;
    extract(&nar[..], components(&rest).join("/").as_bytes(), &args.path)
}

fn delete(store: &Store, args: DeleteArgs) -> Result<()> {
    let mut paths = BTreeSet::new();
    for arg in &args.paths {
        paths.insert(parse_store_path(store.store_dir(), arg)?);
    }
    let mut bytes = 0;
    for path in &paths {
        bytes += store.query_path_info(path)?.map(|i| i.nar_size).unwrap_or(0);
    }
    let deleted = store.delete_paths(paths.iter())?;
    let result = GcResult { paths: deleted.iter().map(|p| store.print(p)).collect(), bytes_freed: bytes };
    print_freed(&result)
}

/// `gc` as `nix-store --gc` (Nix's defaults: `keep-derivations` on, `keep-outputs` off).
fn gc(store: &Store, args: GcArgs) -> Result<()> {
    use store::gc::{GcAction, GcOptions};
    let mut out = std::io::stdout().lock();
    if args.print_roots {
        let roots = store.find_roots(false)?;
        let lines: BTreeSet<(String, String)> =
            roots.iter().flat_map(|(path, links)| links.iter().map(|l| (l.clone(), store.print(path)))).collect();
        for (link, target) in lines {
            writeln!(out, "{link} -> {target}")?;
        }
        return Ok(());
    }
    let action = match (args.print_live, args.print_dead) {
        (true, _) => GcAction::ReturnLive,
        (_, true) => GcAction::ReturnDead,
        _ => GcAction::DeleteDead,
    };
    let mut options = GcOptions::new(action.clone());
    options.max_freed = args.max_freed.unwrap_or(u64::MAX);
    let result = store.collect_garbage(&options)?;
    if action == GcAction::DeleteDead {
        drop(out);
        let printed = GcResult { paths: result.printed(store.store_dir()), bytes_freed: result.bytes_freed };
        return print_freed(&printed);
    }
    for path in result.printed(store.store_dir()) {
        writeln!(out, "{path}")?;
    }
    Ok(())
}

fn verify(store: &Store, args: VerifyArgs) -> Result<()> {
    let report = store.verify_store(args.check_contents, args.repair)?;
    for (path, problem) in &report.problems {
        let printed = store.print(path);
        match problem {
            PathProblem::Missing => eprintln!("path '{printed}' disappeared"),
            PathProblem::HashMismatch { expected, got } => eprintln!(
                "path '{printed}' was modified! expected hash '{}', got '{}'",
                expected.encode(nix_formats::hash::Encoding::Nix32, true),
                got.encode(nix_formats::hash::Encoding::Nix32, true)
            ),
            PathProblem::SizeMismatch { expected, got } => {
                eprintln!("path '{printed}' was modified! expected size {expected}, got {got}")
            }
        }
    }
    if !report.is_ok() {
        bail!("not all store errors were fixed");
    }
    Ok(())
}
