//! The JSON form of a narinfo, as Nix 2.26 writes it (`NarInfo::toJSON`): the path-info JSON,
//! plus in the impure view `url` and `compression` (when non-empty), `downloadHash` (SRI, when
//! known) and `downloadSize` (when known and non-zero). `System` has no JSON form.

use serde_json::Value;

use super::NarInfo;
use crate::path_info::json::{add_closure_sizes, parse_json_text, Object};
use crate::path_info::{JsonError, JsonOptions, ValidPathInfo};
use crate::store_path::{StoreDir, StorePath};

impl NarInfo {
    /// The JSON object for this narinfo (without its own path) in the view `options` selects.
    pub fn to_json(&self, store_dir: &StoreDir, options: &JsonOptions) -> Value {
        let base = JsonOptions { impure: options.impure, ..JsonOptions::PURE };
        let mut json = self.info.to_json(store_dir, &base);
        if let Value::Object(obj) = &mut json {
            if options.impure {
                if !self.url.is_empty() {
                    obj.insert("url".into(), self.url.clone().into());
                }
                if !self.compression.is_empty() {
                    obj.insert("compression".into(), self.compression.clone().into());
                }
                if let Some(h) = &self.file_hash {
                    obj.insert("downloadHash".into(), h.to_sri().into());
                }
                if let Some(n) = self.file_size.filter(|n| *n != 0) {
                    obj.insert("downloadSize".into(), n.into());
                }
            }
            add_closure_sizes(obj, options);
        }
        json
    }

    /// Reads the JSON object of the narinfo of `path` (either view). Missing cache fields stay
    /// empty: `compression` does not default to `bzip2` here, as in Nix.
    pub fn from_json(store_dir: &StoreDir, path: StorePath, json: &Value) -> Result<Self, JsonError> {
        let info = ValidPathInfo::from_json(store_dir, path, json)?;
        let obj = Object::new(json)?;
        let mut n = NarInfo::new(
            info,
            obj.optional_str("url")?.unwrap_or_default(),
            obj.optional_str("compression")?.unwrap_or_default(),
        );
        n.file_hash = obj.optional_hash("downloadHash")?;
        n.file_size = obj.optional_u64("downloadSize")?;
        Ok(n)
    }

    /// Parses JSON text (size-limited like [`ValidPathInfo::from_json_str`]) and reads it with
    /// [`Self::from_json`].
    pub fn from_json_str(store_dir: &StoreDir, path: StorePath, text: &str) -> Result<Self, JsonError> {
        Self::from_json(store_dir, path, &parse_json_text(text)?)
    }
}
