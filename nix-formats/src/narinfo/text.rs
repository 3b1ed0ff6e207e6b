//! The `.narinfo` text format.
//!
//! Every line is `Key: value` followed by a line feed. Fields, in the order Nix writes them:
//!
//! | key | value | when written |
//! |---|---|---|
//! | `StorePath` | full store path | always; required |
//! | `URL` | NAR file location | always; required, non-empty |
//! | `Compression` | compression name | always; absent or empty means `bzip2` |
//! | `FileHash` | `algo:nix32` | when known |
//! | `FileSize` | decimal | when known |
//! | `NarHash` | `algo:nix32` | always; required |
//! | `NarSize` | decimal | always; required, non-zero |
//! | `References` | base names separated by spaces (may be empty) | always |
//! | `Deriver` | base name (`unknown-deriver` means none) | when known |
//! | `System` | system type (old Nix versions only) | when known |
//! | `Sig` | signature; the line repeats, sorted | per signature |
//! | `CA` | content address | when set |
//!
//! As in Nix, unknown keys are ignored and hashes may use any prefixed form (`algo:` with
//! base16, nix32 or base64, or SRI). Stricter than Nix: the separator must be `": "`, the last line
//! must end in a line feed, a field other than `Sig` may appear only once, numbers are plain
//! decimal, and size limits apply ([`MAX_NARINFO_LEN`], [`MAX_LINES`], [`MAX_LINE_LEN`]).
//! Printing a parsed file that Nix wrote gives back the same bytes.

use std::collections::BTreeSet;
use std::io::Read;

use super::{NarInfo, DEFAULT_COMPRESSION};
use crate::content_address::{ContentAddress, ContentAddressError};
use crate::hash::{Hash, HashError};
use crate::path_info::ValidPathInfo;
use crate::store_path::{StoreDir, StorePath, StorePathError};

/// The largest narinfo accepted, in bytes.
pub const MAX_NARINFO_LEN: usize = 1 << 20;
/// The most lines a narinfo may have.
pub const MAX_LINES: usize = 4096;
/// The longest line accepted, in bytes, line feed included.
pub const MAX_LINE_LEN: usize = 512 << 10;

