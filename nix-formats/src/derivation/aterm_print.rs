//! Writing a derivation as ATerm text, byte for byte as Nix 2.26 writes it.
//!
//! Layout: `Derive([outputs],[inputDrvs],[inputSrcs],"system","builder",[args],[env])`, or
//! `DrvWithVersion("xp-dyn-drv",…same fields…)` when an input uses dynamic outputs. Nix escapes
//! `"`, `\`, newline, carriage return and tab (as `\"`, `\\`, `\n`, `\r`, `\t`) only in the builder,
//! the arguments and the environment. Everything else (output names and paths, hash algorithms and
//! hashes, input paths and output names, the system) it writes between quotes as it is.

use std::collections::{BTreeMap, BTreeSet};

use crate::store_path::StoreDir;

use super::{fixed_output_path, Derivation, DerivationOutput, InputOutputs, OutputPathError};

/// The version tag of the versioned ATerm form, the only one Nix knows.
pub const DYN_DRV_VERSION: &str = "xp-dyn-drv";

/// The input derivations to print in place of the real ones: for hashing, each input's modulo
/// hash (base16) with the output names needed from it.
pub(crate) type ReplacedInputs = BTreeMap<String, BTreeSet<String>>;

impl Derivation {
    /// The ATerm text of this derivation, as Nix writes it to the `.drv` file. Fails only if a
    /// fixed output's path cannot be computed (its name would be invalid).
    pub fn to_aterm(&self, store_dir: &StoreDir) -> Result<Vec<u8>, OutputPathError> {
        unparse(self, store_dir, false, None)
    }

    /// The ATerm text with the output paths and the environment variables named like outputs
    /// blanked ("masked"), as hashed for input-addressed output paths.
    pub fn to_aterm_masked(&self, store_dir: &StoreDir) -> Result<Vec<u8>, OutputPathError> {
        unparse(self, store_dir, true, None)
    }
}

/// Nix's `Derivation::unparse`: `mask_outputs` blanks output paths and the environment variables
/// named like outputs; `replaced_inputs`, if given, is printed as the input derivations instead of
/// the real ones.
pub(crate) fn unparse(
    drv: &Derivation,
    store_dir: &StoreDir,
    mask_outputs: bool,
    replaced_inputs: Option<&ReplacedInputs>,
) -> Result<Vec<u8>, OutputPathError> {
    let mut s = Vec::with_capacity(estimate_size(drv));
    if drv.has_dynamic_inputs() {
        s.extend_from_slice(b"DrvWithVersion(");
        raw(&mut s, DYN_DRV_VERSION.as_bytes());
        s.push(b',');
    } else {
        s.extend_from_slice(b"Derive(");
    }

    s.push(b'[');
    for (i, (name, output)) in drv.outputs.iter().enumerate() {
        if i > 0 {
            s.push(b',');
        }
        s.push(b'(');
        raw(&mut s, name.as_bytes());
        let (path, method_algo, hash) = match output {
            DerivationOutput::InputAddressed(path) => {
                let p = if mask_outputs { String::new() } else { store_dir.print(path) };
                (p, String::new(), String::new())
            }
            DerivationOutput::CaFixed(ca) => {
                let p = if mask_outputs {
                    String::new()
                } else {
                    store_dir.print(&fixed_output_path(store_dir, ca, &drv.name, name)?)
                };
                (p, ca.method_algo().to_string(), ca.hash.to_base16())
            }
            DerivationOutput::CaFloating(ma) => (String::new(), ma.to_string(), String::new()),
            DerivationOutput::Deferred => (String::new(), String::new(), String::new()),
            DerivationOutput::Impure(ma) => (String::new(), ma.to_string(), "impure".to_owned()),
        };
        for field in [path, method_algo, hash] {
            s.push(b',');
            raw(&mut s, field.as_bytes());
        }
        s.push(b')');
    }

    s.extend_from_slice(b"],[");
    match replaced_inputs {
        Some(inputs) => {
            for (i, (key, outputs)) in inputs.iter().enumerate() {
                if i > 0 {
                    s.push(b',');
                }
                s.push(b'(');
                raw(&mut s, key.as_bytes());
                s.push(b',');
                raw_list(&mut s, outputs.iter().map(|o| o.as_bytes()));
                s.push(b')');
            }
        }
        None => {
            for (i, (path, node)) in drv.input_drvs.iter().enumerate() {
                if i > 0 {
                    s.push(b',');
                }
                s.push(b'(');
                raw(&mut s, store_dir.print(path).as_bytes());
                s.push(b',');
                input_node(&mut s, node);
                s.push(b')');
            }
        }
    }

    s.extend_from_slice(b"],");
    let srcs: Vec<String> = drv.input_srcs.iter().map(|p| store_dir.print(p)).collect();
    raw_list(&mut s, srcs.iter().map(|p| p.as_bytes()));

    s.push(b',');
    raw(&mut s, &drv.system);
    s.push(b',');
    escaped(&mut s, &drv.builder);
    s.push(b',');
    s.push(b'[');
    for (i, arg) in drv.args.iter().enumerate() {
        if i > 0 {
            s.push(b',');
        }
        escaped(&mut s, arg);
    }
    s.extend_from_slice(b"],[");
    for (i, (key, value)) in drv.env.iter().enumerate() {
        if i > 0 {
            s.push(b',');
        }
        s.push(b'(');
        escaped(&mut s, key);
        s.push(b',');
        let masked = mask_outputs && std::str::from_utf8(key).is_ok_and(|k| drv.outputs.contains_key(k));
        escaped(&mut s, if masked { b"" } else { value });
        s.push(b')');
    }
    s.extend_from_slice(b"])");
    Ok(s)
}

