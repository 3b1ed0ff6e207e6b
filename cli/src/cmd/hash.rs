//! `casnix hash path|file|convert`: `nix-hash` and `nix hash convert`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use nix_formats::hash::{compress, Algorithm, Encoding, Hash, Hasher};
use nix_formats::nar;

/// The hash subcommands.
#[derive(Subcommand)]
pub enum HashCommand {
    /// Hash the NAR serialisation of paths (`nix-hash --type T PATH`).
    Path(HashArgs),
    /// Hash the contents of regular files (`nix-hash --flat --type T FILE`).
    File(HashArgs),
    /// Convert hashes between encodings (`nix hash convert`).
    Convert(ConvertArgs),
}

/// Options shared by `hash path` and `hash file`.
#[derive(Args)]
pub struct HashArgs {
    /// Hash algorithm: md5, sha1, sha256 or sha512.
    #[arg(long = "type", default_value = "sha256", value_parser = parse_algo)]
    algo: Algorithm,
    #[command(flatten)]
    format: FormatFlags,
    /// Fold hashes longer than 160 bits into 160 bits (`nix-hash --truncate`).
    #[arg(long)]
    truncate: bool,
    /// The paths to hash.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// One of the output encodings; base16 when none is given, as `nix-hash` does.
#[derive(Args)]
#[group(multiple = false)]
struct FormatFlags {
    /// Lowercase hexadecimal (the default).
    #[arg(long)]
    base16: bool,
    /// Nix's base 32.
    #[arg(long, alias = "nix32")]
    base32: bool,
    /// Base 64.
    #[arg(long)]
    base64: bool,
    /// Subresource Integrity form, `algo-base64`.
    #[arg(long)]
    sri: bool,
}

impl FormatFlags {
    fn encoding(&self) -> Encoding {
        if self.base32 {
            Encoding::Nix32
        } else if self.base64 {
            Encoding::Base64
        } else if self.sri {
            Encoding::Sri
        } else {
            Encoding::Base16
        }
    }
}

/// Options of `hash convert`.
#[derive(Args)]
pub struct ConvertArgs {
    /// Target encoding: base16, nix32 (or base32), base64 or sri.
    #[arg(long, default_value = "sri", value_parser = parse_encoding)]
    to: Encoding,
    /// Expected input encoding; any is accepted when omitted.
    #[arg(long, value_parser = parse_encoding)]
    from: Option<Encoding>,
    /// The algorithm, needed when a hash does not name it.
    #[arg(long = "hash-algo", value_parser = parse_algo)]
    algo: Option<Algorithm>,
    /// The hashes to convert.
    #[arg(required = true)]
    hashes: Vec<String>,
}

fn parse_algo(s: &str) -> Result<Algorithm, String> {
    s.parse().map_err(|e| format!("{e}"))
}

fn parse_encoding(s: &str) -> Result<Encoding, String> {
    s.parse().map_err(|e| format!("{e}"))
}

/// Runs a hash subcommand.
pub fn run(command: HashCommand) -> Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match command {
        HashCommand::Path(a) => {
            for p in &a.paths {
                let h = hash_path(a.algo, p)?;
                writeln!(out, "{}", render(&h, &a))?;
            }
        }
        HashCommand::File(a) => {
            for p in &a.paths {
                let h = hash_file(a.algo, p)?;
                writeln!(out, "{}", render(&h, &a))?;
            }
        }
        HashCommand::Convert(a) => {
            for text in &a.hashes {
                let h = Hash::parse_any(text, a.algo).with_context(|| format!("cannot parse hash '{text}'"))?;
                if let Some(from) = a.from {
                    check_encoding(text, &h, from)?;
                }
                writeln!(out, "{}", h.encode(a.to, false))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn render(h: &Hash, a: &HashArgs) -> String {
    if a.truncate && h.algorithm().size() > 20 {
        // A truncated hash has no algorithm of its own; print its bytes in the chosen encoding.
        let bytes = compress(h.digest(), 20);
        return match a.format.encoding() {
            Encoding::Base16 => nix_formats::hash::to_base16(&bytes),
            Encoding::Nix32 => nix_formats::nixbase32::encode(&bytes),
            Encoding::Base64 | Encoding::Sri => nix_formats::hash::to_base64(&bytes),
        };
    }
    h.encode(a.format.encoding(), false)
}

/// Whether `text` is written in the `from` encoding, as `nix hash convert --from` demands.
fn check_encoding(text: &str, h: &Hash, from: Encoding) -> Result<()> {
    let matches = [true, false].iter().any(|&prefixed| h.encode(from, prefixed).eq_ignore_ascii_case(text));
    anyhow::ensure!(matches, "hash '{text}' is not in the expected encoding");
    Ok(())
}

/// NAR hash of the file system object at `path`.
pub fn hash_path(algo: Algorithm, path: &Path) -> Result<Hash> {
    let (hash, _size) = nar::hash_path(path, algo).with_context(|| format!("cannot serialise '{}'", path.display()))?;
    Ok(hash)
}

/// Hash of the contents of the regular file at `path`.
pub fn hash_file(algo: Algorithm, path: &Path) -> Result<Hash> {
    let mut f = File::open(path).with_context(|| format!("cannot open '{}'", path.display()))?;
    let mut hasher = Hasher::new(algo);
    io::copy(&mut f, &mut hasher).with_context(|| format!("cannot read '{}'", path.display()))?;
    Ok(hasher.finish())
}
