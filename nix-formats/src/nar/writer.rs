//! The event-driven NAR writer.

use std::io::{self, Read, Write};

use super::errors::WriteError;
use super::{is_valid_entry_name, is_valid_symlink_target, padding_len, MAGIC, MAX_NAME_LEN, MAX_TARGET_LEN};

/// Size of the buffer that carries file contents from their reader to the output.
const COPY_BUFFER_SIZE: usize = 256 * 1024;

/// Framing bytes are handed to the output once this many have gathered (or before contents).
const TOKEN_FLUSH_THRESHOLD: usize = 64 * 1024;

/// What the archive's grammar needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A node: the root, or the node of an entry just named.
    Node,
    /// An entry or the end of the innermost open directory.
    EntryOrEnd,
    /// Nothing: the root node is complete.
    Done,
}

impl Expect {
    fn describe(self) -> &'static str {
        match self {
            Self::Node => "a node (regular, symlink or start_directory)",
            Self::EntryOrEnd => "entry or end_directory",
            Self::Done => "finish",
        }
    }
}

/// Writes a NAR from a sequence of calls, checking that they form a valid archive.
///
/// The root node is one of [`regular`](Self::regular), [`regular_bytes`](Self::regular_bytes),
/// [`symlink`](Self::symlink), or [`start_directory`](Self::start_directory) followed by any number of
/// ([`entry`](Self::entry), node) pairs in strictly increasing name order and
/// [`end_directory`](Self::end_directory). [`finish`](Self::finish) then flushes and returns the output.
///
/// Framing tokens are gathered in a small internal buffer and handed to the output in few, larger
/// writes; file contents go straight from a reusable 256 KiB buffer to the output. Dropping the
/// writer without calling [`finish`](Self::finish) may lose the last framing bytes.
/// Every call validates its input; after an error the archive is incomplete and the writer should be
/// dropped.
pub struct Writer<W: Write> {
    out: W,
    /// Framing bytes not yet written to `out`.
    tokens: Vec<u8>,
    /// Carries file contents; allocated on first use.
    copy_buffer: Vec<u8>,
    /// The previous entry name of each open directory (empty: none yet). Kept beyond `depth` so
    /// their allocations are reused.
    previous_names: Vec<Vec<u8>>,
    /// Number of open directories.
    depth: usize,
    expect: Expect,
}

impl<W: Write> Writer<W> {
    /// A writer that will emit one archive into `out`.
    pub fn new(out: W) -> Self {
        let mut writer = Self {
            out,
            tokens: Vec::with_capacity(1024),
            copy_buffer: Vec::new(),
            previous_names: Vec::new(),
            depth: 0,
            expect: Expect::Node,
        };
        writer.token(MAGIC);
        writer
    }

    /// Appends one wire string to the framing buffer.
    fn token(&mut self, s: &[u8]) {
        self.tokens.extend_from_slice(&(s.len() as u64).to_le_bytes());
        self.tokens.extend_from_slice(s);
        self.tokens.extend_from_slice(&[0u8; 8][..padding_len(s.len() as u64)]);
    }

    fn flush_tokens(&mut self) -> Result<(), WriteError> {
        if !self.tokens.is_empty() {
            self.out.write_all(&self.tokens).map_err(WriteError::Io)?;
            self.tokens.clear();
        }
        Ok(())
    }

    fn maybe_flush_tokens(&mut self) -> Result<(), WriteError> {
        if self.tokens.len() >= TOKEN_FLUSH_THRESHOLD {
            self.flush_tokens()?;
        }
        Ok(())
    }

    fn require(&self, call: &'static str, expect: Expect) -> Result<(), WriteError> {
        if self.expect == expect {
            Ok(())
        } else {
            Err(WriteError::OutOfOrder { call, expected: self.expect.describe() })
        }
    }

    /// After a node is complete: close its entry, or end the archive if it was the root.
    fn node_done(&mut self) -> Result<(), WriteError> {
        if self.depth == 0 {
            self.expect = Expect::Done;
        } else {
            self.token(b")");
            self.expect = Expect::EntryOrEnd;
        }
        self.maybe_flush_tokens()
    }

    fn regular_header(&mut self, executable: bool, size: u64) {
        self.token(b"(");
        self.token(b"type");
        self.token(b"regular");
        if executable {
            self.token(b"executable");
            self.token(b"");
        }
        self.token(b"contents");
        self.tokens.extend_from_slice(&size.to_le_bytes());
    }

    fn regular_trailer(&mut self, size: u64) -> Result<(), WriteError> {
        self.tokens.extend_from_slice(&[0u8; 8][..padding_len(size)]);
        self.token(b")");
        self.node_done()
    }

