//! How `ValidPaths` columns are written and read, exactly as Nix does.
//!
//! - `hash`: `sha256:<base16>` (any prefixed form is accepted when reading);
//! - `registrationTime`: seconds since the epoch, never null;
//! - `deriver`: the full store path, or null;
//! - `narSize`: bytes, null when unknown (0);
//! - `ultimate`: 1, or null for false;
//! - `sigs`: space-separated, null when there are none;
//! - `ca`: the content-address text, or null.

use std::collections::BTreeSet;

use nix_formats::content_address::ContentAddress;
use nix_formats::hash::{Encoding, Hash};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::{StoreDir, StorePath};

use super::error::DbError;

/// The text Nix stores for a hash: `algo:<base16>`.
pub(crate) fn hash_text(hash: &Hash) -> String {
    hash.encode(Encoding::Base16, true)
}

/// Parses a stored hash (any prefixed form, as Nix's `parseAnyPrefixed`).
pub(crate) fn parse_hash(path: &str, text: &str) -> Result<Hash, DbError> {
    Hash::parse_prefixed(text).map_err(|e| corrupt(path, e.to_string()))
}

/// Space-separated signatures, or `None` for none (stored as null).
pub(crate) fn sigs_text(sigs: &BTreeSet<String>) -> Option<String> {
    (!sigs.is_empty()).then(|| sigs.iter().map(String::as_str).collect::<Vec<_>>().join(" "))
}

/// Splits stored signatures on spaces, skipping empty tokens (Nix's `tokenizeString`).
pub(crate) fn parse_sigs(text: Option<&str>) -> BTreeSet<String> {
    text.map(|t| t.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A non-negative count as SQLite's signed integer.
pub(crate) fn to_i64(value: u64, path: &StorePath, field: &'static str) -> Result<i64, DbError> {
    i64::try_from(value).map_err(|_| DbError::ValueOutOfRange { path: path.to_string(), field })
}

/// Parses a full store path read from the database.
pub(crate) fn parse_path(store_dir: &StoreDir, text: &str) -> Result<StorePath, DbError> {
    store_dir.parse(text).map_err(|e| corrupt(text, e.to_string()))
}

/// An error for a row that cannot be decoded.
pub(crate) fn corrupt(path: &str, reason: String) -> DbError {
    DbError::CorruptRow { path: path.chars().take(300).collect(), reason }
}

/// The columns of one `ValidPaths` row, as read by the path-info query.
pub(crate) struct PathRow {
    /// The row id.
    pub id: i64,
    /// `hash`.
    pub hash: String,
    /// `registrationTime`.
    pub registration_time: i64,
    /// `deriver`.
    pub deriver: Option<String>,
    /// `narSize`.
    pub nar_size: Option<i64>,
    /// `ultimate`.
    pub ultimate: Option<i64>,
    /// `sigs`.
    pub sigs: Option<String>,
    /// `ca`.
    pub ca: Option<String>,
}

/// The select list that [`PathRow::from_row`] reads, in order.
macro_rules! path_row_columns {
    () => {
        "id, hash, registrationTime, deriver, narSize, ultimate, sigs, ca"
    };
}
pub(crate) use path_row_columns;

impl PathRow {
    /// Reads the columns of `path_row_columns!()`.
    pub fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            hash: row.get(1)?,
            registration_time: row.get(2)?,
            deriver: row.get(3)?,
            nar_size: row.get(4)?,
            ultimate: row.get(5)?,
            sigs: row.get(6)?,
            ca: row.get(7)?,
        })
    }

    /// Decodes the row into a path info without references. Negative numbers, which Nix never
    /// writes, read as 0.
    pub fn into_info(self, store_dir: &StoreDir, path: StorePath) -> Result<ValidPathInfo, DbError> {
        let printed = store_dir.print(&path);
        let mut info = ValidPathInfo::new(path, parse_hash(&printed, &self.hash)?);
        info.registration_time = u64::try_from(self.registration_time).unwrap_or(0);
        info.deriver = match self.deriver.as_deref() {
            // Nix reads an empty deriver column as no deriver too (it never writes one).
            None | Some("") => None,
            Some(d) => Some(store_dir.parse(d).map_err(|e| corrupt(&printed, format!("deriver: {e}")))?),
        };
        info.nar_size = self.nar_size.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        info.ultimate = self.ultimate == Some(1);
        info.sigs = parse_sigs(self.sigs.as_deref());
        info.ca = ContentAddress::parse_opt(self.ca.as_deref().unwrap_or(""))
            .map_err(|e| corrupt(&printed, format!("content address: {e}")))?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix_formats::hash::Algorithm;
    use proptest::prelude::*;

    #[test]
    fn hash_is_prefixed_base16() {
        let h = Hash::of(Algorithm::Sha256, b"x");
        assert_eq!(hash_text(&h), format!("sha256:{}", h.to_base16()));
        assert_eq!(parse_hash("p", &hash_text(&h)).unwrap(), h);
        // Nix reads other prefixed forms too.
        assert_eq!(parse_hash("p", &h.to_string()).unwrap(), h);
        assert!(matches!(parse_hash("p", "bogus"), Err(DbError::CorruptRow { .. })));
    }

    #[test]
    fn empty_sigs_are_null() {
        assert_eq!(sigs_text(&BTreeSet::new()), None);
        assert_eq!(parse_sigs(None), BTreeSet::new());
        assert_eq!(parse_sigs(Some("a  b ")), ["a".to_owned(), "b".to_owned()].into());
    }

    proptest! {
        #[test]
        fn sigs_round_trip(sigs in proptest::collection::btree_set("[a-z0-9.-]{1,10}:[A-Za-z0-9+/=]{1,20}", 0..5)) {
            prop_assert_eq!(parse_sigs(sigs_text(&sigs).as_deref()), sigs);
        }
    }
}
