//! Nix's export format (`nix-store --export` / `--import`): for each path, `u64` 1, its NAR,
//! then a trailer — `u64` magic `0x4558494e` ("NIXE"), the path, its references (count and
//! strings), its deriver (`""` for none), and a legacy signature flag (0; a 1 is followed by a
//! string that Nix ignores) — and after the last path a `u64` 0. Numbers are little-endian;
//! strings are a `u64` length and the bytes, padded with zeros to a multiple of 8.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use nix_formats::store_path::{StoreDir, StorePath};

/// The magic number opening each trailer.
pub const EXPORT_MAGIC: u64 = 0x4558_494e;

/// The longest string accepted in a trailer (a full store path is far shorter).
pub const MAX_EXPORT_STRING: u64 = 4096;

/// The most references accepted for one path.
pub const MAX_EXPORT_REFERENCES: u64 = 1 << 20;

/// A malformed export stream.
#[derive(Debug, thiserror::Error)]
pub enum ExportFormatError {
    /// Reading or writing the stream failed (including its early end).
    #[error("export stream: {0}")]
    Io(#[from] std::io::Error),
    /// A path does not start with the export magic.
    #[error("Nix archive cannot be imported; wrong format (magic {0:#x})")]
    BadMagic(u64),
    /// The "more paths follow" word is neither 0 nor 1.
    #[error("input doesn't look like something created by 'nix-store --export' (marker {0})")]
    BadMarker(u64),
    /// A string is longer than [`MAX_EXPORT_STRING`].
    #[error("export stream: string of {0} bytes is too long")]
    StringTooLong(u64),
    /// More references than [`MAX_EXPORT_REFERENCES`].
    #[error("export stream: {0} references is too many")]
    TooManyReferences(u64),
    /// Padding bytes are not zero.
    #[error("export stream: non-zero padding")]
    BadPadding,
    /// A string is not a store path of this store.
    #[error("export stream: '{0}' is not a store path here")]
    BadPath(String),
}

/// One path's trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTrailer {
    /// The path.
    pub path: StorePath,
    /// Its references.
    pub references: BTreeSet<StorePath>,
    /// Its deriver.
    pub deriver: Option<StorePath>,
}

pub(crate) fn write_u64(out: &mut impl Write, n: u64) -> std::io::Result<()> {
    out.write_all(&n.to_le_bytes())
}

fn write_str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    write_u64(out, s.len() as u64)?;
    out.write_all(s.as_bytes())?;
    out.write_all(&[0u8; 8][..(8 - s.len() % 8) % 8])
}

pub(crate) fn read_u64(input: &mut impl Read) -> Result<u64, ExportFormatError> {
    let mut b = [0u8; 8];
    input.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_str(input: &mut impl Read) -> Result<String, ExportFormatError> {
    let len = read_u64(input)?;
    if len > MAX_EXPORT_STRING {
        return Err(ExportFormatError::StringTooLong(len));
    }
    // Bounded above, so the cast and the allocation are small.
    let len = len as usize;
    let mut buf = vec![0u8; len + (8 - len % 8) % 8];
    input.read_exact(&mut buf)?;
    if buf[len..].iter().any(|b| *b != 0) {
        return Err(ExportFormatError::BadPadding);
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| ExportFormatError::BadPath(String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

fn read_path(input: &mut impl Read, store_dir: &StoreDir) -> Result<StorePath, ExportFormatError> {
    let s = read_str(input)?;
    store_dir.parse(&s).map_err(|_| ExportFormatError::BadPath(s))
}

impl ExportTrailer {
    /// Writes the trailer (magic included).
    pub fn write(&self, out: &mut impl Write, store_dir: &StoreDir) -> std::io::Result<()> {
        write_u64(out, EXPORT_MAGIC)?;
        write_str(out, &store_dir.print(&self.path))?;
        write_u64(out, self.references.len() as u64)?;
        for r in &self.references {
            write_str(out, &store_dir.print(r))?;
        }
        write_str(out, &self.deriver.as_ref().map(|d| store_dir.print(d)).unwrap_or_default())?;
        write_u64(out, 0)
    }

    /// Reads a trailer (magic included); a legacy signature is read and ignored, as Nix does.
    pub fn read(input: &mut impl Read, store_dir: &StoreDir) -> Result<Self, ExportFormatError> {
        let magic = read_u64(input)?;
        if magic != EXPORT_MAGIC {
            return Err(ExportFormatError::BadMagic(magic));
        }
        let path = read_path(input, store_dir)?;
        let count = read_u64(input)?;
        if count > MAX_EXPORT_REFERENCES {
            return Err(ExportFormatError::TooManyReferences(count));
        }
        let mut references = BTreeSet::new();
        for _ in 0..count {
            references.insert(read_path(input, store_dir)?);
        }
        let deriver = match read_str(input)? {
            s if s.is_empty() => None,
            s => Some(store_dir.parse(&s).map_err(|_| ExportFormatError::BadPath(s))?),
        };
        if read_u64(input)? != 0 {
            read_str(input)?;
        }
        Ok(Self { path, references, deriver })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sd() -> StoreDir {
        StoreDir::new("/nix/store")
    }

    fn path(i: u8) -> StorePath {
        StorePath::from_base_name(&format!("{}-p{i}", "a".repeat(31) + &((i % 10).to_string()))).unwrap()
    }

    proptest! {
        #[test]
        fn trailers_round_trip(refs in proptest::collection::btree_set(0u8..20, 0..5), deriver in proptest::option::of(0u8..20)) {
            let t = ExportTrailer { path: path(99), references: refs.into_iter().map(path).collect(), deriver: deriver.map(path) };
            let mut buf = Vec::new();
            t.write(&mut buf, &sd()).unwrap();
            prop_assert_eq!(buf.len() % 8, 0);
            prop_assert_eq!(ExportTrailer::read(&mut &buf[..], &sd()).unwrap(), t);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = ExportTrailer::read(&mut &bytes[..], &sd());
        }
    }

    #[test]
    fn limits_and_signatures() {
        let mut buf = Vec::new();
        write_u64(&mut buf, EXPORT_MAGIC).unwrap();
        write_u64(&mut buf, u64::MAX).unwrap();
        assert!(matches!(ExportTrailer::read(&mut &buf[..], &sd()), Err(ExportFormatError::StringTooLong(_))));
        assert!(matches!(ExportTrailer::read(&mut &[0u8; 8][..], &sd()), Err(ExportFormatError::BadMagic(0))));
        // A legacy signature is skipped.
        let t = ExportTrailer { path: path(1), references: BTreeSet::new(), deriver: None };
        let mut buf = Vec::new();
        t.write(&mut buf, &sd()).unwrap();
        buf.truncate(buf.len() - 8);
        write_u64(&mut buf, 1).unwrap();
        write_str(&mut buf, "sig").unwrap();
        assert_eq!(ExportTrailer::read(&mut &buf[..], &sd()).unwrap(), t);
    }
}