    /// A regular file of `size` bytes, whose contents `contents` yields.
    ///
    /// Fails with [`WriteError::ContentsTooShort`] or [`WriteError::ContentsTooLong`] when `contents`
    /// does not yield exactly `size` bytes before its end (one extra read checks the end).
    pub fn regular<R: Read + ?Sized>(&mut self, executable: bool, size: u64, contents: &mut R) -> Result<(), WriteError> {
        self.require("regular", Expect::Node)?;
        self.regular_header(executable, size);
        if size > 0 {
            self.flush_tokens()?;
        }
        if self.copy_buffer.is_empty() {
            self.copy_buffer = vec![0u8; COPY_BUFFER_SIZE];
        }
        let (buffer, out) = (&mut self.copy_buffer, &mut self.out);
        let mut remaining = size;
        while remaining > 0 {
            let want = remaining.min(buffer.len() as u64) as usize;
            let n = match contents.read(&mut buffer[..want]) {
                Ok(0) => return Err(WriteError::ContentsTooShort { expected: size, got: size - remaining }),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(WriteError::Contents(e)),
            };
            out.write_all(&buffer[..n]).map_err(WriteError::Io)?;
            remaining -= n as u64;
        }
        loop {
            match contents.read(&mut buffer[..1]) {
                Ok(0) => break,
                Ok(_) => return Err(WriteError::ContentsTooLong { expected: size }),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(WriteError::Contents(e)),
            }
        }
        self.regular_trailer(size)
    }

    /// A regular file whose contents are in memory.
    pub fn regular_bytes(&mut self, executable: bool, contents: &[u8]) -> Result<(), WriteError> {
        self.require("regular_bytes", Expect::Node)?;
        let size = contents.len() as u64;
        self.regular_header(executable, size);
        if contents.len() <= 4096 {
            self.tokens.extend_from_slice(contents);
        } else {
            self.flush_tokens()?;
            self.out.write_all(contents).map_err(WriteError::Io)?;
        }
        self.regular_trailer(size)
    }

    /// A symlink with the raw bytes `target` (non-empty, without NUL, at most 4095 bytes).
    pub fn symlink(&mut self, target: &[u8]) -> Result<(), WriteError> {
        self.require("symlink", Expect::Node)?;
        if !is_valid_symlink_target(target) || target.len() > MAX_TARGET_LEN {
            return Err(WriteError::InvalidSymlinkTarget { target: target.to_vec() });
        }
        self.token(b"(");
        self.token(b"type");
        self.token(b"symlink");
        self.token(b"target");
        self.token(target);
        self.token(b")");
        self.node_done()
    }

    /// Opens a directory; its entries follow, then [`end_directory`](Self::end_directory).
    pub fn start_directory(&mut self) -> Result<(), WriteError> {
        self.require("start_directory", Expect::Node)?;
        self.token(b"(");
        self.token(b"type");
        self.token(b"directory");
        if self.previous_names.len() == self.depth {
            self.previous_names.push(Vec::new());
        } else {
            self.previous_names[self.depth].clear();
        }
        self.depth += 1;
        self.expect = Expect::EntryOrEnd;
        Ok(())
    }

    /// Names the next entry of the innermost open directory; its node must follow.
    ///
    /// `name` must be a valid entry name (see [`is_valid_entry_name`](super::is_valid_entry_name),
    /// at most 255 bytes) and greater, in byte order, than the directory's previous entry.
    pub fn entry(&mut self, name: &[u8]) -> Result<(), WriteError> {
        self.require("entry", Expect::EntryOrEnd)?;
        if !is_valid_entry_name(name) || name.len() > MAX_NAME_LEN {
            return Err(WriteError::InvalidName { name: name.to_vec() });
        }
        let previous = &mut self.previous_names[self.depth - 1];
        if !previous.is_empty() && name <= previous.as_slice() {
            return Err(WriteError::UnsortedOrDuplicate { previous: previous.clone(), name: name.to_vec() });
        }
        previous.clear();
        previous.extend_from_slice(name);
        self.token(b"entry");
        self.token(b"(");
        self.token(b"name");
        self.token(name);
        self.token(b"node");
        self.expect = Expect::Node;
        Ok(())
    }

    /// Closes the innermost open directory.
    pub fn end_directory(&mut self) -> Result<(), WriteError> {
        self.require("end_directory", Expect::EntryOrEnd)?;
        self.token(b")");
        self.depth -= 1;
        self.node_done()
    }