/// Errors from reading or writing narinfo text. Line numbers start at 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NarInfoError {
    /// The input is larger than [`MAX_NARINFO_LEN`].
    #[error("narinfo is larger than {MAX_NARINFO_LEN} bytes")]
    TooLarge,
    /// The input is not UTF-8.
    #[error("narinfo is not valid UTF-8")]
    NotUtf8,
    /// Reading the input failed.
    #[error("cannot read narinfo: {0}")]
    Io(String),
    /// The input has more than [`MAX_LINES`] lines.
    #[error("narinfo has more than {MAX_LINES} lines")]
    TooManyLines,
    /// A line is longer than [`MAX_LINE_LEN`].
    #[error("narinfo line {0} is longer than {MAX_LINE_LEN} bytes")]
    LineTooLong(usize),
    /// The last line does not end in a line feed.
    #[error("narinfo line {0} does not end in a line feed")]
    MissingNewline(usize),
    /// A line has no `": "` after its key.
    #[error("narinfo line {0} is not of the form 'Key: value'")]
    MissingSeparator(usize),
    /// A single-valued field appears twice.
    #[error("narinfo line {line}: field '{field}' appears more than once")]
    DuplicateField {
        /// The line of the second occurrence.
        line: usize,
        /// The field.
        field: &'static str,
    },
    /// A store path (full or base name) is malformed.
    #[error("narinfo line {line}: bad store path in '{field}': {source}")]
    BadStorePath {
        /// The line.
        line: usize,
        /// The field.
        field: &'static str,
        /// The problem.
        source: StorePathError,
    },
    /// A hash is malformed.
    #[error("narinfo line {line}: bad hash in '{field}': {source}")]
    BadHash {
        /// The line.
        line: usize,
        /// The field.
        field: &'static str,
        /// The problem.
        source: HashError,
    },
    /// A number is not plain decimal or does not fit 64 bits.
    #[error("narinfo line {line}: invalid {field}")]
    BadNumber {
        /// The line.
        line: usize,
        /// The field.
        field: &'static str,
    },
    /// The content address is malformed.
    #[error("narinfo line {line}: bad content address: {source}")]
    BadContentAddress {
        /// The line.
        line: usize,
        /// The problem.
        source: ContentAddressError,
    },
    /// A required field is missing (`StorePath`, `NarHash`, or a non-empty `URL`).
    #[error("narinfo is corrupt: {0} missing")]
    MissingField(&'static str),
    /// `NarSize` is missing or zero.
    #[error("narinfo is corrupt: NarSize missing or zero")]
    ZeroNarSize,
    /// A value to be printed contains a line break, which would corrupt the file.
    #[error("narinfo field '{0}' contains a line break")]
    LineBreakInValue(&'static str),
}

/// The fields that may appear once.
const SINGLE_FIELDS: [&str; 11] = [
    "StorePath",
    "URL",
    "Compression",
    "FileHash",
    "FileSize",
    "NarHash",
    "NarSize",
    "References",
    "Deriver",
    "System",
    "CA",
];

impl NarInfo {
    /// Parses narinfo text; full store paths must lie in `store_dir`.
    pub fn parse(store_dir: &StoreDir, text: &str) -> Result<Self, NarInfoError> {
        if text.len() > MAX_NARINFO_LEN {
            return Err(NarInfoError::TooLarge);
        }
        let mut fields = Fields::default();
        for (index, line) in text.split_inclusive('\n').enumerate() {
            let number = index + 1;
            if number > MAX_LINES {
                return Err(NarInfoError::TooManyLines);
            }
            if line.len() > MAX_LINE_LEN {
                return Err(NarInfoError::LineTooLong(number));
            }
            let body = line.strip_suffix('\n').ok_or(NarInfoError::MissingNewline(number))?;
            let (key, value) = body.split_once(": ").ok_or(NarInfoError::MissingSeparator(number))?;
            fields.take(store_dir, number, key, value)?;
        }
        fields.finish()
    }

    /// Reads and parses narinfo text from `reader`, reading at most [`MAX_NARINFO_LEN`] + 1 bytes.
    pub fn read_from(store_dir: &StoreDir, reader: impl Read) -> Result<Self, NarInfoError> {
        let mut bytes = Vec::new();
        reader.take(MAX_NARINFO_LEN as u64 + 1).read_to_end(&mut bytes).map_err(|e| NarInfoError::Io(e.to_string()))?;
        if bytes.len() > MAX_NARINFO_LEN {
            return Err(NarInfoError::TooLarge);
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| NarInfoError::NotUtf8)?;
        Self::parse(store_dir, text)
    }

    /// The text form, in Nix's field order. Fails only if a value contains a line break.
    pub fn to_text(&self, store_dir: &StoreDir) -> Result<String, NarInfoError> {
        let info = &self.info;
        let mut out = String::new();
        let mut line = |key: &'static str, value: &str| -> Result<(), NarInfoError> {
            if value.contains(['\n', '\r']) {
                return Err(NarInfoError::LineBreakInValue(key));
            }
            out.push_str(key);
            out.push_str(": ");
            out.push_str(value);
            out.push('\n');
            Ok(())
        };
        line("StorePath", &store_dir.print(&info.path))?;
        line("URL", &self.url)?;
        if !self.compression.is_empty() {
            line("Compression", &self.compression)?;
        }
        if let Some(h) = &self.file_hash {
            line("FileHash", &h.to_string())?;
        }
        if let Some(n) = self.file_size {
            line("FileSize", &n.to_string())?;
        }
        line("NarHash", &info.nar_hash.to_string())?;
        line("NarSize", &info.nar_size.to_string())?;
        line("References", &info.short_refs().join(" "))?;
        if let Some(d) = &info.deriver {
            line("Deriver", &d.to_string())?;
        }
        if let Some(s) = &self.system {
            line("System", s)?;
        }
        for sig in &info.sigs {
            line("Sig", sig)?;
        }
        if let Some(ca) = &info.ca {
            line("CA", &ca.to_string())?;
        }
        Ok(out)
    }
}

