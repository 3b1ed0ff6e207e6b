//! Bounds that a NAR reader enforces on hostile input.

use super::{MAX_NAME_LEN, MAX_TARGET_LEN};

/// Limits for [`Reader`](super::Reader) and everything built on it.
///
/// The defaults accept every archive that Nix can dump from a Linux file system and bound the
/// reader's memory to a few hundred kilobytes. Callers may tighten them. File contents are never
/// buffered, so their size is not limited here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest node accepted; the root node has depth 0 and an entry of the root directory depth 1.
    /// Default 1024. (Nix master rejects depth 64 and beyond; Nix 2.8 has no bound.)
    pub max_depth: usize,
    /// Longest entry name in bytes. Default and upper bound of the format: 255.
    pub max_name_len: usize,
    /// Longest symlink target in bytes. Default and upper bound of the format: 4095.
    pub max_target_len: usize,
    /// Longest path of a node inside the archive (names joined by `/`, the root being empty).
    /// Default 4096: Nix dumps and restores through full paths, which Linux limits to `PATH_MAX`.
    pub max_path_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_depth: 1024, max_name_len: MAX_NAME_LEN, max_target_len: MAX_TARGET_LEN, max_path_len: 4096 }
    }
}
