//! Things a client asks the store to realise: [`DerivedPath`] (an existing store object, or
//! outputs of a derivation), with Nix's two text forms.
//!
//! The current form separates a derivation from its outputs with `^` (`/nix/store/…-foo.drv^out,dev`),
//! the legacy form used by the worker protocol with `!`. `*` means every output. A derivation may
//! itself be an output of another derivation (dynamic derivations): `…-a.drv^out^bin`. Such chains
//! are parsed iteratively and their length is limited by the caller.

use std::collections::BTreeSet;
use std::fmt;

use crate::store_path::{StoreDir, StorePath, StorePathError};

/// Errors from parsing derived paths.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DerivedPathError {
    /// The store path part is malformed.
    #[error(transparent)]
    StorePath(#[from] StorePathError),
    /// An output name or outputs specifier is malformed.
    #[error("invalid outputs specifier '{0}'")]
    BadOutputs(String),
    /// More nested derivation outputs than the caller allows.
    #[error("derived path nests derivation outputs deeper than {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
}

/// Which outputs of a derivation are wanted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutputsSpec {
    /// Every output (`*`).
    All,
    /// The named outputs; never empty when parsed.
    Names(BTreeSet<String>),
}

impl OutputsSpec {
    /// Parses `*` or a comma-separated list of output names.
    pub fn parse(text: &str) -> Result<Self, DerivedPathError> {
        if text == "*" {
            return Ok(Self::All);
        }
        let mut names = BTreeSet::new();
        for name in text.split(',') {
            if !is_valid_output_name(name) {
                return Err(DerivedPathError::BadOutputs(short(text)));
            }
            names.insert(name.to_owned());
        }
        Ok(Self::Names(names))
    }

    /// Whether `name` is among the wanted outputs.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Names(names) => names.contains(name),
        }
    }
}

impl fmt::Display for OutputsSpec {
    /// `*`, or the names joined by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Names(names) => {
                for (i, n) in names.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(n)?;
                }
                Ok(())
            }
        }
    }
}

/// Whether `name` is a valid output name: Nix's store-path-name characters
/// (`[A-Za-z0-9+-._?=]`), not empty, and not `.` or `..`, alone or followed by `-`.
pub fn is_valid_output_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || !b.iter().all(|&c| c.is_ascii_alphanumeric() || b"+-._?=".contains(&c)) {
        return false;
    }
    let dots = b.iter().take_while(|&&c| c == b'.').count().min(3);
    !((dots == 1 || dots == 2) && (b.len() == dots || b[dots] == b'-'))
}

/// A store path that is either given directly or is one output of a derivation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SingleDerivedPath {
    /// An existing store object.
    Opaque(StorePath),
    /// One output of a derivation.
    Built {
        /// The derivation.
        drv_path: Box<SingleDerivedPath>,
        /// The output's name.
        output: String,
    },
}

impl SingleDerivedPath {
    /// The store path at the bottom of the chain (the first derivation, or the opaque path).
    pub fn base_store_path(&self) -> &StorePath {
        let mut cur = self;
        loop {
            match cur {
                Self::Opaque(p) => return p,
                Self::Built { drv_path, .. } => cur = drv_path,
            }
        }
    }

    /// How many derivation outputs are chained above the base store path.
    pub fn depth(&self) -> usize {
        let mut cur = self;
        let mut n = 0;
        while let Self::Built { drv_path, .. } = cur {
            n += 1;
            cur = drv_path;
        }
        n
    }

    fn write(&self, store_dir: &StoreDir, sep: char, out: &mut String) {
        match self {
            Self::Opaque(p) => out.push_str(&store_dir.print(p)),
            Self::Built { drv_path, output } => {
                drv_path.write(store_dir, sep, out);
                out.push(sep);
                out.push_str(output);
            }
        }
    }

    /// The current text form, with `^`.
    pub fn to_text(&self, store_dir: &StoreDir) -> String {
        let mut out = String::new();
        self.write(store_dir, '^', &mut out);
        out
    }

    /// The legacy text form, with `!`.
    pub fn to_legacy_text(&self, store_dir: &StoreDir) -> String {
        let mut out = String::new();
        self.write(store_dir, '!', &mut out);
        out
    }

    /// Parses the current form (`^`), allowing at most `max_depth` chained outputs.
    pub fn parse(store_dir: &StoreDir, text: &str, max_depth: usize) -> Result<Self, DerivedPathError> {
        parse_single(store_dir, text, '^', max_depth)
    }

    /// Parses the legacy form (`!`), allowing at most `max_depth` chained outputs.
    pub fn parse_legacy(store_dir: &StoreDir, text: &str, max_depth: usize) -> Result<Self, DerivedPathError> {
        parse_single(store_dir, text, '!', max_depth)
    }
}

/// What a client asks to realise: an existing store object, or some outputs of a derivation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DerivedPath {
    /// An existing store object.
    Opaque(StorePath),
    /// Some outputs of a derivation.
    Built {
        /// The derivation.
        drv_path: SingleDerivedPath,
        /// The wanted outputs.
        outputs: OutputsSpec,
    },
}

impl DerivedPath {
    /// The current text form, with `^`.
    pub fn to_text(&self, store_dir: &StoreDir) -> String {
        self.to_text_with(store_dir, '^')
    }

    /// The legacy text form, with `!` (worker protocol 1.30 and later).
    pub fn to_legacy_text(&self, store_dir: &StoreDir) -> String {
        self.to_text_with(store_dir, '!')
    }

