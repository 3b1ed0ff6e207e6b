//! `casnix derivation show`: the JSON `nix derivation show` (Nix 2.26) prints for `.drv` files.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use nix_formats::derivation::{derivation_show_json, Derivation};
use nix_formats::store_path::{StoreDir, StorePath};

/// The derivation subcommands.
#[derive(Subcommand)]
pub enum DerivationCommand {
    /// Print derivations as JSON, keyed by their store paths.
    Show {
        /// Also show every derivation the given ones depend on (read from the same directory).
        #[arg(short = 'r', long)]
        recursive: bool,
        /// The `.drv` files (in a store directory, or anywhere when named `<hash>-<name>.drv`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// The largest `.drv` file accepted.
const MAX_DRV_SIZE: u64 = 64 << 20;

/// Runs a derivation subcommand.
pub fn run(command: DerivationCommand) -> Result<()> {
    let store_dir = StoreDir::from_env();
    let DerivationCommand::Show { recursive, files } = command;
    let mut shown: BTreeMap<String, Derivation> = BTreeMap::new();
    let mut queue: VecDeque<(PathBuf, StorePath)> = VecDeque::new();
    for file in files {
        let base = store_path_of_file(&file)?;
        queue.push_back((file, base));
    }
    while let Some((file, base)) = queue.pop_front() {
        let key = store_dir.print(&base);
        if shown.contains_key(&key) {
            continue;
        }
        let drv = read_drv(&file, &base, &store_dir)?;
        if recursive {
            let dir = file.parent().unwrap_or(Path::new("."));
            for input in drv.input_drvs.keys() {
                queue.push_back((dir.join(input.to_string()), input.clone()));
            }
        }
        shown.insert(key, drv);
    }
    let text = derivation_show_json(shown.iter().map(|(k, d)| (k.clone(), d)), &store_dir)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The store path a `.drv` file stands for, from its file name `<hash>-<name>.drv`.
fn store_path_of_file(file: &Path) -> Result<StorePath> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("'{}' has no usable file name", file.display()))?;
    let p = StorePath::from_base_name(name)
        .with_context(|| format!("'{}' is not named like a store derivation (<hash>-<name>.drv)", file.display()))?;
    anyhow::ensure!(p.is_derivation(), "'{}' is not a derivation (its name does not end in .drv)", file.display());
    Ok(p)
}

fn read_drv(file: &Path, base: &StorePath, store_dir: &StoreDir) -> Result<Derivation> {
    let mut bytes = Vec::new();
    File::open(file)
        .with_context(|| format!("cannot open '{}'", file.display()))?
        .take(MAX_DRV_SIZE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read '{}'", file.display()))?;
    anyhow::ensure!(bytes.len() as u64 <= MAX_DRV_SIZE, "'{}' is larger than {MAX_DRV_SIZE} bytes", file.display());
    let name = Derivation::name_from_path(base).unwrap_or(base.name());
    Derivation::parse_aterm(&bytes, name, store_dir).with_context(|| format!("invalid derivation '{}'", file.display()))
}
