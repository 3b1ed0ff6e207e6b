//! NAR ("Nix ARchive"), the serialisation of a file system tree that `nix-store --dump` writes.
//!
//! Every token is a wire string: a little-endian u64 length, the bytes, then zero padding up to a
//! multiple of 8. An archive is the magic `nix-archive-1` followed by one node:
//!
//! ```text
//! node  = "(" "type" ( regular | symlink | directory ) ")"
//! regular   = "regular" [ "executable" "" ] "contents" <bytes>
//! symlink   = "symlink" "target" <target>
//! directory = "directory" { "entry" "(" "name" <name> "node" node ")" }
//! ```
//!
//! Directory entries come in strictly increasing byte order of their names, and names are never
//! empty, `.`, `..`, nor contain `/` or NUL.
//!
//! - Writing: [`Writer`] (event-driven, validating) and [`dump_path`] (a file system tree, byte-for-byte
//!   as Nix 2.8's `nix-store --dump`), [`hash_path`].
//! - Reading: [`Reader`], a strict pull parser that never buffers file contents and stops at the
//!   archive's last byte; on top of it [`restore`] (`nix-store --restore`), [`list`] (`nix nar ls -R`),
//!   [`copy`] and [`validate_and_hash`].
//!
//! ```
//! use std::io::Read;
//! use nix_formats::nar::{Event, Limits, Reader, Writer};
//!
//! let mut writer = Writer::new(Vec::new());
//! writer.start_directory()?;
//! writer.entry(b"hello")?;
//! writer.regular(true, 3, &mut &b"hi\n"[..])?;
//! writer.end_directory()?;
//! let archive = writer.finish()?;
//!
//! let mut reader = Reader::new(&archive[..], Limits::default());
//! assert_eq!(reader.next()?, Some(Event::DirectoryStart));
//! assert_eq!(reader.next()?, Some(Event::Entry { name: b"hello" }));
//! assert_eq!(reader.next()?, Some(Event::Regular { executable: true, size: 3 }));
//! let mut contents = String::new();
//! reader.contents().read_to_string(&mut contents)?;
//! assert_eq!(contents, "hi\n");
//! assert_eq!(reader.next()?, Some(Event::DirectoryEnd));
//! assert_eq!(reader.next()?, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod copy;
mod dump;
mod errors;
mod limits;
mod list;
mod reader;
mod restore;
mod writer;

#[cfg(test)]
mod tests;

pub use copy::{copy, validate_and_hash};
pub use dump::{dump_path, hash_path};
pub use errors::{CopyError, Field, ReadError, RestoreError, WriteError};
pub use limits::Limits;
pub use list::{list, ListEntry, ListNode};
pub use reader::{Contents, Event, Reader};
pub use restore::restore;
pub use writer::Writer;

/// The archive's first token.
pub const MAGIC: &[u8] = b"nix-archive-1";

/// The longest token (keyword) a reader accepts, as in Nix: every keyword has at most 10 bytes.
pub const MAX_TAG_LEN: usize = 32;

/// The longest entry name a NAR may hold (Nix's format bound, equal to Linux's `NAME_MAX`).
pub const MAX_NAME_LEN: usize = 255;

/// The longest symlink target a NAR may hold (Nix's format bound, `PATH_MAX` minus the NUL).
pub const MAX_TARGET_LEN: usize = 4095;

/// Whether `name` may name a directory entry: not empty, `.` or `..`, and free of `/` and NUL.
///
/// The length bound ([`MAX_NAME_LEN`]) is checked separately.
pub fn is_valid_entry_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.iter().any(|&b| b == b'/' || b == 0)
}

/// Whether `target` may be a symlink target: not empty and free of NUL.
///
/// The length bound ([`MAX_TARGET_LEN`]) is checked separately.
pub fn is_valid_symlink_target(target: &[u8]) -> bool {
    !target.is_empty() && !target.contains(&0)
}

/// Number of zero bytes that follow a string of `len` bytes.
pub(crate) const fn padding_len(len: u64) -> usize {
    ((8 - len % 8) % 8) as usize
}
