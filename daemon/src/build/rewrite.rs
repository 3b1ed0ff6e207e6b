//! Hash rewriting (Nix's `RewritingSink`): a writer that replaces strings by others of the same
//! length in what passes through it, also across chunk boundaries.

use std::io::{self, Write};

/// A writer that replaces each `from` by its `to` (same length) in the bytes written.
pub struct Rewriter<W> {
    inner: W,
    rewrites: Vec<(Vec<u8>, Vec<u8>)>,
    /// The length of the longest `from`.
    longest: usize,
    /// The last bytes held back: a match may start in them.
    held: Vec<u8>,
}

impl<W: Write> Rewriter<W> {
    /// Rewrites what goes to `inner`. Pairs whose lengths differ, or with an empty `from`, are
    /// ignored.
    pub fn new(inner: W, rewrites: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Self {
        let rewrites: Vec<_> = rewrites.into_iter().filter(|(f, t)| !f.is_empty() && f.len() == t.len()).collect();
        let longest = rewrites.iter().map(|(f, _)| f.len()).max().unwrap_or(0);
        Self { inner, rewrites, longest, held: Vec::new() }
    }

    fn emit(&mut self, flush_all: bool) -> io::Result<()> {
        let mut i = 0;
        let mut out = Vec::with_capacity(self.held.len());
        while i < self.held.len() {
            if !flush_all && self.held.len() - i < self.longest {
                break;
            }
            let rest = &self.held[i..];
            if let Some((from, to)) = self.rewrites.iter().find(|(from, _)| rest.starts_with(from)) {
                out.extend_from_slice(to);
                i += from.len();
            } else {
                out.push(self.held[i]);
                i += 1;
            }
        }
        self.held.drain(..i);
        self.inner.write_all(&out)
    }

    /// Writes what is held back and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.emit(true)?;
        Ok(self.inner)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewriting_crosses_chunk_boundaries() {
        let mut out = Vec::new();
        {
            let mut w = Rewriter::new(&mut out, [(b"abcd".to_vec(), b"WXYZ".to_vec())]);
            for chunk in [&b"xxab"[..], b"cdyyabc", b"dab", b"c"] {
                w.write_all(chunk).unwrap();
            }
            w.flush().unwrap();
        }
        assert_eq!(out, b"xxWXYZyyWXYZabc");
    }

    #[test]
    fn several_rewrites_at_once() {
        let mut w = Rewriter::new(Vec::new(), [(b"aaaa".to_vec(), b"1111".to_vec()), (b"bb".to_vec(), b"22".to_vec())]);
        for b in b"xaaaabbyaab" {
            w.write_all(&[*b]).unwrap();
        }
        assert_eq!(w.finish().unwrap(), b"x111122yaab");
        let unequal = Rewriter::new(Vec::new(), [(b"abc".to_vec(), b"x".to_vec())]);
        assert_eq!(unequal.rewrites.len(), 0);
    }
}
