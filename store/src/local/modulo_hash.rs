//! Nix's `HashModuloSink` (2.26.3): the content-address hash of a path Nix checks on import is
//! taken over its serialisation with every occurrence of the path's own hash part replaced by
//! as many NUL bytes, so a self-referencing object (a content-addressed derivation output that
//! mentions its own path) has a hash that does not depend on its path. (Nix 2.26.3 no longer
//! appends the match positions that Nix 2.8 hashed after the contents.)

use std::io::{Read, Write};

use memchr::memmem::Finder;
use nix_formats::hash::{Algorithm, Hash, Hasher};

/// Hashes (optionally) a stream modulo one string, and tells whether the string occurred.
pub struct ModuloHasher {
    hasher: Option<Hasher>,
    finder: Finder<'static>,
    /// The last bytes seen, not hashed yet: the start of an occurrence may be among them.
    carry: Vec<u8>,
    matched: bool,
}

impl ModuloHasher {
    /// Hashes with `algo` (or only looks for `modulus` if `None`).
    pub fn new(algo: Option<Algorithm>, modulus: &str) -> Self {
        Self {
            hasher: algo.map(Hasher::new),
            finder: Finder::new(modulus.as_bytes()).into_owned(),
            carry: Vec::new(),
            matched: false,
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        let len = self.finder.needle().len();
        if len == 0 {
            if let Some(h) = &mut self.hasher {
                h.update(data);
            }
            return;
        }
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(data);
        let mut at = 0;
        while let Some(found) = self.finder.find(&buf[at..]) {
            let start = at + found;
            buf[start..start + len].fill(0);
            self.matched = true;
            at = start + len;
        }
        // Replaced bytes are NULs, which never start an occurrence: keeping them is harmless.
        let keep = buf.len().min(len - 1);
        let done = buf.len() - keep;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..done]);
        }
        buf.drain(..done);
        self.carry = buf;
    }

    /// The hash (if one was asked for) and whether the modulus occurred.
    pub fn finish(mut self) -> (Option<Hash>, bool) {
        let rest = std::mem::take(&mut self.carry);
        let hash = self.hasher.map(|mut h| {
            h.update(&rest);
            h.finish()
        });
        (hash, self.matched)
    }
}

impl Write for ModuloHasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A reader that feeds a [`ModuloHasher`] (if any) with what passes through it.
pub(crate) struct ModuloReader<R> {
    inner: R,
    hasher: Option<ModuloHasher>,
}

impl<R: Read> ModuloReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, hasher: Option<ModuloHasher>) -> Self {
        Self { inner, hasher }
    }

    /// See [`ModuloHasher::finish`]; `None` without a hasher.
    pub fn finish(self) -> Option<(Option<Hash>, bool)> {
        self.hasher.map(ModuloHasher::finish)
    }
}

impl<R: Read> Read for ModuloReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modulo(data: &[u8], modulus: &str, chunk: usize) -> (Hash, bool) {
        let mut h = ModuloHasher::new(Some(Algorithm::Sha256), modulus);
        for piece in data.chunks(chunk.max(1)) {
            h.update(piece);
        }
        let (hash, matched) = h.finish();
        (hash.unwrap(), matched)
    }

    #[test]
    fn occurrences_become_nuls_whatever_the_chunking() {
        let m = "0123456789abcdfghijklmnpqrsvwxyz";
        let data = format!("head {m} mid {m}{m} tail 0123 {m}");
        let expected = data.replace(m, &"\0".repeat(32));
        for chunk in [1, 3, 31, 32, 33, 64, 1000] {
            assert_eq!(modulo(data.as_bytes(), m, chunk), (Hash::of(Algorithm::Sha256, expected.as_bytes()), true), "{chunk}");
        }
        let plain = b"nothing to see here";
        assert_eq!(modulo(plain, m, 4), (Hash::of(Algorithm::Sha256, plain), false));
        assert_eq!(modulo(b"", m, 4), (Hash::of(Algorithm::Sha256, b""), false));
    }

    #[test]
    fn looking_only() {
        let mut h = ModuloHasher::new(None, "abc");
        h.update(b"xxab");
        h.update(b"cxx");
        assert_eq!(h.finish(), (None, true));
    }
}
