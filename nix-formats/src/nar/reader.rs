//! The strict streaming NAR reader.

use std::io::{self, Read};

use super::errors::{Field, ReadError};
use super::limits::Limits;
use super::{is_valid_entry_name, is_valid_symlink_target, padding_len, MAGIC, MAX_TAG_LEN};

/// Size of the buffer that receives skipped file contents.
const SKIP_BUFFER_SIZE: usize = 64 * 1024;

/// One step of an archive, as [`Reader::next`] yields it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A regular file. Its `size` contents bytes can be read with [`Reader::contents`] or
    /// [`Reader::read_contents`] before the next call to [`Reader::next`], which skips what is left.
    Regular {
        /// Whether the file is executable.
        executable: bool,
        /// Its size in bytes.
        size: u64,
    },
    /// A symlink with its raw target.
    Symlink {
        /// The target (non-empty, without NUL).
        target: &'a [u8],
    },
    /// A directory begins; [`Event::Entry`]s follow, each followed by its node, then
    /// [`Event::DirectoryEnd`].
    DirectoryStart,
    /// The next entry of the current directory; the events of its node follow.
    Entry {
        /// The entry's name (valid, and greater than the previous entry's).
        name: &'a [u8],
    },
    /// The current directory ends.
    DirectoryEnd,
}

/// Where the reader is in the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing read yet.
    Magic,
    /// A node starts here.
    Node,
    /// Inside a regular file's contents, with this many bytes left out of `size`.
    Contents { remaining: u64, size: u64 },
    /// A node's closing `)` has been read.
    NodeEnd,
    /// Inside a directory: `entry` or `)` comes next.
    Directory,
    /// The archive is complete.
    Done,
    /// An error occurred; the position in the input is unknown.
    Failed,
}

/// An open directory.
#[derive(Debug, Default)]
struct Frame {
    /// Length of the directory's own path in `Reader::path`.
    path_len: usize,
    /// The previous entry's name (empty: no entry yet).
    previous_name: Vec<u8>,
}

/// A strict pull parser for NARs.
///
/// [`next`](Self::next) yields the archive's [`Event`]s and `None` once the root node is complete.
/// The reader reads exactly the archive's bytes, with no read-ahead: bytes after the archive stay in
/// the input. It reads small tokens with small reads, so wrap an unbuffered input (file, socket) in
/// a [`std::io::BufReader`]. File contents are never buffered: they are read through
/// [`contents`](Self::contents) / [`read_contents`](Self::read_contents), or skipped.
///
/// Every violation of the grammar is an error ([`ReadError`]): wrong magic, unknown or misplaced
/// tags, non-zero padding, invalid, unsorted or duplicate names, invalid symlink targets, fields
/// longer than the [`Limits`], nesting deeper than them, and the input ending early. After an error
/// the reader returns [`ReadError::Poisoned`].
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    limits: Limits,
    /// Bytes consumed from `inner`.
    position: u64,
    state: State,
    /// Open directories, innermost last; kept beyond `depth` so their buffers are reused.
    frames: Vec<Frame>,
    /// Number of open directories.
    depth: usize,
    /// The path of the current node (names joined by `/`; empty for the root).
    path: Vec<u8>,
    /// The current symlink's target.
    target: Vec<u8>,
    /// Receives skipped contents; allocated on first use.
    skip_buffer: Vec<u8>,
}

/// A fixed buffer for one tag.
struct Tag {
    bytes: [u8; MAX_TAG_LEN + 8],
    len: usize,
}

impl Tag {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl<R: Read> Reader<R> {
    /// A reader of the archive at the start of `inner`, with the given limits.
    pub fn new(inner: R, limits: Limits) -> Self {
        Self {
            inner,
            limits,
            position: 0,
            state: State::Magic,
            frames: Vec::new(),
            depth: 0,
            path: Vec::new(),
            target: Vec::new(),
            skip_buffer: Vec::new(),
        }
    }

    /// Number of bytes read from the input so far. Right after an [`Event::Regular`], this is the
    /// offset of the file's contents in the archive.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The path of the node whose events are being read: entry names joined by `/`, empty for the
    /// root. Raw bytes: names need not be UTF-8.
    pub fn path(&self) -> &[u8] {
        &self.path
    }

