//! Store paths: `<store dir>/<32 nix32 chars>-<name>`, their validation, and how Nix computes them.
//!
//! The 32-character hash part is the nix32 text of 20 bytes: a SHA-256 compressed to 160 bits (see
//! [`crate::hash::compress`]) of a fingerprint string `type:sha256:<hex>:<store dir>:<name>`.

use std::fmt;

use crate::hash::{compress, Algorithm, Hash};
use crate::nixbase32;

/// Bytes in a store path's digest.
pub const DIGEST_SIZE: usize = 20;
/// Characters in a store path's hash part.
pub const HASH_PART_LEN: usize = 32;
/// The longest name Nix allows.
pub const MAX_NAME_LEN: usize = 211;
/// The default store directory.
pub const DEFAULT_STORE_DIR: &str = "/nix/store";

/// Errors about store paths.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorePathError {
    /// The path is not directly inside the store directory.
    #[error("path '{0}' is not in the Nix store")]
    NotInStore(String),
    /// The base name is too short or has no dash after the hash part.
    #[error("path '{0}' is not a valid store path")]
    Malformed(String),
    /// The hash part is not nix32.
    #[error("store path '{0}' has an invalid hash part")]
    BadHashPart(String),
    /// The name is empty.
    #[error("path '{0}' is not a valid store path: name must not be empty")]
    EmptyName(String),
    /// The name is longer than [`MAX_NAME_LEN`].
    #[error("path '{0}' is not a valid store path: name is longer than {MAX_NAME_LEN} characters")]
    NameTooLong(String),
    /// The name contains a character outside `[A-Za-z0-9+-._?=]` (Nix's words).
    #[error("path '{path}' is not a valid store path: name '{name}' contains illegal character '{ch}'")]
    IllegalCharacter {
        /// The path (base name) checked.
        path: String,
        /// The name.
        name: String,
        /// The offending character.
        ch: char,
    },
    /// The name's first dash-separated component is `.` or `..`.
    #[error("path '{path}' is not a valid store path: name '{name}' is not valid: first dash-separated component must not be '{component}'")]
    DotComponent {
        /// The path (or name) checked.
        path: String,
        /// The name.
        name: String,
        /// `.` or `..`.
        component: &'static str,
    },
    /// A content address cannot be used with references of that kind.
    #[error("{0}")]
    Unsupported(String),
}

fn short(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Checks a store path name against Nix 2.26's rules. `path` is only used in error messages.
pub fn check_name(path: &str, name: &str) -> Result<(), StorePathError> {
    if name.is_empty() {
        return Err(StorePathError::EmptyName(short(path)));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(StorePathError::NameTooLong(short(path)));
    }
    let dot = |component| StorePathError::DotComponent {
        path: short(path),
        name: short(name),
        component,
    };
    let b = name.as_bytes();
    if b[0] == b'.' {
        if b.len() == 1 || b[1] == b'-' {
            return Err(dot("."));
        }
        if b[1] == b'.' && (b.len() == 2 || b[2] == b'-') {
            return Err(dot(".."));
        }
    }
    for c in name.chars() {
        if !(c.is_ascii_alphanumeric() || "+-._?=".contains(c)) {
            return Err(StorePathError::IllegalCharacter { path: short(path), name: short(name), ch: c });
        }
    }
    Ok(())
}

/// A store path without its store directory: digest and name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorePath {
    // Ordering by (hash part, name) equals ordering by the base name's text, as Nix sorts paths.
    hash_part: [u8; HASH_PART_LEN],
    name: String,
}

impl fmt::Debug for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorePath({})", self)
    }
}

impl fmt::Display for StorePath {
    /// The base name, `<hash>-<name>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.hash_part(), self.name)
    }
}

impl StorePath {
    /// Builds a store path from its digest and name, checking the name.
    pub fn from_digest(digest: &[u8; DIGEST_SIZE], name: &str) -> Result<Self, StorePathError> {
        let text = nixbase32::encode(digest);
        check_name(&format!("{text}-{name}"), name)?;
        let mut hash_part = [0u8; HASH_PART_LEN];
        hash_part.copy_from_slice(text.as_bytes());
        Ok(Self { hash_part, name: name.to_owned() })
    }

    /// Parses a base name `<hash>-<name>`.
    pub fn from_base_name(base: &str) -> Result<Self, StorePathError> {
        let b = base.as_bytes();
        if b.len() < HASH_PART_LEN + 1 || b[HASH_PART_LEN] != b'-' || !base.is_char_boundary(HASH_PART_LEN) {
            return Err(StorePathError::Malformed(short(base)));
        }
        let (hash, name) = (&base[..HASH_PART_LEN], &base[HASH_PART_LEN + 1..]);
        if nixbase32::decode(hash.as_bytes()).is_err() {
            return Err(StorePathError::BadHashPart(short(base)));
        }
        check_name(base, name)?;
        let mut hash_part = [0u8; HASH_PART_LEN];
        hash_part.copy_from_slice(hash.as_bytes());
        Ok(Self { hash_part, name: name.to_owned() })
    }

