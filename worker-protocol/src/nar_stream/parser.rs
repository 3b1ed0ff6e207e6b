//! [`NarParser`]: a push parser that follows a NAR byte by byte, as it streams past, and knows
//! at every point how many more bytes may come before the archive ends.
//!
//! It checks everything `nix_formats::nar::Reader` checks (magic, tags, padding, names, order,
//! symlink targets, lengths, depth) and reports the same [`ReadError`]s, but holds no file
//! contents: only the current token (at most one symlink target) and, per open directory, the
//! previous entry name.

use nix_formats::nar::{
    is_valid_entry_name, is_valid_symlink_target, Field, Limits, ReadError, MAGIC, MAX_TAG_LEN,
};

use crate::wire::padding_len;

/// What the next string of the archive must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// `nix-archive-1`.
    Magic,
    /// `(` opening a node.
    NodeOpen,
    /// `type`.
    TypeKw,
    /// `regular`, `symlink` or `directory`.
    TypeVal,
    /// `executable` or `contents`.
    RegularAttr,
    /// The empty string after `executable`.
    ExecutableMarker,
    /// `contents` (after the executable marker).
    ContentsKw,
    /// A regular file's contents.
    Contents,
    /// `)` closing a regular file or symlink node.
    NodeClose,
    /// `target`.
    TargetKw,
    /// A symlink's target.
    Target,
    /// `entry` or `)` inside a directory.
    DirectoryItem,
    /// `(` opening an entry.
    EntryOpen,
    /// `name`.
    NameKw,
    /// An entry's name.
    Name,
    /// `node`.
    NodeKw,
    /// `)` closing an entry.
    EntryClose,
}

/// Where the lexer is inside the current string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Reading the length; `got` of its 8 bytes are in `bytes`.
    Len { got: usize, bytes: [u8; 8] },
    /// Reading `remaining` of the string's `len` bytes.
    Data { len: u64, remaining: u64 },
    /// Reading `remaining` padding bytes.
    Pad { remaining: usize },
    /// The archive is complete.
    Done,
    /// An error happened; nothing more is accepted.
    Failed,
}

/// An open directory.
#[derive(Debug, Default)]
struct Frame {
    /// The length of the directory's own path in [`NarParser::path`].
    path_len: usize,
    /// The previous entry's name (empty before the first entry).
    previous_name: Vec<u8>,
}

/// Follows one NAR as its bytes are fed in. See [the module documentation](crate::nar_stream).
#[derive(Debug)]
pub struct NarParser {
    limits: Limits,
    lex: Lex,
    expect: Expect,
    /// The bytes of the current string, for every string but file contents.
    token: Vec<u8>,
    /// Open directories, innermost last (kept beyond `depth` so their buffers are reused).
    frames: Vec<Frame>,
    depth: usize,
    /// The path of the current node inside the archive (names joined by `/`).
    path: Vec<u8>,
    /// Bytes fed so far.
    position: u64,
    /// Whether the root node has been closed (its padding may still follow).
    complete: bool,
}