/// The fields seen so far while parsing.
#[derive(Default)]
struct Fields {
    seen: BTreeSet<&'static str>,
    path: Option<StorePath>,
    url: String,
    compression: String,
    file_hash: Option<Hash>,
    file_size: Option<u64>,
    nar_hash: Option<Hash>,
    nar_size: u64,
    references: BTreeSet<StorePath>,
    deriver: Option<StorePath>,
    system: Option<String>,
    sigs: BTreeSet<String>,
    ca: Option<ContentAddress>,
}

impl Fields {
    fn take(&mut self, store_dir: &StoreDir, line: usize, key: &str, value: &str) -> Result<(), NarInfoError> {
        if let Some(field) = SINGLE_FIELDS.iter().copied().find(|f| *f == key) {
            if !self.seen.insert(field) {
                return Err(NarInfoError::DuplicateField { line, field });
            }
        }
        let base_name = |field: &'static str, v: &str| {
            StorePath::from_base_name(v).map_err(|source| NarInfoError::BadStorePath { line, field, source })
        };
        let hash = |field: &'static str| {
            Hash::parse_prefixed(value).map_err(|source| NarInfoError::BadHash { line, field, source })
        };
        match key {
            "StorePath" => {
                let p = store_dir.parse(value);
                self.path =
                    Some(p.map_err(|source| NarInfoError::BadStorePath { line, field: "StorePath", source })?);
            }
            "URL" => self.url = value.to_owned(),
            "Compression" => self.compression = value.to_owned(),
            "FileHash" => self.file_hash = Some(hash("FileHash")?),
            "FileSize" => {
                self.file_size = Some(parse_decimal(value).ok_or(NarInfoError::BadNumber { line, field: "FileSize" })?)
            }
            "NarHash" => self.nar_hash = Some(hash("NarHash")?),
            "NarSize" => {
                self.nar_size = parse_decimal(value).ok_or(NarInfoError::BadNumber { line, field: "NarSize" })?
            }
            "References" => {
                for r in value.split(' ').filter(|r| !r.is_empty()) {
                    self.references.insert(base_name("References", r)?);
                }
            }
            "Deriver" if value == "unknown-deriver" => {}
            "Deriver" => self.deriver = Some(base_name("Deriver", value)?),
            "System" => self.system = Some(value.to_owned()),
            "Sig" => {
                self.sigs.insert(value.to_owned());
            }
            "CA" => {
                self.ca = ContentAddress::parse_opt(value)
                    .map_err(|source| NarInfoError::BadContentAddress { line, source })?;
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<NarInfo, NarInfoError> {
        let path = self.path.ok_or(NarInfoError::MissingField("StorePath"))?;
        let nar_hash = self.nar_hash.ok_or(NarInfoError::MissingField("NarHash"))?;
        if self.url.is_empty() {
            return Err(NarInfoError::MissingField("URL"));
        }
        if self.nar_size == 0 {
            return Err(NarInfoError::ZeroNarSize);
        }
        let mut info = ValidPathInfo::new(path, nar_hash);
        info.nar_size = self.nar_size;
        info.references = self.references;
        info.deriver = self.deriver;
        info.sigs = self.sigs;
        info.ca = self.ca;
        let compression = if self.compression.is_empty() { DEFAULT_COMPRESSION.to_owned() } else { self.compression };
        Ok(NarInfo {
            info,
            url: self.url,
            compression,
            file_hash: self.file_hash,
            file_size: self.file_size,
            system: self.system,
        })
    }
}

/// A non-empty string of ASCII digits that fits in a `u64`.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