    /// Whether the whole archive has been read ([`next`](Self::next) returned `None`).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The input, positioned after the bytes read so far (after the archive once it is done).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next event, or `None` at the end of the archive (and ever after).
    ///
    /// Skips whatever contents of the previous regular file were not read.
    #[allow(clippy::should_implement_trait)] // Events borrow the reader, so this cannot be an Iterator.
    pub fn next(&mut self) -> Result<Option<Event<'_>>, ReadError> {
        match self.advance() {
            Ok(step) => Ok(match step {
                Step::Regular { executable, size } => Some(Event::Regular { executable, size }),
                Step::Symlink => Some(Event::Symlink { target: &self.target }),
                Step::DirectoryStart => Some(Event::DirectoryStart),
                Step::Entry { name_start } => Some(Event::Entry { name: &self.path[name_start..] }),
                Step::DirectoryEnd => Some(Event::DirectoryEnd),
                Step::End => None,
            }),
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    /// Reads contents of the current regular file into `buf`; `Ok(0)` once they are all read (or
    /// when the last event was not a regular file).
    pub fn read_contents(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        let State::Contents { remaining, .. } = &mut self.state else {
            return if self.state == State::Failed { Err(ReadError::Poisoned) } else { Ok(0) };
        };
        if *remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = (*remaining).min(buf.len() as u64) as usize;
        loop {
            match self.inner.read(&mut buf[..want]) {
                Ok(0) => {
                    self.state = State::Failed;
                    return Err(ReadError::Truncated);
                }
                Ok(n) => {
                    *remaining -= n as u64;
                    self.position += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.state = State::Failed;
                    return Err(ReadError::from_input(e));
                }
            }
        }
    }

    /// The current regular file's remaining contents as a [`Read`]. Errors come out as
    /// [`io::Error`]s that wrap the [`ReadError`] (an early end has kind `UnexpectedEof`).
    pub fn contents(&mut self) -> Contents<'_, R> {
        Contents { reader: self }
    }

    /// Contents bytes of the current regular file not yet read (0 if the last event was not a
    /// regular file).
    pub fn remaining_contents(&self) -> u64 {
        match self.state {
            State::Contents { remaining, .. } => remaining,
            _ => 0,
        }
    }

