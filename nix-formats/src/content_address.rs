//! Content addresses: how a store object's path follows from its contents.
//!
//! Text forms: `text:sha256:<nix32>`, `fixed:<algo>:<nix32>` (flat file), `fixed:r:<algo>:<nix32>`
//! (NAR). The method alone is written `text:sha256`, `sha256` or `r:sha256` in derivations and
//! path-info JSON.

use std::fmt;

use crate::hash::{Algorithm, Hash, HashError};
use crate::store_path::{StoreDir, StorePath, StorePathError};

/// How the contents are hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Text with references, hashed as a flat file (only SHA-256): `builtins.toFile`, `.drv` files.
    Text,
    /// A single regular file, hashed as its bytes.
    Flat,
    /// Any file system object, hashed as its NAR serialisation ("recursive").
    Nar,
    /// Any file system object, hashed as a Git blob or tree (experimental feature
    /// `git-hashing`; see [`crate::git`]).
    Git,
}

impl Method {
    /// The prefix used before the algorithm in method strings: `text:`, `` or `r:`.
    pub fn prefix(self) -> &'static str {
        match self {
            Method::Text => "text:",
            Method::Flat => "",
            Method::Nar => "r:",
            Method::Git => "git:",
        }
    }

    /// The name Nix uses in JSON (`text`, `flat`, `nar`).
    pub fn name(self) -> &'static str {
        match self {
            Method::Text => "text",
            Method::Flat => "flat",
            Method::Nar => "nar",
            Method::Git => "git",
        }
    }

    /// Parses a JSON method name.
    pub fn from_name(s: &str) -> Result<Self, ContentAddressError> {
        match s {
            "text" => Ok(Method::Text),
            "flat" => Ok(Method::Flat),
            "nar" => Ok(Method::Nar),
            "git" => Ok(Method::Git),
            _ => Err(ContentAddressError::BadMethod(s.chars().take(100).collect())),
        }
    }
}

/// A method together with the hash algorithm, as in `r:sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodAlgo {
    /// The method.
    pub method: Method,
    /// The algorithm.
    pub algo: Algorithm,
}

impl fmt::Display for MethodAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.method.prefix(), self.algo)
    }
}

impl MethodAlgo {
    /// Parses `text:sha256`, `r:sha256` or `sha256`.
    pub fn parse(s: &str) -> Result<Self, ContentAddressError> {
        let (method, algo) = if let Some(rest) = s.strip_prefix("text:") {
            (Method::Text, rest)
        } else if let Some(rest) = s.strip_prefix("r:") {
            (Method::Nar, rest)
        } else if let Some(rest) = s.strip_prefix("git:") {
            (Method::Git, rest)
        } else {
            (Method::Flat, s)
        };
        let algo: Algorithm = algo.parse()?;
        if method == Method::Text && algo != Algorithm::Sha256 {
            return Err(ContentAddressError::TextNotSha256);
        }
        Ok(Self { method, algo })
    }
}

/// Errors about content addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentAddressError {
    /// The text does not start with `text:` or `fixed:`.
    #[error("content address '{0}' has an unknown prefix (expected 'text:' or 'fixed:')")]
    BadPrefix(String),
    /// A method name that is not `text`, `flat` or `nar`.
    #[error("unknown content addressing method '{0}'")]
    BadMethod(String),
    /// The hash part is malformed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// Text addressing with another algorithm than SHA-256.
    #[error("text content addresses must use sha256")]
    TextNotSha256,
}

/// A content address: method and hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentAddress {
    /// The method.
    pub method: Method,
    /// The hash of the contents (of its NAR for [`Method::Nar`]).
    pub hash: Hash,
}

impl fmt::Display for ContentAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.method {
            Method::Text => write!(f, "text:{}", self.hash),
            Method::Flat => write!(f, "fixed:{}", self.hash),
            Method::Nar => write!(f, "fixed:r:{}", self.hash),
            Method::Git => write!(f, "fixed:git:{}", self.hash),
        }
    }
}

impl ContentAddress {
    /// Parses `text:sha256:…`, `fixed:algo:…` or `fixed:r:algo:…`. The hash may be in any bare
    /// encoding (nix32, base16 or base64).
    pub fn parse(s: &str) -> Result<Self, ContentAddressError> {
        let short = || s.chars().take(200).collect::<String>();
        let (method, rest) = if let Some(rest) = s.strip_prefix("text:") {
            (Method::Text, rest)
        } else if let Some(rest) = s.strip_prefix("fixed:") {
            if let Some(r) = rest.strip_prefix("r:") {
                (Method::Nar, r)
            } else if let Some(g) = rest.strip_prefix("git:") {
                (Method::Git, g)
            } else {
                (Method::Flat, rest)
            }
        } else {
            return Err(ContentAddressError::BadPrefix(short()));
        };
        let (algo, digest) = rest.split_once(':').ok_or_else(|| ContentAddressError::BadPrefix(short()))?;
        let algo: Algorithm = algo.parse()?;
        if method == Method::Text && algo != Algorithm::Sha256 {
            return Err(ContentAddressError::TextNotSha256);
        }
        Ok(Self { method, hash: Hash::parse_bare(digest, algo)? })
    }

