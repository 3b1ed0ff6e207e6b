//! The JSON form of path info, as Nix 2.26 writes it (`nix path-info --json` object values,
//! `UnkeyedValidPathInfo::toJSON`).
//!
//! Keys: `narHash` (SRI), `narSize`, `references` (full paths, sorted) and `ca` (string or `null`)
//! always; the impure view adds `deriver` (or `null`), `registrationTime` (`null` when 0),
//! `ultimate` and `signatures`. `nix path-info --json -S` adds `closureSize`, and for binary-cache
//! infos `closureDownloadSize`. The store path itself is not part of the object. Reading accepts
//! both views: a missing optional key takes its default, and unknown keys are ignored.

use serde_json::{Map, Value};

use super::ValidPathInfo;
use crate::content_address::{ContentAddress, ContentAddressError};
use crate::hash::{Hash, HashError};
use crate::store_path::{StoreDir, StorePath, StorePathError};

/// The longest JSON text [`ValidPathInfo::from_json_str`] reads, in bytes.
pub const MAX_JSON_LEN: usize = 16 << 20;

/// Errors from reading the JSON form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The text is longer than [`MAX_JSON_LEN`].
    #[error("JSON text of {0} bytes exceeds the limit of {MAX_JSON_LEN}")]
    TooLarge(usize),
    /// The text is not JSON.
    #[error("invalid JSON: {0}")]
    Syntax(String),
    /// The value is not a JSON object.
    #[error("expected a JSON object")]
    NotAnObject,
    /// A required key is missing.
    #[error("expected JSON object to contain key '{0}'")]
    MissingKey(&'static str),
    /// A key's value has the wrong type.
    #[error("JSON key '{key}' should be {expected}")]
    WrongType {
        /// The key.
        key: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// A hash is malformed.
    #[error("JSON key '{key}': {source}")]
    BadHash {
        /// The key.
        key: &'static str,
        /// The problem.
        source: HashError,
    },
    /// A store path is malformed or outside the store.
    #[error("JSON key '{key}': {source}")]
    BadStorePath {
        /// The key.
        key: &'static str,
        /// The problem.
        source: StorePathError,
    },
    /// The content address is malformed.
    #[error("JSON key 'ca': {0}")]
    BadContentAddress(#[from] ContentAddressError),
}

/// Which JSON view to write, and the extra sizes `nix path-info --json -S` adds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonOptions {
    /// Include the fields that belong to one store (deriver, registration time, ultimate,
    /// signatures, and for NAR infos the cache fields). `nix path-info --json` always does.
    pub impure: bool,
    /// Add `closureSize` (the NAR sizes of the whole closure summed).
    pub closure_size: Option<u64>,
    /// Add `closureDownloadSize` (the download sizes of the whole closure summed; Nix prints it
    /// only for binary-cache infos).
    pub closure_download_size: Option<u64>,
}

impl JsonOptions {
    /// The pure view: `ca`, `narHash`, `narSize`, `references`.
    pub const PURE: Self = Self { impure: false, closure_size: None, closure_download_size: None };
    /// The full view, as `nix path-info --json` prints it.
    pub const IMPURE: Self = Self { impure: true, closure_size: None, closure_download_size: None };

    /// The same options with `closureSize` set.
    pub fn with_closure_size(self, size: u64) -> Self {
        Self { closure_size: Some(size), ..self }
    }

    /// The same options with `closureDownloadSize` set.
    pub fn with_closure_download_size(self, size: u64) -> Self {
        Self { closure_download_size: Some(size), ..self }
    }
}

impl ValidPathInfo {
    /// The JSON object for this info (without its own path) in the view `options` selects.
    pub fn to_json(&self, store_dir: &StoreDir, options: &JsonOptions) -> Value {
        let mut obj = Map::new();
        obj.insert("narHash".into(), self.nar_hash.to_sri().into());
        obj.insert("narSize".into(), self.nar_size.into());
        let refs = self.references.iter().map(|r| Value::String(store_dir.print(r))).collect();
        obj.insert("references".into(), Value::Array(refs));
        obj.insert("ca".into(), opt_string(self.ca.as_ref().map(ToString::to_string)));
        if options.impure {
            obj.insert("deriver".into(), opt_string(self.deriver.as_ref().map(|d| store_dir.print(d))));
            let time = if self.registration_time == 0 { Value::Null } else { self.registration_time.into() };
            obj.insert("registrationTime".into(), time);
            obj.insert("ultimate".into(), self.ultimate.into());
            let sigs = self.sigs.iter().map(|s| Value::String(s.clone())).collect();
            obj.insert("signatures".into(), Value::Array(sigs));
        }
        add_closure_sizes(&mut obj, options);
        Value::Object(obj)
    }

    /// Reads the JSON object of the info of `path` (either view; unknown keys are ignored).
    pub fn from_json(store_dir: &StoreDir, path: StorePath, json: &Value) -> Result<Self, JsonError> {
        let obj = Object::new(json)?;
        let nar_hash = obj.required_hash("narHash")?;
        let mut info = ValidPathInfo::new(path, nar_hash);
        info.nar_size = obj.required_u64("narSize")?;
        let refs = obj.get("references").ok_or(JsonError::MissingKey("references"))?;
        for r in string_array(refs, "references")? {
            info.references.insert(parse_path(store_dir, "references", r)?);
        }
        if let Some(ca) = obj.nullable_str("ca")? {
            info.ca = Some(ContentAddress::parse(ca)?);
        }
        if let Some(d) = obj.nullable_str("deriver")? {
            info.deriver = Some(parse_path(store_dir, "deriver", d)?);
        }
        if let Some(v) = obj.get("registrationTime").filter(|v| !v.is_null()) {
            info.registration_time = as_u64(v, "registrationTime")?;
        }
        if let Some(v) = obj.get("ultimate") {
            info.ultimate = v.as_bool().ok_or(JsonError::WrongType { key: "ultimate", expected: "a boolean" })?;
        }
        if let Some(v) = obj.get("signatures") {
            info.sigs = string_array(v, "signatures")?.map(str::to_owned).collect();
        }
        Ok(info)
    }

    /// Parses JSON text (at most [`MAX_JSON_LEN`] bytes) and reads it with [`Self::from_json`].
    pub fn from_json_str(store_dir: &StoreDir, path: StorePath, text: &str) -> Result<Self, JsonError> {
        Self::from_json(store_dir, path, &parse_json_text(text)?)
    }
}

/// Parses JSON text of at most [`MAX_JSON_LEN`] bytes.
pub(crate) fn parse_json_text(text: &str) -> Result<Value, JsonError> {
    if text.len() > MAX_JSON_LEN {
        return Err(JsonError::TooLarge(text.len()));
    }
    serde_json::from_str(text).map_err(|e| JsonError::Syntax(e.to_string()))
}

/// Adds `closureSize` and `closureDownloadSize` if the options ask for them.
pub(crate) fn add_closure_sizes(obj: &mut Map<String, Value>, options: &JsonOptions) {
    if let Some(n) = options.closure_size {
        obj.insert("closureSize".into(), n.into());
    }
    if let Some(n) = options.closure_download_size {
        obj.insert("closureDownloadSize".into(), n.into());
    }
}

fn opt_string(s: Option<String>) -> Value {
    s.map_or(Value::Null, Value::String)
}

fn parse_path(store_dir: &StoreDir, key: &'static str, text: &str) -> Result<StorePath, JsonError> {
    store_dir.parse(text).map_err(|source| JsonError::BadStorePath { key, source })
}

fn as_u64(v: &Value, key: &'static str) -> Result<u64, JsonError> {
    v.as_u64().ok_or(JsonError::WrongType { key, expected: "a non-negative integer" })
}

fn string_array<'a>(v: &'a Value, key: &'static str) -> Result<impl Iterator<Item = &'a str>, JsonError> {
    let wrong = JsonError::WrongType { key, expected: "an array of strings" };
    let items = v.as_array().ok_or_else(|| wrong.clone())?;
    if items.iter().any(|i| !i.is_string()) {
        return Err(wrong);
    }
    Ok(items.iter().filter_map(Value::as_str))
}

/// A JSON object with typed accessors that name the key in their errors.
pub(crate) struct Object<'a>(&'a Map<String, Value>);

