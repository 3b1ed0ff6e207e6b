//! `--check`: build a derivation whose outputs are valid again, into scratch paths, and compare
//! the results with the valid outputs (Nix's `bmCheck`). The builder is told the scratch paths
//! in place of the outputs' (their hash parts rewritten in its environment and arguments, as
//! Nix's `inputRewrites`), and each result is hashed with the scratch hash part read as the
//! real one, so the comparison is with what the output would have been at its own path.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use nix_formats::hash::{Algorithm, Hash, Hasher};
use nix_formats::store_path::{output_path_name, StorePath};
use store::Store;

use super::BuildFailure;

/// The scratch path of an output being checked (Nix's `makeFallbackPath`).
pub fn scratch_path(st: &Store, drv_path: &StorePath, drv_name: &str, output: &str) -> Result<StorePath, BuildFailure> {
    st.store_dir()
        .make_store_path(
            &format!("rewrite:{drv_path}:name:{output}"),
            &Hash::zero(Algorithm::Sha256),
            &output_path_name(drv_name, output),
        )
        .map_err(|e| BuildFailure::misc(e.to_string()))
}

/// A writer that replaces `from` by `to` (same length) in what passes through, also across
/// chunk boundaries.
struct Rewriter<W> {
    inner: W,
    from: Vec<u8>,
    to: Vec<u8>,
    /// The last bytes held back: a match may start in them.
    held: Vec<u8>,
}

impl<W: Write> Rewriter<W> {
    fn emit(&mut self, flush_all: bool) -> io::Result<()> {
        let n = self.from.len();
        let mut i = 0;
        let mut out = Vec::with_capacity(self.held.len());
        while i < self.held.len() {
            if self.held[i..].starts_with(&self.from) {
                out.extend_from_slice(&self.to);
                i += n;
            } else if !flush_all && self.held.len() - i < n {
                break;
            } else {
                out.push(self.held[i]);
                i += 1;
            }
        }
        self.held.drain(..i);
        self.inner.write_all(&out)
    }
}

impl<W: Write> Write for Rewriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.held.extend_from_slice(buf);
        self.emit(false)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.emit(true)?;
        self.inner.flush()
    }
}

/// The NAR hash of the tree at `real`, with `scratch_hash_part` read as `real_hash_part`.
pub fn rewritten_nar_hash(real: &Path, scratch_hash_part: &str, real_hash_part: &str) -> Result<Hash, BuildFailure> {
    let mut hasher = Hasher::new(Algorithm::Sha256);
    {
        let mut rewriter = Rewriter {
            inner: &mut hasher,
            from: scratch_hash_part.as_bytes().to_vec(),
            to: real_hash_part.as_bytes().to_vec(),
            held: Vec::new(),
        };
        nix_formats::nar::dump_path(real, &mut rewriter).map_err(|e| BuildFailure::misc(e.to_string()))?;
        rewriter.flush().map_err(|e| BuildFailure::misc(e.to_string()))?;
    }
    Ok(hasher.finish())
}

/// Compares each checked output (built at its scratch path) with the valid output; the first
/// difference is Nix's "may not be deterministic" failure.
pub fn compare(
    st: &Store,
    drv_path: &StorePath,
    outputs: &BTreeMap<String, StorePath>,
    scratch: &BTreeMap<String, StorePath>,
) -> Result<(), BuildFailure> {
    for (name, path) in outputs {
        let Some(tmp) = scratch.get(name) else { continue };
        let info = st
            .query_path_info(path)
            .map_err(|e| BuildFailure::misc(e.to_string()))?
            .ok_or_else(|| BuildFailure::misc(format!("path '{}' is not valid", st.print(path))))?;
        let real = st.real_path(tmp);
        if std::fs::symlink_metadata(&real).is_err() {
            return Err(BuildFailure::permanent(format!(
                "builder for '{}' failed to produce output path for output '{name}' at '{}'",
                st.print(drv_path),
                st.print(tmp)
            )));
        }
        let got = rewritten_nar_hash(&real, tmp.hash_part(), path.hash_part())?;
        if got != info.nar_hash {
            return Err(BuildFailure {
                status: nix_formats::build_result::BuildStatus::NotDeterministic,
                message: format!(
                    "derivation '{}' may not be deterministic: output '{}' differs",
                    st.print(drv_path),
                    st.print(path)
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewriting_crosses_chunk_boundaries() {
        let mut out = Vec::new();
        {
            let mut w = Rewriter { inner: &mut out, from: b"abcd".to_vec(), to: b"WXYZ".to_vec(), held: Vec::new() };
            for chunk in [&b"xxab"[..], b"cdyyabc", b"dab", b"c"] {
                w.write_all(chunk).unwrap();
            }
            w.flush().unwrap();
        }
        assert_eq!(out, b"xxWXYZyyWXYZabc");
    }
}
