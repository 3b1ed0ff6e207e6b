//! Reading a derivation from its ATerm text (the `.drv` file), strictly and within limits.
//!
//! The reader accepts what Nix 2.26's `parseDerivation` accepts from files that Nix writes, and
//! is stricter where Nix is lenient about things its writer never produces:
//! - list elements must be separated by exactly one comma (Nix also takes `["a""b"]` and `[,"a"]`);
//! - outputs, input derivations, input sources, environment variables and output-name sets must
//!   be in strictly ascending order, as Nix writes them (Nix sorts them on reading, and keeps the
//!   first or the last of duplicates);
//! - a fixed output's stated path must be the path that its content address gives (Nix ignores
//!   the stated path and recomputes it), and fields that an output kind leaves empty must be empty;
//! - nothing may follow the closing parenthesis.
//!
//! Like Nix, it accepts two things its writer never produces and that therefore print back
//! differently: the `DrvWithVersion` form without any dynamic input (printed as `Derive(`), and a
//! dynamic input entry with no dynamic outputs, `([…],[])` (printed as `[…]`). Fixed output hashes
//! may be in base16, nix32 or base64; they are printed in base16.
//!
//! Escapes are read as Nix reads them: `\n`, `\r` and `\t` are control characters, and a backslash
//! before any other byte stands for that byte. Every string may hold any bytes; the ones that must
//! be text (names, paths, hashes) must be UTF-8. The fields that Nix writes without escaping (all
//! but the builder, arguments and environment) must not hold `"` or `\` once unescaped: such a
//! value could not be written back (Nix would write it as it is, into a file that does not read
//! back the same, in Nix either).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::content_address::{ContentAddress, ContentAddressError, MethodAlgo};
use crate::hash::{Hash, HashError};
use crate::store_path::{StoreDir, StorePath, StorePathError};

use super::aterm_print::DYN_DRV_VERSION;
use super::{fixed_output_path, Derivation, DerivationOutput, InputOutputs, OutputPathError};

/// Limits on what the reader accepts. The defaults are far above any real derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtermLimits {
    /// The largest input, in bytes.
    pub max_size: usize,
    /// The longest string, in bytes as written (with escapes).
    pub max_string_len: usize,
    /// The most elements in one list.
    pub max_list_len: usize,
    /// The deepest nesting of dynamic-output entries in input derivations.
    pub max_depth: usize,
}

impl Default for AtermLimits {
    fn default() -> Self {
        Self { max_size: 64 << 20, max_string_len: 64 << 20, max_list_len: 1 << 20, max_depth: 64 }
    }
}

/// An error in an ATerm derivation, with the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error parsing derivation at byte {offset}: {kind}")]
pub struct AtermError {
    /// Offset into the input of the token or string at fault.
    pub offset: usize,
    /// What is wrong.
    pub kind: AtermErrorKind,
}

