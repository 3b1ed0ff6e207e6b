//! A reader that hashes what passes through it.

use std::io::Read;

use nix_formats::hash::{Algorithm, Hash, Hasher};

/// Wraps a reader and hashes (with an optional algorithm) every byte read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
}

impl<R: Read> HashingReader<R> {
    /// Hashes with `algo`, or not at all when `None`.
    pub fn new(inner: R, algo: Option<Algorithm>) -> Self {
        Self { inner, hasher: algo.map(Hasher::new) }
    }

    /// The hash of everything read, if hashing was asked for.
    pub fn finish(self) -> Option<Hash> {
        self.hasher.map(Hasher::finish)
    }
}

impl<R: Read> Read for HashingReader<R> {
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

    #[test]
    fn hashes_what_was_read() {
        let mut r = HashingReader::new(&b"hello"[..], Some(Algorithm::Sha1));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(r.finish(), Some(Hash::of(Algorithm::Sha1, b"hello")));
        assert_eq!(HashingReader::new(&b""[..], None).finish(), None);
    }
}