impl<'a> Object<'a> {
    /// The object in `json`, or [`JsonError::NotAnObject`].
    pub(crate) fn new(json: &'a Value) -> Result<Self, JsonError> {
        json.as_object().map(Self).ok_or(JsonError::NotAnObject)
    }

    /// The value at `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key)
    }

    /// The string at `key`; absent or `null` give `None`.
    pub(crate) fn nullable_str(&self, key: &'static str) -> Result<Option<&'a str>, JsonError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(JsonError::WrongType { key, expected: "a string or null" }),
        }
    }

    /// The string at `key` if present.
    pub(crate) fn optional_str(&self, key: &'static str) -> Result<Option<&'a str>, JsonError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or(JsonError::WrongType { key, expected: "a string" }),
        }
    }

    /// The unsigned integer at `key` if present.
    pub(crate) fn optional_u64(&self, key: &'static str) -> Result<Option<u64>, JsonError> {
        self.0.get(key).map(|v| as_u64(v, key)).transpose()
    }

    /// The unsigned integer at `key`, which must be present.
    pub(crate) fn required_u64(&self, key: &'static str) -> Result<u64, JsonError> {
        self.optional_u64(key)?.ok_or(JsonError::MissingKey(key))
    }

    /// The hash at `key` if present; it must name its algorithm (SRI or `algo:…`).
    pub(crate) fn optional_hash(&self, key: &'static str) -> Result<Option<Hash>, JsonError> {
        self.optional_str(key)?
            .map(|s| Hash::parse_prefixed(s).map_err(|source| JsonError::BadHash { key, source }))
            .transpose()
    }

    /// The hash at `key`, which must be present.
    pub(crate) fn required_hash(&self, key: &'static str) -> Result<Hash, JsonError> {
        self.optional_hash(key)?.ok_or(JsonError::MissingKey(key))
    }
}