impl NarParser {
    /// A parser at the start of an archive.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            lex: Lex::Len { got: 0, bytes: [0; 8] },
            expect: Expect::Magic,
            token: Vec::new(),
            frames: Vec::new(),
            depth: 0,
            path: Vec::new(),
            position: 0,
            complete: false,
        }
    }

    /// Whether the archive is complete.
    pub fn is_done(&self) -> bool {
        self.lex == Lex::Done
    }

    /// Whether an error has happened.
    pub fn is_failed(&self) -> bool {
        self.lex == Lex::Failed
    }

    /// Marks the parse as failed (the input ended early, say): every later feed fails.
    pub fn fail(&mut self) {
        self.lex = Lex::Failed;
    }

    /// How many bytes have been fed.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// How many bytes may be fed next: never more than the archive still has, at least 1 until it
    /// is complete, and 0 once it is complete or after an error.
    pub fn want(&self) -> usize {
        match self.lex {
            Lex::Len { got, .. } => 8 - got,
            Lex::Data { remaining, .. } => usize::try_from(remaining).unwrap_or(usize::MAX),
            Lex::Pad { remaining } => remaining,
            Lex::Done | Lex::Failed => 0,
        }
    }

    /// Whether the bytes being read are a regular file's contents (passed through, not kept).
    pub fn in_contents(&self) -> bool {
        matches!(self.lex, Lex::Data { .. }) && self.expect == Expect::Contents
    }

    /// Feeds the next bytes, at most [`Self::want`] of them (more is an error, as is anything
    /// after the archive has ended or failed).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ReadError> {
        if self.lex == Lex::Failed {
            return Err(ReadError::Poisoned);
        }
        if bytes.len() > self.want() {
            self.lex = Lex::Failed;
            return Err(ReadError::Io(std::io::Error::other("more bytes fed than the NAR has left")));
        }
        self.position += bytes.len() as u64;
        let result = self.step(bytes);
        if result.is_err() {
            self.lex = Lex::Failed;
        }
        result
    }

    fn step(&mut self, bytes: &[u8]) -> Result<(), ReadError> {
        match &mut self.lex {
            Lex::Len { got, bytes: len_bytes } => {
                len_bytes[*got..*got + bytes.len()].copy_from_slice(bytes);
                *got += bytes.len();
                if *got == 8 {
                    let len = u64::from_le_bytes(*len_bytes);
                    self.start_string(len)?;
                }
            }
            Lex::Data { len, remaining } => {
                *remaining -= bytes.len() as u64;
                let (len, done) = (*len, *remaining == 0);
                if self.expect != Expect::Contents {
                    self.token.extend_from_slice(bytes);
                }
                if done {
                    self.end_data(len)?;
                }
            }
            Lex::Pad { remaining } => {
                if bytes.iter().any(|&b| b != 0) {
                    return Err(ReadError::NonZeroPadding);
                }
                *remaining -= bytes.len();
                if *remaining == 0 {
                    self.next_string();
                }
            }
            Lex::Done | Lex::Failed => {}
        }
        Ok(())
    }

    /// The length of a string has been read: check it against what the grammar expects.
    fn start_string(&mut self, len: u64) -> Result<(), ReadError> {
        let too_long = |what, max: usize| ReadError::TooLong { what, len, max: max as u64 };
        match self.expect {
            Expect::Magic if len != MAGIC.len() as u64 => return Err(ReadError::NotANar),
            Expect::ExecutableMarker if len != 0 => return Err(ReadError::NonEmptyExecutableMarker),
            Expect::Contents | Expect::Magic | Expect::ExecutableMarker => {}
            Expect::Target if len > self.limits.max_target_len as u64 => {
                return Err(too_long(Field::SymlinkTarget, self.limits.max_target_len))
            }
            Expect::Name => {
                if len > self.limits.max_name_len as u64 {
                    return Err(too_long(Field::Name, self.limits.max_name_len));
                }
                let base = self.path.len();
                let path_len = if base == 0 { len } else { base as u64 + 1 + len };
                if path_len > self.limits.max_path_len as u64 {
                    return Err(ReadError::TooLong {
                        what: Field::Path,
                        len: path_len,
                        max: self.limits.max_path_len as u64,
                    });
                }
            }
            Expect::Target => {}
            _ if len > MAX_TAG_LEN as u64 => return Err(too_long(Field::Tag, MAX_TAG_LEN)),
            _ => {}
        }
        self.token.clear();
        self.lex = Lex::Data { len, remaining: len };
        if len == 0 {
            self.end_data(0)?;
        }
        Ok(())
    }

    /// A string's bytes are complete: act on it, then read its padding.
    fn end_data(&mut self, len: u64) -> Result<(), ReadError> {
        self.on_string()?;
        let pad = padding_len(len);
        if pad == 0 {
            self.next_string();
        } else {
            self.lex = Lex::Pad { remaining: pad };
        }
        Ok(())
    }

    /// Moves on to the next string's length, unless the archive has ended.
    fn next_string(&mut self) {
        self.lex = if self.complete { Lex::Done } else { Lex::Len { got: 0, bytes: [0; 8] } };
    }

    fn tag(&self, expected: &'static str) -> Result<(), ReadError> {
        if self.token != expected.as_bytes() {
            return Err(ReadError::BadTag { expected, got: self.token.clone() });
        }
        Ok(())
    }

    /// Advances the grammar over the string just read.
    fn on_string(&mut self) -> Result<(), ReadError> {
        self.expect = match self.expect {
            Expect::Magic => {
                if self.token != MAGIC {
                    return Err(ReadError::NotANar);
                }
                Expect::NodeOpen
            }
            Expect::NodeOpen => self.tag("(").map(|()| Expect::TypeKw)?,
            Expect::TypeKw => self.tag("type").map(|()| Expect::TypeVal)?,
            Expect::TypeVal => match self.token.as_slice() {
                b"regular" => Expect::RegularAttr,
                b"symlink" => Expect::TargetKw,
                b"directory" => {
                    if self.frames.len() == self.depth {
                        self.frames.push(Frame::default());
                    }
                    let frame = &mut self.frames[self.depth];
                    frame.path_len = self.path.len();
                    frame.previous_name.clear();
                    self.depth += 1;
                    Expect::DirectoryItem
                }
                other => return Err(ReadError::UnknownFileType { got: other.to_vec() }),
            },
            Expect::RegularAttr => match self.token.as_slice() {
                b"executable" => Expect::ExecutableMarker,
                b"contents" => Expect::Contents,
                other => return Err(ReadError::BadTag { expected: "contents", got: other.to_vec() }),
            },
            Expect::ExecutableMarker => Expect::ContentsKw,
            Expect::ContentsKw => self.tag("contents").map(|()| Expect::Contents)?,
            Expect::Contents => Expect::NodeClose,
            Expect::NodeClose => {
                self.tag(")")?;
                self.node_ended()
            }
            Expect::TargetKw => self.tag("target").map(|()| Expect::Target)?,
            Expect::Target => {
                if !is_valid_symlink_target(&self.token) {
                    return Err(ReadError::InvalidSymlinkTarget { target: self.token.clone() });
                }
                Expect::NodeClose
            }
            Expect::DirectoryItem => match self.token.as_slice() {
                b")" => {
                    self.depth -= 1;
                    self.node_ended()
                }
                b"entry" => Expect::EntryOpen,
                other => return Err(ReadError::BadTag { expected: "entry' or ')", got: other.to_vec() }),
            },
            Expect::EntryOpen => self.tag("(").map(|()| Expect::NameKw)?,
            Expect::NameKw => self.tag("name").map(|()| Expect::Name)?,
            Expect::Name => {
                let name = &self.token;
                if !is_valid_entry_name(name) {
                    return Err(ReadError::InvalidName { name: name.clone() });
                }
                let frame = &mut self.frames[self.depth - 1];
                if !frame.previous_name.is_empty() && name.as_slice() <= frame.previous_name.as_slice() {
                    return Err(ReadError::UnsortedOrDuplicate {
                        previous: frame.previous_name.clone(),
                        name: name.clone(),
                    });
                }
                frame.previous_name.clear();
                frame.previous_name.extend_from_slice(name);
                if !self.path.is_empty() {
                    self.path.push(b'/');
                }
                self.path.extend_from_slice(name);
                Expect::NodeKw
            }
            Expect::NodeKw => {
                self.tag("node")?;
                if self.depth > self.limits.max_depth {
                    return Err(ReadError::TooDeep { max: self.limits.max_depth });
                }
                Expect::NodeOpen
            }
            Expect::EntryClose => {
                self.tag(")")?;
                self.path.truncate(self.frames[self.depth - 1].path_len);
                Expect::DirectoryItem
            }
        };
        Ok(())
    }

    /// A node has ended: the archive ends with the root, an entry's `)` follows otherwise.
    fn node_ended(&mut self) -> Expect {
        if self.depth == 0 {
            self.complete = true;
        }
        Expect::EntryClose
    }
}