/// What is wrong in an ATerm derivation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtermErrorKind {
    /// The input is larger than [`AtermLimits::max_size`].
    #[error("derivation is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Input size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The input starts with neither `Derive(` nor `DrvWithVersion(`.
    #[error("derivation does not start with 'Derive' or 'DrvWithVersion'")]
    BadStart,
    /// A `DrvWithVersion` tag other than `xp-dyn-drv`.
    #[error("unknown derivation ATerm format version '{0}'")]
    UnknownVersion(String),
    /// A token was expected.
    #[error("expected {0}")]
    Expected(&'static str),
    /// The input ended where a token was expected.
    #[error("unexpected end of input, expected {0}")]
    UnexpectedEnd(&'static str),
    /// A string has no closing quote.
    #[error("unterminated string in derivation")]
    UnterminatedString,
    /// A string is longer than [`AtermLimits::max_string_len`].
    #[error("string longer than the limit of {0} bytes")]
    StringTooLong(usize),
    /// A list has more elements than [`AtermLimits::max_list_len`].
    #[error("list with more than {0} elements")]
    ListTooLong(usize),
    /// Dynamic-output entries nested deeper than [`AtermLimits::max_depth`].
    #[error("input derivation entries nested deeper than {0}")]
    TooDeep(usize),
    /// A nested (dynamic-output) input derivation entry in the unversioned `Derive(` form.
    #[error("dynamic-output input derivation entries are only allowed in the 'DrvWithVersion(\"xp-dyn-drv\",' form")]
    DynamicInputsInOldForm,
    /// An input derivation entry that is neither `[…]` nor `(…)`.
    #[error("invalid inputDrvs entry in derivation")]
    BadInputEntry,
    /// A string that must be text is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    /// A field that is written without escapes holds `"` or `\` (after unescaping), so it could
    /// not be written back.
    #[error("{0} contains '\"' or '\\', which cannot be written unescaped")]
    QuoteOrBackslash(&'static str),
    /// Entries out of order or repeated.
    #[error("{0} are not in strictly ascending order")]
    NotAscending(&'static str),
    /// A store path is invalid.
    #[error(transparent)]
    StorePath(StorePathError),
    /// An output's method and algorithm (`r:sha256`) are invalid.
    #[error(transparent)]
    Method(ContentAddressError),
    /// A fixed output's hash is invalid.
    #[error(transparent)]
    Hash(HashError),
    /// A fixed output's path cannot be computed.
    #[error(transparent)]
    OutputPath(OutputPathError),
    /// A fixed output's stated path differs from the one its content address gives.
    #[error("fixed output '{output}' has path '{stated}', but its content address gives '{computed}'")]
    WrongFixedOutputPath {
        /// The output.
        output: String,
        /// The path in the file.
        stated: String,
        /// The path computed.
        computed: String,
    },
    /// An output field that must be empty for this kind of output is not.
    #[error("output '{output}': {message}")]
    BadOutput {
        /// The output.
        output: String,
        /// What is wrong.
        message: &'static str,
    },
    /// Bytes follow the end of the derivation.
    #[error("trailing data after the derivation")]
    TrailingData,
}

/// The two forms of the ATerm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// `Derive(`.
    Traditional,
    /// `DrvWithVersion("xp-dyn-drv",`.
    DynamicDerivations,
}

impl Derivation {
    /// Parses a `.drv` file's ATerm with the default [`AtermLimits`]. `name` is the derivation's
    /// name (the file name without hash part and `.drv`, see [`Derivation::name_from_path`]).
    pub fn parse_aterm(input: &[u8], name: &str, store_dir: &StoreDir) -> Result<Self, AtermError> {
        Self::parse_aterm_with_limits(input, name, store_dir, &AtermLimits::default())
    }

    /// Parses a `.drv` file's ATerm within `limits`.
    pub fn parse_aterm_with_limits(
        input: &[u8],
        name: &str,
        store_dir: &StoreDir,
        limits: &AtermLimits,
    ) -> Result<Self, AtermError> {
        if input.len() > limits.max_size {
            return Err(AtermError {
                offset: 0,
                kind: AtermErrorKind::TooLarge { size: input.len(), limit: limits.max_size },
            });
        }
        Parser { input, pos: 0, limits, store_dir }.derivation(name)
    }
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    limits: &'a AtermLimits,
    store_dir: &'a StoreDir,
}

fn err<T>(offset: usize, kind: AtermErrorKind) -> Result<T, AtermError> {
    Err(AtermError { offset, kind })
}

impl<'a> Parser<'a> {
    fn derivation(mut self, name: &str) -> Result<Derivation, AtermError> {
        let version = if self.eat(b"Derive(") {
            Version::Traditional
        } else if self.eat(b"DrvWithVersion(") {
            let at = self.pos;
            let tag = self.string()?;
            if *tag != *DYN_DRV_VERSION.as_bytes() {
                let shown = String::from_utf8_lossy(&tag).chars().take(100).collect();
                return err(at, AtermErrorKind::UnknownVersion(shown));
            }
            self.expect(b",", "','")?;
            Version::DynamicDerivations
        } else {
            return err(0, AtermErrorKind::BadStart);
        };

        let mut drv = Derivation { name: name.to_owned(), ..Default::default() };
        let mut outputs = Vec::new();
        self.list(|p| {
            let at = p.pos;
            p.expect(b"(", "'('")?;
            let output_name = p.text("output name")?;
            let output = p.output(&output_name, name)?;
            p.expect(b")", "')'")?;
            outputs.push((at, output_name, output));
            Ok(())
        })?;
        drv.outputs = ascending_map(outputs, "outputs")?;

        self.expect(b",", "','")?;
        let mut inputs = Vec::new();
        self.list(|p| {
            let at = p.pos;
            p.expect(b"(", "'('")?;
            let path = p.store_path()?;
            p.expect(b",", "','")?;
            let node = p.input_node(version, 0)?;
            p.expect(b")", "')'")?;
            inputs.push((at, path, node));
            Ok(())
        })?;
        drv.input_drvs = ascending_map(inputs, "input derivations")?;

        self.expect(b",", "','")?;
        let mut srcs = Vec::new();
        self.list(|p| {
            let at = p.pos;
            srcs.push((at, p.store_path()?, ()));
            Ok(())
        })?;
        drv.input_srcs = ascending_map(srcs, "input sources")?.into_keys().collect();

        self.expect(b",", "','")?;
        drv.system = self.unescaped_field("system")?.into_owned();
        self.expect(b",", "','")?;
        drv.builder = self.string()?.into_owned();
        self.expect(b",", "','")?;
        let mut args = Vec::new();
        self.list(|p| {
            args.push(p.string()?.into_owned());
            Ok(())
        })?;
        drv.args = args;

        self.expect(b",", "','")?;
        let mut env = Vec::new();
        self.list(|p| {
            let at = p.pos;
            p.expect(b"(", "'('")?;
            let key = p.string()?.into_owned();
            p.expect(b",", "','")?;
            let value = p.string()?.into_owned();
            p.expect(b")", "')'")?;
            env.push((at, key, value));
            Ok(())
        })?;
        drv.env = ascending_map(env, "environment variables")?;

        self.expect(b")", "')'")?;
        if self.pos != self.input.len() {
            return err(self.pos, AtermErrorKind::TrailingData);
        }
        Ok(drv)
    }

    /// The three fields of an output after its name: path, method and algorithm, hash.
    fn output(&mut self, output_name: &str, drv_name: &str) -> Result<DerivationOutput, AtermError> {
        self.expect(b",", "','")?;
        let path_at = self.pos;
        let path = self.text("output path")?;
        self.expect(b",", "','")?;
        let algo_at = self.pos;
        let algo = self.text("output hash algorithm")?;
        self.expect(b",", "','")?;
        let hash_at = self.pos;
        let hash = self.text("output hash")?;
        let bad = |at, message| {
            err(at, AtermErrorKind::BadOutput { output: output_name.to_owned(), message })
        };

        if algo.is_empty() {
            if !hash.is_empty() {
                return bad(hash_at, "a hash without a hash algorithm");
            }
            if path.is_empty() {
                return Ok(DerivationOutput::Deferred);
            }
            return match self.store_dir.parse(&path) {
                Ok(p) => Ok(DerivationOutput::InputAddressed(p)),
                Err(e) => err(path_at, AtermErrorKind::StorePath(e)),
            };
        }

        let method_algo = MethodAlgo::parse(&algo).or_else(|e| err(algo_at, AtermErrorKind::Method(e)))?;
        if hash == "impure" {
            if !path.is_empty() {
                return bad(path_at, "impure derivation output should not specify output path");
            }
            return Ok(DerivationOutput::Impure(method_algo));
        }
        if hash.is_empty() {
            if !path.is_empty() {
                return bad(path_at, "content-addressed derivation output should not specify output path");
            }
            return Ok(DerivationOutput::CaFloating(method_algo));
        }
        let hash = Hash::parse_bare(&hash, method_algo.algo).or_else(|e| err(hash_at, AtermErrorKind::Hash(e)))?;
        let ca = ContentAddress { method: method_algo.method, hash };
        let computed = fixed_output_path(self.store_dir, &ca, drv_name, output_name)
            .or_else(|e| err(path_at, AtermErrorKind::OutputPath(e)))?;
        let computed = self.store_dir.print(&computed);
        if computed != path {
            let stated = path.chars().take(300).collect();
            return err(
                path_at,
                AtermErrorKind::WrongFixedOutputPath { output: output_name.to_owned(), stated, computed },
            );
        }
        Ok(DerivationOutput::CaFixed(ca))
    }

    /// What is needed from one input derivation: `[outputs]`, or in the versioned form also
    /// `([outputs],[("output",<entry>),…])`.
    fn input_node(&mut self, version: Version, depth: usize) -> Result<InputOutputs, AtermError> {
        if depth >= self.limits.max_depth {
            return err(self.pos, AtermErrorKind::TooDeep(self.limits.max_depth));
        }
        match self.peek() {
            Some(b'[') => Ok(InputOutputs { outputs: self.name_set()?, dynamic_outputs: BTreeMap::new() }),
            Some(b'(') if version == Version::Traditional => err(self.pos, AtermErrorKind::DynamicInputsInOldForm),
            Some(b'(') => {
                self.pos += 1;
                let outputs = self.name_set()?;
                self.expect(b",", "','")?;
                let mut children = Vec::new();
                self.list(|p| {
                    let at = p.pos;
                    p.expect(b"(", "'('")?;
                    let name = p.text("output name")?;
                    p.expect(b",", "','")?;
                    let child = p.input_node(version, depth + 1)?;
                    p.expect(b")", "')'")?;
                    children.push((at, name, child));
                    Ok(())
                })?;
                self.expect(b")", "')'")?;
                Ok(InputOutputs { outputs, dynamic_outputs: ascending_map(children, "dynamic outputs")? })
            }
            Some(_) => err(self.pos, AtermErrorKind::BadInputEntry),
            None => err(self.pos, AtermErrorKind::UnexpectedEnd("'[' or '('")),
        }
    }

    /// A list of output names, in ascending order.
    fn name_set(&mut self) -> Result<BTreeSet<String>, AtermError> {
        let mut names = Vec::new();
        self.list(|p| {
            let at = p.pos;
            names.push((at, p.text("output name")?, ()));
            Ok(())
        })?;
        Ok(ascending_map(names, "output names")?.into_keys().collect())
    }

    /// `[` elements separated by `,` `]`, each read by `element`.
    fn list(&mut self, mut element: impl FnMut(&mut Self) -> Result<(), AtermError>) -> Result<(), AtermError> {
        self.expect(b"[", "'['")?;
        if self.eat(b"]") {
            return Ok(());
        }
        let mut count = 0usize;
        loop {
            count += 1;
            if count > self.limits.max_list_len {
                return err(self.pos, AtermErrorKind::ListTooLong(self.limits.max_list_len));
            }
            element(self)?;
            if self.eat(b"]") {
                return Ok(());
            }
            self.expect(b",", "',' or ']'")?;
        }
    }

    /// A full store path inside the store directory.
    fn store_path(&mut self) -> Result<StorePath, AtermError> {
        let at = self.pos;
        let text = self.text("store path")?;
        self.store_dir.parse(&text).or_else(|e| err(at, AtermErrorKind::StorePath(e)))
    }

    /// A string that must be UTF-8 (always a field that is written without escapes).
    fn text(&mut self, what: &'static str) -> Result<String, AtermError> {
        let at = self.pos;
        let bytes = self.unescaped_field(what)?.into_owned();
        String::from_utf8(bytes).or_else(|_| err(at, AtermErrorKind::NotUtf8(what)))
    }

    /// A string of a field that is written without escapes: it may not hold `"` or `\`.
    fn unescaped_field(&mut self, what: &'static str) -> Result<Cow<'a, [u8]>, AtermError> {
        let at = self.pos;
        let s = self.string()?;
        if s.iter().any(|&b| b == b'"' || b == b'\\') {
            return err(at, AtermErrorKind::QuoteOrBackslash(what));
        }
        Ok(s)
    }

    /// A quoted string, unescaped as Nix does.
    fn string(&mut self) -> Result<Cow<'a, [u8]>, AtermError> {
        let start = self.pos;
        self.expect(b"\"", "'\"'")?;
        let input: &'a [u8] = self.input;
        let body_start = self.pos;
        let mut i = body_start;
        let mut escaped = false;
        loop {
            match input.get(i) {
                None => return err(start, AtermErrorKind::UnterminatedString),
                Some(b'"') => break,
                Some(b'\\') => {
                    if i + 1 >= input.len() {
                        return err(start, AtermErrorKind::UnterminatedString);
                    }
                    escaped = true;
                    i += 2;
                }
                Some(_) => i += 1,
            }
            if i - body_start > self.limits.max_string_len {
                return err(start, AtermErrorKind::StringTooLong(self.limits.max_string_len));
            }
        }
        let body = &input[body_start..i];
        self.pos = i + 1;
        if !escaped {
            return Ok(Cow::Borrowed(body));
        }
        let mut out = Vec::with_capacity(body.len());
        let mut bytes = body.iter();
        while let Some(&c) = bytes.next() {
            if c != b'\\' {
                out.push(c);
                continue;
            }
            // The scan above guarantees a byte after every backslash.
            let next = bytes.next().copied().unwrap_or(b'\\');
            out.push(match next {
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                other => other,
            });
        }
        Ok(Cow::Owned(out))
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn eat(&mut self, token: &[u8]) -> bool {
        if self.input[self.pos..].starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &[u8], shown: &'static str) -> Result<(), AtermError> {
        if self.eat(token) {
            return Ok(());
        }
        if self.input.len() - self.pos < token.len() && token.starts_with(&self.input[self.pos..]) {
            return err(self.pos, AtermErrorKind::UnexpectedEnd(shown));
        }
        err(self.pos, AtermErrorKind::Expected(shown))
    }
}

/// Builds a map from entries that must come in strictly ascending key order.
fn ascending_map<K: Ord, V>(entries: Vec<(usize, K, V)>, what: &'static str) -> Result<BTreeMap<K, V>, AtermError> {
    if let Some(pair) = entries.windows(2).find(|pair| pair[0].1 >= pair[1].1) {
        return err(pair[1].0, AtermErrorKind::NotAscending(what));
    }
    Ok(entries.into_iter().map(|(_, k, v)| (k, v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Derivation, AtermError> {
        Derivation::parse_aterm(s.as_bytes(), "x", &StoreDir::default())
    }

    const EMPTY: &str = r#"Derive([],[],[],"","",[],[])"#;

    #[test]
    fn minimal() {
        let d = parse(EMPTY).unwrap();
        assert_eq!(d, Derivation { name: "x".into(), ..Default::default() });
    }

    #[test]
    fn escapes_as_nix_reads_them() {
        let d = parse(r#"Derive([],[],[],"s","a\"b\\c\nd\re\tf\qg",["\\"],[("k\n","\"")])"#).unwrap();
        assert_eq!(d.builder, b"a\"b\\c\nd\re\tfqg");
        assert_eq!(d.args, vec![b"\\".to_vec()]);
        assert_eq!(d.env.get(&b"k\n"[..]), Some(&b"\"".to_vec()));
    }

    #[test]
    fn syntax_errors_have_offsets() {
        let e = parse(r#"Derive([],[],[],"","",[],[]) "#).unwrap_err();
        assert_eq!((e.offset, e.kind), (28, AtermErrorKind::TrailingData));
        let e = parse(r#"Derive([],[],[],"","",["a""b"],[])"#).unwrap_err();
        assert_eq!((e.offset, e.kind), (26, AtermErrorKind::Expected("',' or ']'")));
        let e = parse(r#"Derive([],[],[],"","",[,"a"],[])"#).unwrap_err();
        assert_eq!((e.offset, e.kind), (23, AtermErrorKind::Expected("'\"'")));
        let e = parse(r#"Derive([],[],[],"","abc"#).unwrap_err();
        assert_eq!((e.offset, e.kind), (19, AtermErrorKind::UnterminatedString));
        let e = parse(r#"Derive([],[],[],"","#).unwrap_err();
        assert_eq!((e.offset, e.kind), (19, AtermErrorKind::UnexpectedEnd("'\"'")));
        let e = parse(r#"Derive([],[],[],"","\"#).unwrap_err();
        assert_eq!((e.offset, e.kind), (19, AtermErrorKind::UnterminatedString));
        let e = parse(r#"Derive([],[],[],"","",[],[]"#).unwrap_err();
        assert_eq!((e.offset, e.kind), (27, AtermErrorKind::UnexpectedEnd("')'")));
        assert_eq!(parse("Derivex").unwrap_err().kind, AtermErrorKind::BadStart);
        assert_eq!(parse("").unwrap_err().kind, AtermErrorKind::BadStart);
    }

    /// Found by the `aterm_parser` fuzz target: `"x86_6\\linux"` read as `x86_6\linux`, which
    /// printed unescaped read back as `x86_6linux`.
    #[test]
    fn unescaped_fields_cannot_hold_quotes_or_backslashes() {
        let e = parse(r#"Derive([],[],[],"x86_6\\linux","",[],[])"#).unwrap_err();
        assert_eq!((e.offset, e.kind), (16, AtermErrorKind::QuoteOrBackslash("system")));
        let e = parse(r#"Derive([],[],[],"a\"b","",[],[])"#).unwrap_err();
        assert_eq!(e.kind, AtermErrorKind::QuoteOrBackslash("system"));
        let e = parse(r#"Derive([("o\"ut","","","")],[],[],"","",[],[])"#).unwrap_err();
        assert_eq!((e.offset, e.kind), (9, AtermErrorKind::QuoteOrBackslash("output name")));
        let p = "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv";
        let e = parse(&format!(r#"Derive([],[("{p}",["a\\b"])],[],"","",[],[])"#)).unwrap_err();
        assert_eq!(e.kind, AtermErrorKind::QuoteOrBackslash("output name"));
        // An escape that unescapes to a plain byte is fine (and prints without the backslash),
        // and the escaped fields may hold both.
        let sd = StoreDir::default();
        let d = parse(r#"Derive([],[],[],"x86_6\4-linux","a\"b\\",["\\"],[("\"","\\")])"#).unwrap();
        assert_eq!(d.system, b"x86_64-linux");
        assert_eq!(parse(std::str::from_utf8(&d.to_aterm(&sd).unwrap()).unwrap()).unwrap(), d);
    }

    #[test]
    fn order_and_duplicates() {
        let e = parse(r#"Derive([],[],[],"","",[],[("b",""),("a","")])"#).unwrap_err();
        assert_eq!(e.kind, AtermErrorKind::NotAscending("environment variables"));
        assert_eq!(e.offset, 35);
        let e = parse(r#"Derive([],[],[],"","",[],[("a",""),("a","")])"#).unwrap_err();
        assert_eq!(e.kind, AtermErrorKind::NotAscending("environment variables"));
        let p = "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo";
        let e = parse(&format!(r#"Derive([],[],["{p}","{p}"],"","",[],[])"#)).unwrap_err();
        assert_eq!(e.kind, AtermErrorKind::NotAscending("input sources"));
        let e = parse(&format!(r#"Derive([],[("{p}.drv",["b","a"])],[],"","",[],[])"#)).unwrap_err();
        assert_eq!(e.kind, AtermErrorKind::NotAscending("output names"));
    }

    #[test]
    fn outputs_kinds() {
        let p = "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-x";
        let d = parse(&format!(
            r#"Derive([("a","","r:sha256",""),("b","","",""),("c","","sha1","impure"),("out","{p}","","")],[],[],"","",[],[])"#
        ))
        .unwrap();
        assert!(matches!(d.outputs["a"], DerivationOutput::CaFloating(_)));
        assert_eq!(d.outputs["b"], DerivationOutput::Deferred);
        assert!(matches!(d.outputs["c"], DerivationOutput::Impure(_)));
        assert!(matches!(d.outputs["out"], DerivationOutput::InputAddressed(_)));

        let bad = [
            (format!(r#"("out","{p}","r:sha256","")"#), "content-addressed derivation output should not specify output path"),
            (format!(r#"("out","{p}","r:sha256","impure")"#), "impure derivation output should not specify output path"),
            (r#"("out","","","abc")"#.to_owned(), "a hash without a hash algorithm"),
        ];
        for (o, msg) in bad {
            let e = parse(&format!(r#"Derive([{o}],[],[],"","",[],[])"#)).unwrap_err();
            assert_eq!(e.kind, AtermErrorKind::BadOutput { output: "out".into(), message: msg });
        }
        let e = parse(r#"Derive([("out","/tmp/x","","")],[],[],"","",[],[])"#).unwrap_err();
        assert!(matches!(e.kind, AtermErrorKind::StorePath(_)));
        let e = parse(r#"Derive([("out","","blake9","")],[],[],"","",[],[])"#).unwrap_err();
        assert!(matches!(e.kind, AtermErrorKind::Method(_)));
        assert_eq!(e.offset, 18);
    }

    #[test]
    fn fixed_output_path_is_checked() {
        let hex = "894517c9163c896ec31a2adbd33c0681fd5f45b2c0ef08a64c92a03fb97f390f";
        let good = "/nix/store/rhcg9h16sqvlbpsa6dqm57sbr2al6nzg-drv-name-output-name";
        let text = format!(r#"Derive([("output-name","{good}","sha256","{hex}")],[],[],"","",[],[])"#);
        let d = Derivation::parse_aterm(text.as_bytes(), "drv-name", &StoreDir::default()).unwrap();
        assert_eq!(d.to_aterm(&StoreDir::default()).unwrap(), text.as_bytes());
        let wrong = text.replace("rhcg9", "rhcg8");
        let e = Derivation::parse_aterm(wrong.as_bytes(), "drv-name", &StoreDir::default()).unwrap_err();
        assert!(matches!(e.kind, AtermErrorKind::WrongFixedOutputPath { .. }));
        let badhash = text.replace(hex, "abc");
        let e = Derivation::parse_aterm(badhash.as_bytes(), "drv-name", &StoreDir::default()).unwrap_err();
        assert!(matches!(e.kind, AtermErrorKind::Hash(_)));
    }

    #[test]
    fn accepted_forms_nix_never_writes() {
        let sd = StoreDir::default();
        let d = parse(r#"DrvWithVersion("xp-dyn-drv",[],[],[],"","",[],[])"#).unwrap();
        assert_eq!(d.to_aterm(&sd).unwrap(), EMPTY.as_bytes());
        let p = "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv";
        let d = parse(&format!(r#"DrvWithVersion("xp-dyn-drv",[],[("{p}",(["out"],[]))],[],"","",[],[])"#)).unwrap();
        assert_eq!(d.to_aterm(&sd).unwrap(), format!(r#"Derive([],[("{p}",["out"])],[],"","",[],[])"#).as_bytes());
        let good = "/nix/store/rhcg9h16sqvlbpsa6dqm57sbr2al6nzg-drv-name-output-name";
        let nix32 = "03rrgywkz84j9jk0ivy0n92mzzc10qyd7nra3b1nx29w2v4ific9";
        let text = format!(r#"Derive([("output-name","{good}","sha256","{nix32}")],[],[],"","",[],[])"#);
        let d = Derivation::parse_aterm(text.as_bytes(), "drv-name", &sd).unwrap();
        let hex = "894517c9163c896ec31a2adbd33c0681fd5f45b2c0ef08a64c92a03fb97f390f";
        assert_eq!(d.to_aterm(&sd).unwrap(), text.replace(nix32, hex).as_bytes());
    }

    #[test]
    fn limits() {
        let limits = AtermLimits { max_size: 10, ..Default::default() };
        let e = Derivation::parse_aterm_with_limits(EMPTY.as_bytes(), "x", &StoreDir::default(), &limits).unwrap_err();
        assert!(matches!(e.kind, AtermErrorKind::TooLarge { .. }));
        let limits = AtermLimits { max_string_len: 3, ..Default::default() };
        let s = r#"Derive([],[],[],"","abcd",[],[])"#;
        let e = Derivation::parse_aterm_with_limits(s.as_bytes(), "x", &StoreDir::default(), &limits).unwrap_err();
        assert_eq!((e.offset, e.kind), (19, AtermErrorKind::StringTooLong(3)));
        let limits = AtermLimits { max_list_len: 2, ..Default::default() };
        let s = r#"Derive([],[],[],"","",["a","b","c"],[])"#;
        let e = Derivation::parse_aterm_with_limits(s.as_bytes(), "x", &StoreDir::default(), &limits).unwrap_err();
        assert_eq!(e.kind, AtermErrorKind::ListTooLong(2));
        let p = "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv";
        let nested = format!(r#"DrvWithVersion("xp-dyn-drv",[],[("{p}",([],[("a",([],[("b",["c"])]))]))],[],"","",[],[])"#);
        let ok = Derivation::parse_aterm(nested.as_bytes(), "x", &StoreDir::default()).unwrap();
        assert_eq!(ok.to_aterm(&StoreDir::default()).unwrap(), nested.as_bytes());
        let limits = AtermLimits { max_depth: 2, ..Default::default() };
        let e = Derivation::parse_aterm_with_limits(nested.as_bytes(), "x", &StoreDir::default(), &limits).unwrap_err();
        assert_eq!(e.kind, AtermErrorKind::TooDeep(2));
    }

    #[test]
    fn not_utf8_where_text_is_needed() {
        let mut s = br#"Derive([("o"#.to_vec();
        s.push(0xff);
        s.extend_from_slice(br#"","","","")],[],[],"","",[],[])"#);
        let e = Derivation::parse_aterm(&s, "x", &StoreDir::default()).unwrap_err();
        assert_eq!((e.offset, e.kind), (9, AtermErrorKind::NotUtf8("output name")));
        // Environment values may hold any bytes.
        let mut s = br#"Derive([],[],[],"","",[],[("k",""#.to_vec();
        s.extend_from_slice(b"\xff\x00\x80");
        s.extend_from_slice(br#"")])"#);
        let d = Derivation::parse_aterm(&s, "x", &StoreDir::default()).unwrap();
        assert_eq!(d.env[&b"k"[..]], b"\xff\x00\x80");
        assert_eq!(d.to_aterm(&StoreDir::default()).unwrap(), s);
    }
}
