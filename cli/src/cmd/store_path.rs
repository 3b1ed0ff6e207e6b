//! `casnix store-path add|add-fixed`: the store path `nix-store --add` / `--add-fixed` would give,
//! computed without touching any store.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::store_path::StoreDir;

use super::hash::{hash_file, hash_path};

/// The store-path subcommands.
#[derive(Subcommand)]
pub enum StorePathCommand {
    /// The path `nix-store --add PATH` gives (NAR SHA-256, no references).
    Add {
        /// Name of the store path; defaults to the file name of PATH.
        #[arg(long)]
        name: Option<String>,
        /// The file system object.
        path: PathBuf,
    },
    /// The path `nix-store --add-fixed [--recursive] ALGO PATH` gives.
    AddFixed {
        /// Hash the NAR serialisation instead of the file's contents.
        #[arg(long, short = 'r')]
        recursive: bool,
        /// Name of the store path; defaults to the file name of PATH.
        #[arg(long)]
        name: Option<String>,
        /// Hash algorithm: md5, sha1, sha256 or sha512.
        algo: String,
        /// The file system object.
        path: PathBuf,
    },
}

/// Runs a store-path subcommand.
pub fn run(command: StorePathCommand) -> Result<()> {
    let store_dir = StoreDir::from_env();
    let (path, name, recursive, hash) = match command {
        StorePathCommand::Add { name, path } => {
            let h = hash_path(Algorithm::Sha256, &path)?;
            (path, name, true, h)
        }
        StorePathCommand::AddFixed { recursive, name, algo, path } => {
            let algo: Algorithm = algo.parse()?;
            let h = if recursive { hash_path(algo, &path)? } else { hash_file(algo, &path)? };
            (path, name, recursive, h)
        }
    };
    let name = match name {
        Some(n) => n,
        None => base_name(&path)?,
    };
    let p = fixed_path(&store_dir, &name, recursive, &hash)?;
    println!("{}", store_dir.print(&p));
    Ok(())
}

fn fixed_path(store_dir: &StoreDir, name: &str, recursive: bool, hash: &Hash) -> Result<nix_formats::store_path::StorePath> {
    store_dir
        .make_fixed_output_path(name, recursive, hash, [], false)
        .with_context(|| format!("cannot make a store path named '{name}'"))
}

/// The last component of `path`, as `nix-store --add` names its store path.
fn base_name(path: &Path) -> Result<String> {
    let abs = std::path::absolute(path).with_context(|| format!("cannot resolve '{}'", path.display()))?;
    let name = abs
        .file_name()
        .with_context(|| format!("'{}' has no file name", path.display()))?;
    name.to_str()
        .map(str::to_owned)
        .with_context(|| format!("file name of '{}' is not valid UTF-8", path.display()))
}