/// One input derivation's entry after its path: `[outputs]`, or with dynamic outputs
/// `([outputs],[("output",<entry>),…])`.
fn input_node(s: &mut Vec<u8>, node: &InputOutputs) {
    if node.dynamic_outputs.is_empty() {
        raw_list(s, node.outputs.iter().map(|o| o.as_bytes()));
        return;
    }
    s.push(b'(');
    raw_list(s, node.outputs.iter().map(|o| o.as_bytes()));
    s.extend_from_slice(b",[");
    for (i, (name, child)) in node.dynamic_outputs.iter().enumerate() {
        if i > 0 {
            s.push(b',');
        }
        s.push(b'(');
        raw(s, name.as_bytes());
        s.push(b',');
        input_node(s, child);
        s.push(b')');
    }
    s.extend_from_slice(b"])");
}

/// A string between quotes, unescaped (Nix's `printUnquotedString`).
fn raw(s: &mut Vec<u8>, text: &[u8]) {
    s.push(b'"');
    s.extend_from_slice(text);
    s.push(b'"');
}

fn raw_list<'a>(s: &mut Vec<u8>, items: impl Iterator<Item = &'a [u8]>) {
    s.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            s.push(b',');
        }
        raw(s, item);
    }
    s.push(b']');
}

/// A string between quotes with `"`, `\`, newline, carriage return and tab escaped (Nix's
/// `printString`).
fn escaped(s: &mut Vec<u8>, text: &[u8]) {
    s.push(b'"');
    for &c in text {
        match c {
            b'"' | b'\\' => s.extend_from_slice(&[b'\\', c]),
            b'\n' => s.extend_from_slice(b"\\n"),
            b'\r' => s.extend_from_slice(b"\\r"),
            b'\t' => s.extend_from_slice(b"\\t"),
            _ => s.push(c),
        }
    }
    s.push(b'"');
}

/// A cheap upper-bound guess of the output size, to allocate once in the common case.
fn estimate_size(drv: &Derivation) -> usize {
    let env: usize = drv.env.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
    let args: usize = drv.args.iter().map(|a| a.len() + 3).sum();
    256 + drv.outputs.len() * 256 + drv.input_drvs.len() * 128 + drv.input_srcs.len() * 100 + env + args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_where_nix_does() {
        let mut s = Vec::new();
        escaped(&mut s, b"a\"b\\c\nd\re\tf\x00\xff");
        assert_eq!(s, b"\"a\\\"b\\\\c\\nd\\re\\tf\x00\xff\"");
        let mut r = Vec::new();
        raw(&mut r, b"a\"b\\c\n");
        assert_eq!(r, b"\"a\"b\\c\n\"");
    }

    #[test]
    fn empty_derivation() {
        let drv = Derivation::default();
        assert_eq!(drv.to_aterm(&StoreDir::default()).unwrap(), b"Derive([],[],[],\"\",\"\",[],[])");
    }
}