    fn advance(&mut self) -> Result<Step, ReadError> {
        loop {
            match self.state {
                State::Magic => {
                    self.read_magic()?;
                    self.state = State::Node;
                }
                State::Node => return self.read_node_start(),
                State::Contents { remaining, size } => {
                    self.skip(remaining)?;
                    self.read_padding(size)?;
                    self.expect_tag(")")?;
                    self.state = State::NodeEnd;
                }
                State::NodeEnd => {
                    if self.depth == 0 {
                        self.state = State::Done;
                        return Ok(Step::End);
                    }
                    self.expect_tag(")")?;
                    self.path.truncate(self.frames[self.depth - 1].path_len);
                    self.state = State::Directory;
                }
                State::Directory => return self.read_directory_item(),
                State::Done => return Ok(Step::End),
                State::Failed => return Err(ReadError::Poisoned),
            }
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ReadError> {
        self.inner.read_exact(buf).map_err(ReadError::from_input)?;
        self.position += buf.len() as u64;
        Ok(())
    }

    fn read_u64(&mut self) -> Result<u64, ReadError> {
        let mut bytes = [0u8; 8];
        self.read_exact(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn read_padding(&mut self, len: u64) -> Result<(), ReadError> {
        let mut pad = [0u8; 8];
        let pad = &mut pad[..padding_len(len)];
        self.read_exact(pad)?;
        if pad.iter().any(|&b| b != 0) {
            return Err(ReadError::NonZeroPadding);
        }
        Ok(())
    }

    fn skip(&mut self, len: u64) -> Result<(), ReadError> {
        if len == 0 {
            return Ok(());
        }
        if self.skip_buffer.is_empty() {
            self.skip_buffer = vec![0u8; SKIP_BUFFER_SIZE];
        }
        let mut remaining = len;
        while remaining > 0 {
            let want = remaining.min(self.skip_buffer.len() as u64) as usize;
            match self.inner.read(&mut self.skip_buffer[..want]) {
                Ok(0) => return Err(ReadError::Truncated),
                Ok(n) => {
                    remaining -= n as u64;
                    self.position += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::from_input(e)),
            }
        }
        Ok(())
    }

    /// Reads a string's length, checking it against `max`.
    fn read_len(&mut self, what: Field, max: usize) -> Result<usize, ReadError> {
        let len = self.read_u64()?;
        if len > max as u64 {
            return Err(ReadError::TooLong { what, len, max: max as u64 });
        }
        Ok(len as usize)
    }

    fn read_tag(&mut self) -> Result<Tag, ReadError> {
        let len = self.read_len(Field::Tag, MAX_TAG_LEN)?;
        let mut tag = Tag { bytes: [0u8; MAX_TAG_LEN + 8], len };
        let padded = len + padding_len(len as u64);
        self.read_exact(&mut tag.bytes[..padded])?;
        if tag.bytes[len..padded].iter().any(|&b| b != 0) {
            return Err(ReadError::NonZeroPadding);
        }
        Ok(tag)
    }

    fn expect_tag(&mut self, expected: &'static str) -> Result<(), ReadError> {
        let tag = self.read_tag()?;
        if tag.as_bytes() != expected.as_bytes() {
            return Err(ReadError::BadTag { expected, got: tag.as_bytes().to_vec() });
        }
        Ok(())
    }

    fn read_magic(&mut self) -> Result<(), ReadError> {
        let len = self.read_u64()?;
        if len != MAGIC.len() as u64 {
            return Err(ReadError::NotANar);
        }
        let mut magic = [0u8; 16];
        self.read_exact(&mut magic)?;
        if &magic[..MAGIC.len()] != MAGIC {
            return Err(ReadError::NotANar);
        }
        if magic[MAGIC.len()..].iter().any(|&b| b != 0) {
            return Err(ReadError::NonZeroPadding);
        }
        Ok(())
    }

    fn read_node_start(&mut self) -> Result<Step, ReadError> {
        self.expect_tag("(")?;
        self.expect_tag("type")?;
        let node_type = self.read_tag()?;
        match node_type.as_bytes() {
            b"regular" => {
                let mut tag = self.read_tag()?;
                let executable = tag.as_bytes() == b"executable";
                if executable {
                    if self.read_u64()? != 0 {
                        return Err(ReadError::NonEmptyExecutableMarker);
                    }
                    tag = self.read_tag()?;
                }
                if tag.as_bytes() != b"contents" {
                    return Err(ReadError::BadTag { expected: "contents", got: tag.as_bytes().to_vec() });
                }
                let size = self.read_u64()?;
                self.state = State::Contents { remaining: size, size };
                Ok(Step::Regular { executable, size })
            }
            b"symlink" => {
                self.expect_tag("target")?;
                let len = self.read_len(Field::SymlinkTarget, self.limits.max_target_len)?;
                let mut target = std::mem::take(&mut self.target);
                target.resize(len, 0);
                let read = self.read_exact(&mut target);
                self.target = target;
                read?;
                self.read_padding(len as u64)?;
                if !is_valid_symlink_target(&self.target) {
                    return Err(ReadError::InvalidSymlinkTarget { target: self.target.clone() });
                }
                self.expect_tag(")")?;
                self.state = State::NodeEnd;
                Ok(Step::Symlink)
            }
            b"directory" => {
                if self.frames.len() == self.depth {
                    self.frames.push(Frame::default());
                }
                let frame = &mut self.frames[self.depth];
                frame.path_len = self.path.len();
                frame.previous_name.clear();
                self.depth += 1;
                self.state = State::Directory;
                Ok(Step::DirectoryStart)
            }
            other => Err(ReadError::UnknownFileType { got: other.to_vec() }),
        }
    }

    fn read_directory_item(&mut self) -> Result<Step, ReadError> {
        let tag = self.read_tag()?;
        match tag.as_bytes() {
            b")" => {
                self.depth -= 1;
                self.state = State::NodeEnd;
                Ok(Step::DirectoryEnd)
            }
            b"entry" => self.read_entry(),
            other => Err(ReadError::BadTag { expected: "entry' or ')", got: other.to_vec() }),
        }
    }

    fn read_entry(&mut self) -> Result<Step, ReadError> {
        self.expect_tag("(")?;
        self.expect_tag("name")?;
        let len = self.read_len(Field::Name, self.limits.max_name_len)?;
        let dir_path_len = self.path.len();
        let name_start = if dir_path_len == 0 { 0 } else { dir_path_len + 1 };
        let path_len = (name_start + len) as u64;
        if path_len > self.limits.max_path_len as u64 {
            return Err(ReadError::TooLong { what: Field::Path, len: path_len, max: self.limits.max_path_len as u64 });
        }
        if name_start > 0 {
            self.path.push(b'/');
        }
        self.path.resize(name_start + len, 0);
        let mut path = std::mem::take(&mut self.path);
        let read = self.read_exact(&mut path[name_start..]);
        self.path = path;
        read?;
        self.read_padding(len as u64)?;
        let name = &self.path[name_start..];
        if !is_valid_entry_name(name) {
            return Err(ReadError::InvalidName { name: name.to_vec() });
        }
        let frame = &mut self.frames[self.depth - 1];
        if !frame.previous_name.is_empty() && name <= frame.previous_name.as_slice() {
            return Err(ReadError::UnsortedOrDuplicate { previous: frame.previous_name.clone(), name: name.to_vec() });
        }
        frame.previous_name.clear();
        frame.previous_name.extend_from_slice(name);
        self.expect_tag("node")?;
        if self.depth > self.limits.max_depth {
            return Err(ReadError::TooDeep { max: self.limits.max_depth });
        }
        self.state = State::Node;
        Ok(Step::Entry { name_start })
    }
}

/// What [`Reader::advance`] found; turned into an [`Event`] that borrows the reader's buffers.
enum Step {
    Regular { executable: bool, size: u64 },
    Symlink,
    DirectoryStart,
    Entry { name_start: usize },
    DirectoryEnd,
    End,
}

/// The remaining contents of the current regular file, as a [`Read`]; see [`Reader::contents`].
#[derive(Debug)]
pub struct Contents<'r, R> {
    reader: &'r mut Reader<R>,
}

impl<R: Read> Read for Contents<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.reader.read_contents(buf)?)
    }
}
