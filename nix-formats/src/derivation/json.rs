//! The JSON form of derivations, as Nix 2.26's `nix derivation show` prints it and
//! `nix derivation add` reads it.
//!
//! A derivation is an object with the keys `args`, `builder`, `env`, `inputDrvs` (drv path →
//! `{"dynamicOutputs": {…}, "outputs": […]}`), `inputSrcs`, `name`, `outputs` and `system`. An
//! output is, by kind: `{"path"}` (input-addressed), `{"hash", "hashAlgo", "method", "path"}`
//! (fixed; hash in base16), `{"hashAlgo", "method"}` (floating), `{}` (deferred) or
//! `{"hashAlgo", "impure": true, "method"}` (impure). Methods are `flat`, `nar`, `text` and `git`.
//!
//! `nix derivation show` prints one object keyed by drv path, with keys sorted and two-space
//! indentation, then a newline. JSON strings are UTF-8: where a byte string is not, Nix fails
//! with nlohmann's error, and so does [`derivation_show_json`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::content_address::{ContentAddress, ContentAddressError, Method, MethodAlgo};
use crate::hash::{Algorithm, Hash, HashError};
use crate::store_path::{StoreDir, StorePath, StorePathError};

use super::{fixed_output_path, Derivation, DerivationOutput, InputOutputs, OutputPathError};

/// The largest JSON text [`Derivation::from_json_bytes`] reads.
pub const MAX_JSON_SIZE: usize = 64 << 20;

