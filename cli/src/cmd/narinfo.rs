//! `casnix narinfo sign|verify`: signing and checking `.narinfo` files of a binary cache.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use nix_formats::narinfo::NarInfo;
use nix_formats::signature::{PublicKey, SecretKey, TrustedKeys};
use nix_formats::store_path::StoreDir;

/// The narinfo subcommands.
#[derive(Subcommand)]
pub enum NarInfoCommand {
    /// Add a signature to each file, rewriting it in place (atomically).
    Sign {
        /// File holding the secret key (`name:base64`), as made by `casnix key generate`.
        #[arg(long)]
        key_file: PathBuf,
        /// The `.narinfo` files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check that each file carries a valid signature by a trusted key; fails if one does not.
    Verify {
        /// A trusted public key (`name:base64`); may be given several times.
        #[arg(long = "trusted-key", required = true)]
        trusted_keys: Vec<String>,
        /// The `.narinfo` files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Runs a narinfo subcommand.
pub fn run(command: NarInfoCommand) -> Result<()> {
    let store_dir = StoreDir::from_env();
    match command {
        NarInfoCommand::Sign { key_file, files } => {
            let text = fs::read_to_string(&key_file)
                .with_context(|| format!("cannot read key file '{}'", key_file.display()))?;
            let key = SecretKey::parse(text.trim())
                .with_context(|| format!("invalid secret key in '{}'", key_file.display()))?;
            for file in &files {
                let mut info = read(&store_dir, file)?;
                info.sign(&store_dir, &key)
                    .with_context(|| format!("cannot sign '{}'", file.display()))?;
                let out = info.to_text(&store_dir)?;
                write_atomically(file, out.as_bytes())?;
            }
        }
        NarInfoCommand::Verify { trusted_keys, files } => {
            let mut keys = TrustedKeys::new();
            for k in &trusted_keys {
                keys.insert(PublicKey::parse(k).with_context(|| format!("invalid public key '{k}'"))?);
            }
            let mut unsigned = 0;
            for file in &files {
                let info = read(&store_dir, file)?;
                let n = info
                    .count_valid_signatures(&store_dir, &keys)
                    .with_context(|| format!("cannot check the signatures of '{}'", file.display()))?;
                println!("{}: {n} valid signature(s)", file.display());
                if n == 0 {
                    unsigned += 1;
                }
            }
            if unsigned > 0 {
                bail!("{unsigned} file(s) lack a valid signature by a trusted key");
            }
        }
    }
    Ok(())
}

fn read(store_dir: &StoreDir, file: &Path) -> Result<NarInfo> {
    let f = File::open(file).with_context(|| format!("cannot open '{}'", file.display()))?;
    NarInfo::read_from(store_dir, f).with_context(|| format!("invalid narinfo '{}'", file.display()))
}

/// Replaces `path` with `data`: write a temporary beside it, fsync, rename over it.
fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in '{}'", dir.display()))?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).with_context(|| format!("cannot replace '{}'", path.display()))?;
    Ok(())
}