    /// Ends the archive: checks that the root node is complete, flushes, and returns the output.
    pub fn finish(mut self) -> Result<W, WriteError> {
        self.require("finish", Expect::Done)?;
        self.flush_tokens()?;
        self.out.flush().map_err(WriteError::Io)?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(tokens: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for t in tokens {
            v.extend_from_slice(&(t.len() as u64).to_le_bytes());
            v.extend_from_slice(t);
            v.resize(v.len() + padding_len(t.len() as u64), 0);
        }
        v
    }

    #[test]
    fn single_file_matches_the_grammar() {
        let mut w = Writer::new(Vec::new());
        w.regular(true, 3, &mut &b"abc"[..]).unwrap();
        let out = w.finish().unwrap();
        let expected =
            wire(&[MAGIC, b"(", b"type", b"regular", b"executable", b"", b"contents", b"abc", b")"]);
        assert_eq!(out, expected);
        let mut w = Writer::new(Vec::new());
        w.regular_bytes(true, b"abc").unwrap();
        assert_eq!(w.finish().unwrap(), expected);
    }

    #[test]
    fn directory_with_symlink() {
        let mut w = Writer::new(Vec::new());
        w.start_directory().unwrap();
        w.entry(b"a").unwrap();
        w.symlink(b"../x").unwrap();
        w.entry(b"b").unwrap();
        w.start_directory().unwrap();
        w.end_directory().unwrap();
        w.end_directory().unwrap();
        let expected = wire(&[
            MAGIC, b"(", b"type", b"directory", b"entry", b"(", b"name", b"a", b"node", b"(", b"type", b"symlink",
            b"target", b"../x", b")", b")", b"entry", b"(", b"name", b"b", b"node", b"(", b"type", b"directory",
            b")", b")", b")",
        ]);
        assert_eq!(w.finish().unwrap(), expected);
    }

    #[test]
    fn contents_size_mismatch_is_an_error() {
        let mut w = Writer::new(Vec::new());
        assert!(matches!(
            w.regular(false, 4, &mut &b"abc"[..]),
            Err(WriteError::ContentsTooShort { expected: 4, got: 3 })
        ));
        let mut w = Writer::new(Vec::new());
        assert!(matches!(w.regular(false, 2, &mut &b"abc"[..]), Err(WriteError::ContentsTooLong { expected: 2 })));
        let mut w = Writer::new(Vec::new());
        let big = vec![7u8; COPY_BUFFER_SIZE * 2 + 5];
        assert!(matches!(
            w.regular(false, big.len() as u64 + 1, &mut &big[..]),
            Err(WriteError::ContentsTooShort { got, .. }) if got == big.len() as u64
        ));
    }

    #[test]
    fn unsorted_duplicate_and_invalid_names_are_errors() {
        let mut w = Writer::new(Vec::new());
        w.start_directory().unwrap();
        w.entry(b"b").unwrap();
        w.regular_bytes(false, b"").unwrap();
        assert!(matches!(w.entry(b"a"), Err(WriteError::UnsortedOrDuplicate { .. })));
        assert!(matches!(w.entry(b"b"), Err(WriteError::UnsortedOrDuplicate { .. })));
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b", &[b'x'; 256][..]] {
            assert!(matches!(w.entry(bad), Err(WriteError::InvalidName { .. })), "{bad:?}");
        }
        w.entry(&[b'x'; 255]).unwrap();
    }

    #[test]
    fn invalid_symlink_targets_are_errors() {
        for bad in [&b""[..], b"a\0", &[b'x'; 4096][..]] {
            let mut w = Writer::new(Vec::new());
            assert!(matches!(w.symlink(bad), Err(WriteError::InvalidSymlinkTarget { .. })));
        }
        let mut w = Writer::new(Vec::new());
        w.symlink(&[b'x'; 4095]).unwrap();
    }

    #[test]
    fn misuse_is_an_error() {
        let w = Writer::new(Vec::new());
        assert!(matches!(w.finish(), Err(WriteError::OutOfOrder { call: "finish", .. })));
        let mut w = Writer::new(Vec::new());
        assert!(matches!(w.entry(b"a"), Err(WriteError::OutOfOrder { .. })));
        assert!(matches!(w.end_directory(), Err(WriteError::OutOfOrder { .. })));
        w.start_directory().unwrap();
        assert!(matches!(w.symlink(b"x"), Err(WriteError::OutOfOrder { .. })));
        assert!(matches!(w.finish(), Err(WriteError::OutOfOrder { .. })));
        let mut w = Writer::new(Vec::new());
        w.symlink(b"x").unwrap();
        assert!(matches!(w.symlink(b"y"), Err(WriteError::OutOfOrder { .. })));
        w.finish().unwrap();
    }
}