/// Errors converting derivations to or from JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DerivationJsonError {
    /// A byte string is not UTF-8 (nlohmann's message, with the byte's index in the string).
    #[error("[json.exception.type_error.316] invalid UTF-8 byte at index {index}: 0x{byte:02X}")]
    InvalidUtf8 {
        /// Index of the offending byte in its string.
        index: usize,
        /// The byte.
        byte: u8,
    },
    /// A byte string ends inside a UTF-8 sequence (nlohmann's message).
    #[error("[json.exception.type_error.316] incomplete UTF-8 string; last byte: 0x{0:02X}")]
    IncompleteUtf8(u8),
    /// A fixed output's path cannot be computed.
    #[error(transparent)]
    OutputPath(#[from] OutputPathError),
    /// The text is not JSON, or too deeply nested.
    #[error("invalid JSON: {0}")]
    Syntax(String),
    /// The text is larger than [`MAX_JSON_SIZE`].
    #[error("derivation JSON is larger than {MAX_JSON_SIZE} bytes")]
    TooLarge,
    /// A required key is missing.
    #[error("Expected JSON object to contain key '{0}' but it doesn't")]
    MissingKey(String),
    /// A value has the wrong JSON type.
    #[error("expected JSON {expected} for '{what}'")]
    WrongType {
        /// Where.
        what: String,
        /// The JSON type expected.
        expected: &'static str,
    },
    /// An output's key set matches no output kind.
    #[error("invalid JSON for derivation output '{0}'")]
    InvalidOutput(String),
    /// A fixed output's `path` is not the one its content address gives.
    #[error("Path doesn't match derivation output '{output}': expected '{expected}'")]
    PathMismatch {
        /// The output.
        output: String,
        /// The path computed.
        expected: String,
    },
    /// A store path is invalid.
    #[error(transparent)]
    StorePath(#[from] StorePathError),
    /// A method or algorithm is invalid.
    #[error(transparent)]
    ContentAddress(#[from] ContentAddressError),
    /// A hash is invalid.
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// The JSON text that `nix derivation show` prints for these derivations, keyed by the drv path
/// given with each (entries with equal keys collapse, the last one winning, as in Nix's object).
pub fn derivation_show_json<'a>(
    entries: impl IntoIterator<Item = (String, &'a Derivation)>,
    store_dir: &StoreDir,
) -> Result<String, DerivationJsonError> {
    let sorted: BTreeMap<String, &Derivation> = entries.into_iter().collect();
    let mut root = Map::new();
    for (path, drv) in sorted {
        root.insert(path, drv.to_json(store_dir)?);
    }
    let mut text = serde_json::to_string_pretty(&Value::Object(root))
        .map_err(|e| DerivationJsonError::Syntax(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// A byte string as JSON text, failing as nlohmann's `dump` does on invalid UTF-8.
fn utf8(bytes: &[u8]) -> Result<String, DerivationJsonError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_owned()),
        Err(e) => {
            let start = e.valid_up_to();
            match e.error_len() {
                // nlohmann's decoder stops at the first byte that cannot continue the sequence:
                // the lead byte itself if it can never start one, else the byte after the
                // valid prefix.
                Some(len) => {
                    let lead = bytes[start];
                    let index = if (0x80..0xc2).contains(&lead) || lead >= 0xf5 { start } else { start + len };
                    Err(DerivationJsonError::InvalidUtf8 { index, byte: bytes[index] })
                }
                None => Err(DerivationJsonError::IncompleteUtf8(bytes[bytes.len() - 1])),
            }
        }
    }
}

/// Builds an object from entries given in sorted key order (so the order is right whether or not
/// `serde_json` keeps insertion order).
fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

impl DerivationOutput {
    /// The output's JSON (Nix's `DerivationOutput::toJSON`).
    pub fn to_json(&self, store_dir: &StoreDir, drv_name: &str, output_name: &str) -> Result<Value, OutputPathError> {
        let method_algo = |ma: &MethodAlgo| [("hashAlgo", ma.algo.name().into()), ("method", ma.method.name().into())];
        Ok(match self {
            DerivationOutput::InputAddressed(path) => object([("path", store_dir.print(path).into())]),
            DerivationOutput::CaFixed(ca) => {
                let path = fixed_output_path(store_dir, ca, drv_name, output_name)?;
                object([
                    ("hash", ca.hash.to_base16().into()),
                    ("hashAlgo", ca.hash.algorithm().name().into()),
                    ("method", ca.method.name().into()),
                    ("path", store_dir.print(&path).into()),
                ])
            }
            DerivationOutput::CaFloating(ma) => object(method_algo(ma)),
            DerivationOutput::Deferred => object([]),
            DerivationOutput::Impure(ma) => {
                let [algo, method] = method_algo(ma);
                object([algo, ("impure", true.into()), method])
            }
        })
    }

    /// Reads an output's JSON (Nix's `DerivationOutput::fromJSON`): the set of keys decides the
    /// kind, and a fixed output's `path` must be the one its content address gives.
    pub fn from_json(
        value: &Value,
        store_dir: &StoreDir,
        drv_name: &str,
        output_name: &str,
    ) -> Result<Self, DerivationJsonError> {
        let obj = as_object(value, output_name)?;
        let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        let keys: Vec<&str> = keys.into_iter().collect();
        let method_algo = || -> Result<MethodAlgo, DerivationJsonError> {
            let method = Method::from_name(get_str(obj, "method")?)?;
            let algo: Algorithm = get_str(obj, "hashAlgo")?.parse()?;
            if method == Method::Text && algo != Algorithm::Sha256 {
                return Err(ContentAddressError::TextNotSha256.into());
            }
            Ok(MethodAlgo { method, algo })
        };
        match keys.as_slice() {
            ["path"] => Ok(DerivationOutput::InputAddressed(store_dir.parse(get_str(obj, "path")?)?)),
            ["hash", "hashAlgo", "method", "path"] => {
                let ma = method_algo()?;
                let hash = Hash::parse_bare(get_str(obj, "hash")?, ma.algo)?;
                let ca = ContentAddress { method: ma.method, hash };
                let computed = fixed_output_path(store_dir, &ca, drv_name, output_name)?;
                if store_dir.parse(get_str(obj, "path")?)? != computed {
                    return Err(DerivationJsonError::PathMismatch {
                        output: output_name.to_owned(),
                        expected: store_dir.print(&computed),
                    });
                }
                Ok(DerivationOutput::CaFixed(ca))
            }
            ["hashAlgo", "method"] => Ok(DerivationOutput::CaFloating(method_algo()?)),
            [] => Ok(DerivationOutput::Deferred),
            ["hashAlgo", "impure", "method"] => Ok(DerivationOutput::Impure(method_algo()?)),
            _ => Err(DerivationJsonError::InvalidOutput(output_name.to_owned())),
        }
    }
}

fn input_to_json(node: &InputOutputs) -> Value {
    let dynamic: Map<String, Value> =
        node.dynamic_outputs.iter().map(|(name, child)| (name.clone(), input_to_json(child))).collect();
    let outputs: Vec<Value> = node.outputs.iter().map(|o| Value::from(o.as_str())).collect();
    object([("dynamicOutputs", Value::Object(dynamic)), ("outputs", Value::Array(outputs))])
}

/// What is needed from one input derivation. The nesting is bounded by `serde_json`'s recursion
/// limit when the value was parsed from text.
fn input_from_json(value: &Value, what: &str) -> Result<InputOutputs, DerivationJsonError> {
    let obj = as_object(value, what)?;
    let outputs = as_array(get(obj, "outputs")?, "outputs")?
        .iter()
        .map(|o| as_str(o, "outputs").map(str::to_owned))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let dynamic_outputs = as_object(get(obj, "dynamicOutputs")?, "dynamicOutputs")?
        .iter()
        .map(|(name, child)| Ok((name.clone(), input_from_json(child, name)?)))
        .collect::<Result<_, DerivationJsonError>>()?;
    Ok(InputOutputs { outputs, dynamic_outputs })
}

impl Derivation {
    /// The derivation's JSON (Nix's `Derivation::toJSON`). Fails if a byte string is not UTF-8
    /// (checked in the order Nix prints the fields, so the first error is the one Nix reports) or
    /// a fixed output's path cannot be computed.
    pub fn to_json(&self, store_dir: &StoreDir) -> Result<Value, DerivationJsonError> {
        let args = self.args.iter().map(|a| utf8(a).map(Value::from)).collect::<Result<Vec<_>, _>>()?;
        let builder = utf8(&self.builder)?;
        let mut env = Map::new();
        for (k, v) in &self.env {
            let key = utf8(k)?;
            env.insert(key, utf8(v)?.into());
        }
        let input_drvs: Map<String, Value> =
            self.input_drvs.iter().map(|(p, node)| (store_dir.print(p), input_to_json(node))).collect();
        let input_srcs: Vec<Value> = self.input_srcs.iter().map(|p| store_dir.print(p).into()).collect();
        let mut outputs = Map::new();
        for (name, output) in &self.outputs {
            outputs.insert(name.clone(), output.to_json(store_dir, &self.name, name)?);
        }
        let system = utf8(&self.system)?;
        Ok(object([
            ("args", Value::Array(args)),
            ("builder", builder.into()),
            ("env", Value::Object(env)),
            ("inputDrvs", Value::Object(input_drvs)),
            ("inputSrcs", Value::Array(input_srcs)),
            ("name", self.name.clone().into()),
            ("outputs", Value::Object(outputs)),
            ("system", system.into()),
        ]))
    }

    /// Reads a derivation's JSON (Nix's `Derivation::fromJSON`, as `nix derivation add` does).
    /// Keys other than the eight above are ignored, as Nix ignores them.
    pub fn from_json(value: &Value, store_dir: &StoreDir) -> Result<Self, DerivationJsonError> {
        let obj = as_object(value, "derivation")?;
        let name = get_str(obj, "name")?.to_owned();
        let mut outputs = BTreeMap::new();
        for (output_name, output) in as_object(get(obj, "outputs")?, "outputs")? {
            outputs.insert(output_name.clone(), DerivationOutput::from_json(output, store_dir, &name, output_name)?);
        }
        let input_srcs = as_array(get(obj, "inputSrcs")?, "inputSrcs")?
            .iter()
            .map(|p| Ok(store_dir.parse(as_str(p, "inputSrcs")?)?))
            .collect::<Result<BTreeSet<StorePath>, DerivationJsonError>>()?;
        let mut input_drvs = BTreeMap::new();
        for (path, node) in as_object(get(obj, "inputDrvs")?, "inputDrvs")? {
            input_drvs.insert(store_dir.parse(path)?, input_from_json(node, path)?);
        }
        let args = as_array(get(obj, "args")?, "args")?
            .iter()
            .map(|a| Ok(as_str(a, "args")?.as_bytes().to_vec()))
            .collect::<Result<Vec<_>, DerivationJsonError>>()?;
        let env = as_object(get(obj, "env")?, "env")?
            .iter()
            .map(|(k, v)| Ok((k.as_bytes().to_vec(), as_str(v, k)?.as_bytes().to_vec())))
            .collect::<Result<BTreeMap<_, _>, DerivationJsonError>>()?;
        Ok(Derivation {
            name,
            outputs,
            input_drvs,
            input_srcs,
            system: get_str(obj, "system")?.as_bytes().to_vec(),
            builder: get_str(obj, "builder")?.as_bytes().to_vec(),
            args,
            env,
        })
    }

    /// Parses JSON text of one derivation (at most [`MAX_JSON_SIZE`] bytes) with
    /// [`Derivation::from_json`].
    pub fn from_json_bytes(text: &[u8], store_dir: &StoreDir) -> Result<Self, DerivationJsonError> {
        if text.len() > MAX_JSON_SIZE {
            return Err(DerivationJsonError::TooLarge);
        }
        let value: Value = serde_json::from_slice(text).map_err(|e| DerivationJsonError::Syntax(e.to_string()))?;
        Self::from_json(&value, store_dir)
    }
}

fn get<'v>(obj: &'v Map<String, Value>, key: &str) -> Result<&'v Value, DerivationJsonError> {
    obj.get(key).ok_or_else(|| DerivationJsonError::MissingKey(key.to_owned()))
}

fn get_str<'v>(obj: &'v Map<String, Value>, key: &str) -> Result<&'v str, DerivationJsonError> {
    as_str(get(obj, key)?, key)
}

