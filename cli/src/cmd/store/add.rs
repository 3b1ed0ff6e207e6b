//! `casnix store add PATH`: adds a file or directory to the store through the daemon, as
//! `nix-store --add` (and `nix store add`) do, and prints the new path.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use nix_formats::content_address::Method;
use nix_formats::hash::Algorithm;
use worker_protocol::ops::request::add::{CaMethodAlgo, IngestionMethod};

use super::bridge;
use super::connect::{daemon_error, StoreLocation};
use super::paths::absolute;

/// How the data is hashed.
#[derive(Clone, Copy, ValueEnum)]
pub(super) enum Mode {
    /// The NAR serialisation of any file system object (`nix-store --add`).
    Nar,
    /// The contents of a single regular file (`nix-store --add-fixed`).
    Flat,
    /// A text file (as `builtins.toFile` adds it).
    Text,
}

/// Options of `casnix store add`.
#[derive(Args)]
pub struct AddArgs {
    /// The file or directory to add.
    pub(super) path: PathBuf,
    /// The name of the store path (default: the file's name).
    #[arg(long, short = 'n')]
    pub(super) name: Option<String>,
    /// How to hash the data.
    #[arg(long, value_enum, default_value = "nar")]
    pub(super) mode: Mode,
    /// The hash algorithm (`text` takes `sha256` only).
    #[arg(long, default_value = "sha256")]
    pub(super) hash_algo: String,
}

/// What `casnix store add` was asked for, checked: the same for a daemon and a local store.
pub(super) struct AddRequest {
    /// The absolute path of the file or directory.
    pub(super) path: PathBuf,
    /// The store path's name.
    pub(super) name: String,
    /// How the data is hashed.
    pub(super) method: Method,
    /// The hash algorithm.
    pub(super) algo: Algorithm,
}

impl AddArgs {
    /// Checks the arguments: a known algorithm, a usable name, and a regular file unless the
    /// NAR of any object is asked for.
    pub(super) fn resolve(self) -> Result<AddRequest> {
        let algo: Algorithm =
            self.hash_algo.parse().with_context(|| format!("unknown hash algorithm '{}'", self.hash_algo))?;
        let method = match self.mode {
            Mode::Nar => Method::Nar,
            Mode::Flat => Method::Flat,
            Mode::Text => Method::Text,
        };
        let name = match self.name {
            Some(name) => name,
            None => match self.path.file_name().and_then(|n| n.to_str()) {
                Some(name) => name.to_owned(),
                None => bail!("cannot take a store path name from '{}'; give one with --name", self.path.display()),
            },
        };
        let path = absolute(&self.path);
        let meta = std::fs::symlink_metadata(&path).with_context(|| format!("cannot read '{}'", path.display()))?;
        if method != Method::Nar && !meta.is_file() {
            bail!("'{}' is not a regular file", path.display());
        }
        Ok(AddRequest { path, name, method, algo })
    }
}

/// Adds the path and prints the new store path.
pub async fn add(location: &StoreLocation, args: AddArgs) -> Result<()> {
    let AddRequest { path, name, method, algo } = args.resolve()?;
    let method = match method {
        Method::Nar => IngestionMethod::Nar,
        Method::Flat => IngestionMethod::Flat,
        Method::Text => IngestionMethod::Text,
        Method::Git => bail!("casnix cannot add paths with Git hashing"),
    };
    let mut conn = location.connect().await?;
    let source = path.clone();
    let (mut reader, producer) = bridge::produce(move |out| {
        match method {
            IngestionMethod::Nar => nix_formats::nar::dump_path(&source, out)
                .with_context(|| format!("cannot serialise '{}'", source.display()))?,
            _ => {
                let mut file = std::fs::File::open(&source).with_context(|| format!("cannot open '{}'", source.display()))?;
                std::io::copy(&mut file, out).with_context(|| format!("cannot read '{}'", source.display()))?;
            }
        }
        Ok(())
    });
    let added = conn.add_to_store(&name, CaMethodAlgo { method, algo }, &BTreeSet::new(), false, &mut reader).await;
    drop(reader);
    // The reading side's error says more than the short stream it caused.
    producer.await.context("the reading thread failed")??;
    let info = added.map_err(daemon_error)?;
    println!("{}", conn.store_dir().print(&info.path));
    Ok(())
}