    /// Parses an optional content address, where `""` means none (as on the wire).
    pub fn parse_opt(s: &str) -> Result<Option<Self>, ContentAddressError> {
        if s.is_empty() {
            Ok(None)
        } else {
            Self::parse(s).map(Some)
        }
    }

    /// The method and algorithm.
    pub fn method_algo(&self) -> MethodAlgo {
        MethodAlgo { method: self.method, algo: self.hash.algorithm() }
    }

    /// The store path of an object with this address, name and references.
    pub fn store_path<'a>(
        &self,
        store_dir: &StoreDir,
        name: &str,
        references: impl IntoIterator<Item = &'a StorePath>,
        self_ref: bool,
    ) -> Result<StorePath, StorePathError> {
        match self.method {
            Method::Text => {
                if self_ref {
                    return Err(StorePathError::Unsupported(format!(
                        "text-hashed path '{name}' cannot refer to itself"
                    )));
                }
                store_dir.make_text_path(name, &self.hash, references)
            }
            Method::Flat => store_dir.make_fixed_output_path(name, false, &self.hash, references, self_ref),
            Method::Nar => store_dir.make_fixed_output_path(name, true, &self.hash, references, self_ref),
            Method::Git => {
                if self.hash.algorithm() != Algorithm::Sha1 {
                    return Err(StorePathError::Unsupported("Git file ingestion must use SHA-1 hash".to_owned()));
                }
                if references.into_iter().next().is_some() || self_ref {
                    return Err(StorePathError::Unsupported(format!(
                        "fixed output derivation '{name}' is not allowed to refer to other store paths"
                    )));
                }
                let inner = format!("fixed:out:git:{}:{}:", self.hash.algorithm(), self.hash.to_base16());
                store_dir.make_store_path("output:out", &Hash::of(Algorithm::Sha256, inner.as_bytes()), name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_addresses_round_trip() {
        for s in [
            "text:sha256:1vb2xd67750jrvqgykxrf5ipl3h1q57sxc57q5nzjw56bqp3sxzr",
            "fixed:sha1:1amk6n7wxjlw4qkq6dcj6mm7hw3acrw0",
            "fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh",
            "fixed:git:sha1:1amk6n7wxjlw4qkq6dcj6mm7hw3acrw0",
        ] {
            assert_eq!(ContentAddress::parse(s).unwrap().to_string(), s);
        }
        let git = ContentAddress::parse("fixed:git:sha1:1amk6n7wxjlw4qkq6dcj6mm7hw3acrw0").unwrap();
        assert_eq!((git.method, git.method_algo().to_string()), (Method::Git, "git:sha1".to_owned()));
        assert_eq!(MethodAlgo::parse("git:sha1").unwrap(), git.method_algo());
        assert_eq!(Method::from_name("git").unwrap(), Method::Git);
        // Git addresses give `fixed:out:git:<algo>:<base16>:` paths and allow no references.
        let dir = StoreDir::new("/nix/store");
        let inner = format!("fixed:out:git:sha1:{}:", git.hash.to_base16());
        let expected = dir.make_store_path("output:out", &Hash::of(Algorithm::Sha256, inner.as_bytes()), "x").unwrap();
        assert_eq!(git.store_path(&dir, "x", [], false).unwrap(), expected);
        assert!(git.store_path(&dir, "x", [], true).is_err());
        let t = ContentAddress::parse("text:sha256:1vb2xd67750jrvqgykxrf5ipl3h1q57sxc57q5nzjw56bqp3sxzr").unwrap();
        assert_eq!(t.hash, Hash::of(Algorithm::Sha256, b"Derive(...)"));
        let f = ContentAddress::parse("fixed:sha1:1amk6n7wxjlw4qkq6dcj6mm7hw3acrw0").unwrap();
        assert_eq!(f.hash, Hash::of(Algorithm::Sha1, b"blob blob..."));
        let n = ContentAddress::parse("fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh").unwrap();
        assert_eq!(n.hash, Hash::of(Algorithm::Sha256, b"(...)"));
    }

    #[test]
    fn rejects() {
        assert!(ContentAddress::parse("blob:sha256:x").is_err());
        assert!(ContentAddress::parse("text:sha1:1amk6n7wxjlw4qkq6dcj6mm7hw3acrw0").is_err());
        assert!(ContentAddress::parse("fixed:r:sha256").is_err());
        assert_eq!(ContentAddress::parse_opt("").unwrap(), None);
    }

    proptest::proptest! {
        #[test]
        fn any_address_round_trips(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), m in 0usize..3, a in 0usize..4) {
            let method = [Method::Text, Method::Flat, Method::Nar][m];
            let algo = if method == Method::Text { Algorithm::Sha256 } else { Algorithm::ALL[a] };
            let ca = ContentAddress { method, hash: Hash::of(algo, &data) };
            let text = ca.to_string();
            proptest::prop_assert_eq!(ContentAddress::parse(&text).unwrap(), ca.clone());
            proptest::prop_assert_eq!(MethodAlgo::parse(&ca.method_algo().to_string()).unwrap(), ca.method_algo());
        }
    }

    #[test]
    fn method_strings() {
        for s in ["text:sha256", "r:sha256", "sha1", "r:sha512"] {
            assert_eq!(MethodAlgo::parse(s).unwrap().to_string(), s);
        }
    }
}