fn wrong(what: &str, expected: &'static str) -> DerivationJsonError {
    DerivationJsonError::WrongType { what: what.chars().take(200).collect(), expected }
}

fn as_object<'v>(value: &'v Value, what: &str) -> Result<&'v Map<String, Value>, DerivationJsonError> {
    value.as_object().ok_or_else(|| wrong(what, "object"))
}

fn as_array<'v>(value: &'v Value, what: &str) -> Result<&'v Vec<Value>, DerivationJsonError> {
    value.as_array().ok_or_else(|| wrong(what, "array"))
}

fn as_str<'v>(value: &'v Value, what: &str) -> Result<&'v str, DerivationJsonError> {
    value.as_str().ok_or_else(|| wrong(what, "string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_errors_like_nlohmann() {
        assert_eq!(utf8(b"a\xffb"), Err(DerivationJsonError::InvalidUtf8 { index: 1, byte: 0xff }));
        assert_eq!(utf8(b"ab\x80"), Err(DerivationJsonError::InvalidUtf8 { index: 2, byte: 0x80 }));
        assert_eq!(utf8(b"\xc0\x80"), Err(DerivationJsonError::InvalidUtf8 { index: 0, byte: 0xc0 }));
        assert_eq!(utf8(b"x\xe2\x28\xa1"), Err(DerivationJsonError::InvalidUtf8 { index: 2, byte: 0x28 }));
        assert_eq!(utf8(b"\xe0\x80\x80"), Err(DerivationJsonError::InvalidUtf8 { index: 1, byte: 0x80 }));
        assert_eq!(utf8(b"\xf0\x9f\x98"), Err(DerivationJsonError::IncompleteUtf8(0x98)));
        assert_eq!(utf8("é🦀".as_bytes()).unwrap(), "é🦀");
        assert_eq!(
            DerivationJsonError::InvalidUtf8 { index: 1, byte: 0xff }.to_string(),
            "[json.exception.type_error.316] invalid UTF-8 byte at index 1: 0xFF"
        );
    }

    #[test]
    fn output_key_sets() {
        let sd = StoreDir::default();
        let parse = |s: &str| DerivationOutput::from_json(&serde_json::from_str(s).unwrap(), &sd, "d", "out");
        assert_eq!(parse("{}"), Ok(DerivationOutput::Deferred));
        assert_eq!(parse(r#"{"path": "/nix/store/x", "extra": 1}"#), Err(DerivationJsonError::InvalidOutput("out".into())));
        assert_eq!(parse(r#"{"hashAlgo": "sha256"}"#), Err(DerivationJsonError::InvalidOutput("out".into())));
        assert!(matches!(parse(r#"{"hashAlgo": "sha256", "method": "bogus"}"#), Err(DerivationJsonError::ContentAddress(_))));
        // `git` (experimental feature `git-hashing`) is a method like the others.
        assert_eq!(
            parse(r#"{"hashAlgo": "sha1", "method": "git"}"#),
            Ok(DerivationOutput::CaFloating(MethodAlgo { method: Method::Git, algo: Algorithm::Sha1 }))
        );
        assert!(matches!(parse(r#"{"hashAlgo": "sha1", "method": "text"}"#), Err(DerivationJsonError::ContentAddress(_))));
        assert!(matches!(parse(r#"{"path": 1}"#), Err(DerivationJsonError::WrongType { .. })));
    }

    #[test]
    fn missing_keys() {
        let sd = StoreDir::default();
        let v: Value = serde_json::from_str(r#"{"name": "x", "outputs": {}}"#).unwrap();
        assert_eq!(Derivation::from_json(&v, &sd), Err(DerivationJsonError::MissingKey("inputSrcs".into())));
        assert!(matches!(Derivation::from_json_bytes(b"{", &sd), Err(DerivationJsonError::Syntax(_))));
    }
}