    /// The 32-character hash part.
    pub fn hash_part(&self) -> &str {
        // Only nix32 characters are ever stored, so this cannot fail.
        std::str::from_utf8(&self.hash_part).unwrap_or_default()
    }

    /// The 20-byte digest that the hash part encodes.
    pub fn digest(&self) -> [u8; DIGEST_SIZE] {
        let mut d = [0u8; DIGEST_SIZE];
        if let Ok(v) = nixbase32::decode(&self.hash_part) {
            d.copy_from_slice(&v);
        }
        d
    }

    /// The name after the dash.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the name ends in `.drv`.
    pub fn is_derivation(&self) -> bool {
        self.name.ends_with(".drv")
    }
}

/// A store directory such as `/nix/store`, which prints and parses full store paths.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreDir(String);

impl Default for StoreDir {
    fn default() -> Self {
        Self(DEFAULT_STORE_DIR.to_owned())
    }
}

impl StoreDir {
    /// A store directory at `dir` (trailing slashes removed).
    pub fn new(dir: &str) -> Self {
        let trimmed = dir.trim_end_matches('/');
        Self(if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() })
    }

    /// From `NIX_STORE_DIR`, else `/nix/store`.
    pub fn from_env() -> Self {
        match std::env::var("NIX_STORE_DIR") {
            Ok(d) if !d.is_empty() => Self::new(&d),
            _ => Self::default(),
        }
    }

    /// The directory as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full path of `path` in this store.
    pub fn print(&self, path: &StorePath) -> String {
        format!("{}/{}", self.0, path)
    }

    /// Parses a full store path directly inside this store (no trailing components).
    pub fn parse(&self, full: &str) -> Result<StorePath, StorePathError> {
        let base = full
            .strip_prefix(self.0.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| StorePathError::NotInStore(short(full)))?;
        if base.contains('/') {
            return Err(StorePathError::NotInStore(short(full)));
        }
        StorePath::from_base_name(base)
    }

    /// Splits `path` into the store path it lies in and the rest (`""` or `/sub/path`).
    pub fn parse_prefix<'a>(&self, path: &'a str) -> Result<(StorePath, &'a str), StorePathError> {
        let rest = path
            .strip_prefix(self.0.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| StorePathError::NotInStore(short(path)))?;
        let end = rest.find('/').unwrap_or(rest.len());
        Ok((StorePath::from_base_name(&rest[..end])?, &path[path.len() - (rest.len() - end)..]))
    }

    /// Nix's `makeStorePath`: the path for a fingerprint of `type`, an inner hash and a name.
    pub fn make_store_path(&self, path_type: &str, inner: &Hash, name: &str) -> Result<StorePath, StorePathError> {
        let fingerprint =
            format!("{}:{}:{}:{}:{}", path_type, inner.algorithm(), inner.to_base16(), self.0, name);
        let h = Hash::of(Algorithm::Sha256, fingerprint.as_bytes());
        let c = compress(h.digest(), DIGEST_SIZE);
        let mut digest = [0u8; DIGEST_SIZE];
        digest.copy_from_slice(&c);
        StorePath::from_digest(&digest, name).map_err(|e| rename_error(e, name))
    }

    /// Nix's `makeType`: `kind` followed by `:<full path>` for each reference and `:self` if the
    /// object refers to itself.
    pub fn make_type<'a>(&self, kind: &str, references: impl IntoIterator<Item = &'a StorePath>, self_ref: bool) -> String {
        let mut t = kind.to_owned();
        for r in references {
            t.push(':');
            t.push_str(&self.print(r));
        }
        if self_ref {
            t.push_str(":self");
        }
        t
    }

    /// The path of a derivation output: `output:<id>`, named `name` or `name-<id>`.
    pub fn make_output_path(&self, output: &str, drv_hash: &Hash, drv_name: &str) -> Result<StorePath, StorePathError> {
        self.make_store_path(&format!("output:{output}"), drv_hash, &output_path_name(drv_name, output))
    }

    /// The path of text added with references (`builtins.toFile`, `.drv` files). `hash` must be
    /// SHA-256 of the contents.
    pub fn make_text_path<'a>(
        &self,
        name: &str,
        hash: &Hash,
        references: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<StorePath, StorePathError> {
        if hash.algorithm() != Algorithm::Sha256 {
            return Err(StorePathError::Unsupported(format!(
                "text-hashed path '{name}' must use sha256, not {}",
                hash.algorithm()
            )));
        }
        self.make_store_path(&self.make_type("text", references, false), hash, name)
    }

    /// The path of a fixed-output (content-addressed) object. `recursive` means NAR hashing.
    /// Only recursive SHA-256 objects may have references.
    pub fn make_fixed_output_path<'a>(
        &self,
        name: &str,
        recursive: bool,
        hash: &Hash,
        references: impl IntoIterator<Item = &'a StorePath>,
        self_ref: bool,
    ) -> Result<StorePath, StorePathError> {
        if recursive && hash.algorithm() == Algorithm::Sha256 {
            return self.make_store_path(&self.make_type("source", references, self_ref), hash, name);
        }
        if references.into_iter().next().is_some() || self_ref {
            return Err(StorePathError::Unsupported(format!(
                "fixed-output path '{name}' with references must be recursive sha256"
            )));
        }
        let inner = format!("fixed:out:{}{}:{}:", if recursive { "r:" } else { "" }, hash.algorithm(), hash.to_base16());
        self.make_store_path("output:out", &Hash::of(Algorithm::Sha256, inner.as_bytes()), name)
    }
}