    fn to_text_with(&self, store_dir: &StoreDir, sep: char) -> String {
        match self {
            Self::Opaque(p) => store_dir.print(p),
            Self::Built { drv_path, outputs } => {
                let mut out = String::new();
                drv_path.write(store_dir, sep, &mut out);
                out.push(sep);
                out.push_str(&outputs.to_string());
                out
            }
        }
    }

    /// Parses the current form (`^`), allowing at most `max_depth` chained outputs below the last.
    pub fn parse(store_dir: &StoreDir, text: &str, max_depth: usize) -> Result<Self, DerivedPathError> {
        parse_derived(store_dir, text, '^', max_depth)
    }

    /// Parses the legacy form (`!`), allowing at most `max_depth` chained outputs below the last.
    pub fn parse_legacy(store_dir: &StoreDir, text: &str, max_depth: usize) -> Result<Self, DerivedPathError> {
        parse_derived(store_dir, text, '!', max_depth)
    }

    /// The store path at the bottom of the chain.
    pub fn base_store_path(&self) -> &StorePath {
        match self {
            Self::Opaque(p) => p,
            Self::Built { drv_path, .. } => drv_path.base_store_path(),
        }
    }
}

fn parse_single(store_dir: &StoreDir, text: &str, sep: char, max_depth: usize) -> Result<SingleDerivedPath, DerivedPathError> {
    let mut parts = text.split(sep);
    let base = parts.next().unwrap_or_default();
    let mut cur = SingleDerivedPath::Opaque(store_dir.parse(base)?);
    for (depth, output) in parts.enumerate() {
        if depth >= max_depth {
            return Err(DerivedPathError::TooDeep { max: max_depth });
        }
        if !is_valid_output_name(output) {
            return Err(DerivedPathError::BadOutputs(short(output)));
        }
        cur = SingleDerivedPath::Built { drv_path: Box::new(cur), output: output.to_owned() };
    }
    Ok(cur)
}

fn parse_derived(store_dir: &StoreDir, text: &str, sep: char, max_depth: usize) -> Result<DerivedPath, DerivedPathError> {
    match text.rsplit_once(sep) {
        None => Ok(DerivedPath::Opaque(store_dir.parse(text)?)),
        Some((drv, outputs)) => Ok(DerivedPath::Built {
            drv_path: parse_single(store_dir, drv, sep, max_depth)?,
            outputs: OutputsSpec::parse(outputs)?,
        }),
    }
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOO: &str = "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo";
    const BAR_DRV: &str = "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv";

    fn sd() -> StoreDir {
        StoreDir::default()
    }

    #[test]
    fn legacy_forms() {
        let opaque = DerivedPath::parse_legacy(&sd(), FOO, 8).unwrap();
        assert_eq!(opaque, DerivedPath::Opaque(sd().parse(FOO).unwrap()));
        let all = DerivedPath::parse_legacy(&sd(), &format!("{BAR_DRV}!*"), 8).unwrap();
        assert!(matches!(&all, DerivedPath::Built { outputs: OutputsSpec::All, .. }));
        assert_eq!(all.to_legacy_text(&sd()), format!("{BAR_DRV}!*"));
        let xy = DerivedPath::parse_legacy(&sd(), &format!("{BAR_DRV}!y,x"), 8).unwrap();
        assert_eq!(xy.to_legacy_text(&sd()), format!("{BAR_DRV}!x,y"));
        assert_eq!(xy.to_text(&sd()), format!("{BAR_DRV}^x,y"));
    }

    #[test]
    fn nested_and_depth_limit() {
        let text = format!("{BAR_DRV}!out!bin");
        let p = DerivedPath::parse_legacy(&sd(), &text, 1).unwrap();
        assert_eq!(p.to_legacy_text(&sd()), text);
        match &p {
            DerivedPath::Built { drv_path, .. } => assert_eq!(drv_path.depth(), 1),
            DerivedPath::Opaque(_) => panic!("expected built"),
        }
        assert_eq!(p.base_store_path(), &sd().parse(BAR_DRV).unwrap());
        assert_eq!(
            DerivedPath::parse_legacy(&sd(), &text, 0),
            Err(DerivedPathError::TooDeep { max: 0 })
        );
        let deep = format!("{BAR_DRV}{}", "!o".repeat(100_000));
        assert!(matches!(DerivedPath::parse_legacy(&sd(), &deep, 64), Err(DerivedPathError::TooDeep { .. })));
    }

    #[test]
    fn rejects() {
        for bad in [
            format!("{BAR_DRV}!"),
            format!("{BAR_DRV}!a,,b"),
            format!("{BAR_DRV}!."),
            format!("{BAR_DRV}!..-x"),
            format!("{BAR_DRV}!a b"),
            format!("{BAR_DRV}!!out"),
        ] {
            assert!(DerivedPath::parse_legacy(&sd(), &bad, 8).is_err(), "{bad}");
        }
        assert!(matches!(
            DerivedPath::parse_legacy(&sd(), "/tmp/x!out", 8),
            Err(DerivedPathError::StorePath(_))
        ));
    }

    #[test]
    fn output_names() {
        for ok in ["out", "dev", "a.b", "...", ".x", "..x", "x-", "?="] {
            assert!(is_valid_output_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", ".-x", "..-", "a/b", "a!b", "*"] {
            assert!(!is_valid_output_name(bad), "{bad}");
        }
    }
}