/// The name of a derivation's output path: the derivation's name, plus `-<output>` unless the
/// output is `out`.
pub fn output_path_name(drv_name: &str, output: &str) -> String {
    if output == "out" {
        drv_name.to_owned()
    } else {
        format!("{drv_name}-{output}")
    }
}

fn rename_error(e: StorePathError, name: &str) -> StorePathError {
    match e {
        StorePathError::EmptyName(_) => StorePathError::EmptyName(short(name)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P_FOO: &str = "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo";

    #[test]
    fn parse_and_print() {
        let sd = StoreDir::default();
        let p = sd.parse(P_FOO).unwrap();
        assert_eq!(p.name(), "foo");
        assert_eq!(p.hash_part(), "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q");
        assert_eq!(sd.print(&p), P_FOO);
        let full = format!("{P_FOO}/bin/sh");
        let (q, rest) = sd.parse_prefix(&full).unwrap();
        assert_eq!(q, p);
        assert_eq!(rest, "/bin/sh");
    }

    #[test]
    fn rejects() {
        let sd = StoreDir::default();
        let hp = "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q";
        assert!(matches!(sd.parse("/tmp/foo"), Err(StorePathError::NotInStore(_))));
        assert!(matches!(sd.parse("/nix/store/abc-foo"), Err(StorePathError::Malformed(_))));
        assert!(matches!(sd.parse(&format!("/nix/store/{hp}-")), Err(StorePathError::EmptyName(_))));
        assert!(matches!(sd.parse(&format!("/nix/store/{hp}-a b")), Err(StorePathError::IllegalCharacter { .. })));
        assert!(matches!(sd.parse(&format!("/nix/store/{hp}-.")), Err(StorePathError::DotComponent { .. })));
        assert!(matches!(sd.parse(&format!("/nix/store/{hp}-..-x")), Err(StorePathError::DotComponent { .. })));
        assert!(sd.parse(&format!("/nix/store/{hp}-.foo")).is_ok());
        assert!(matches!(
            sd.parse("/nix/store/e1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo"),
            Err(StorePathError::BadHashPart(_))
        ));
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(sd.parse(&format!("/nix/store/{hp}-{long}")), Err(StorePathError::NameTooLong(_))));
        assert!(sd.parse(&format!("/nix/store/{hp}-{}", "x".repeat(MAX_NAME_LEN))).is_ok());
    }

    #[test]
    fn content_addressed_golden_path() {
        // P.ca from the golden data: NAR-hashed `foo` referring to P.bar and itself.
        let sd = StoreDir::default();
        let bar = sd.parse("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar").unwrap();
        let h = Hash::parse_any("sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh", None).unwrap();
        let p = sd.make_fixed_output_path("foo", true, &h, [&bar], true).unwrap();
        assert_eq!(sd.print(&p), "/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo");
    }

    #[test]
    fn fixed_output_golden_paths() {
        // From the golden derivation output JSON files (drv-name, output-name).
        let sd = StoreDir::default();
        let x = Hash::parse_any("sha256:894517c9163c896ec31a2adbd33c0681fd5f45b2c0ef08a64c92a03fb97f390f", None).unwrap();
        let name = output_path_name("drv-name", "output-name");
        let flat = sd.make_fixed_output_path(&name, false, &x, [], false).unwrap();
        assert_eq!(flat.hash_part(), "rhcg9h16sqvlbpsa6dqm57sbr2al6nzg");
        let text = sd.make_text_path(&name, &x, []).unwrap();
        assert_eq!(text.hash_part(), "6s1zwabh956jvhv4w9xcdb5jiyanyxg1");
    }

    proptest! {
        #[test]
        fn base_name_round_trip(digest in proptest::array::uniform20(any::<u8>()), name in "[a-zA-Z0-9+_?=][a-zA-Z0-9+._?=-]{0,40}") {
            let p = StorePath::from_digest(&digest, &name).unwrap();
            let q = StorePath::from_base_name(&p.to_string()).unwrap();
            prop_assert_eq!(q.digest(), digest);
            prop_assert_eq!(q, p);
        }
    }
}
