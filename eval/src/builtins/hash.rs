//! Hashing: `hashString`, `hashFile`, `convertHash`.

use nix_formats::hash::{Algorithm, Encoding, Hash};

use super::PrimOpDef;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Evaluator;
use crate::symbol::Symbol;
use crate::value::Value;

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "hashString", arity: 2, fun: hash_string },
    PrimOpDef { name: "hashFile", arity: 2, fun: hash_file },
    PrimOpDef { name: "convertHash", arity: 1, fun: convert_hash },
];

fn algorithm(name: &str) -> EvalResult<Algorithm> {
    name.parse().map_err(|_| EvalError::other(format!("unknown hash algorithm '{name}', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'")))
}

fn hash_string(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let algo = algorithm(&ev.force_str(&args[0])?)?;
    let s = ev.force_string(&args[1])?;
    Ok(Value::string(Hash::of(algo, s.text.as_bytes()).to_base16()))
}

fn hash_file(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let algo = algorithm(&ev.force_str(&args[0])?)?;
    let path = ev.realise_path(&args[1])?;
    let data = ev.io.read_file(&path).map_err(|e| EvalError::new(ErrorKind::Io, format!("opening file '{path}': {e}")))?;
    Ok(Value::string(Hash::of(algo, &data).to_base16()))
}

fn convert_hash(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let a = ev.force_attrs(&args[0])?;
    let hash = match a.get(Symbol::new("hash")).cloned() {
        Some(h) => ev.force_str(&h)?,
        None => return Err(EvalError::other("attribute 'hash' missing")),
    };
    let algo = match a.get(Symbol::new("hashAlgo")).cloned() {
        Some(h) => Some(algorithm(&ev.force_str(&h)?)?),
        None => None,
    };
    let format = match a.get(Symbol::new("toHashFormat")).cloned() {
        Some(f) => ev.force_str(&f)?,
        None => return Err(EvalError::other("attribute 'toHashFormat' missing")),
    };
    let encoding: Encoding = format.parse().map_err(|_| {
        EvalError::other(format!("unknown hash format '{format}', expect 'base16', 'base32', 'base64', or 'sri'"))
    })?;
    let parsed = Hash::parse_any(&hash, algo).map_err(|e| EvalError::other(e.to_string()))?;
    Ok(Value::string(parsed.encode(encoding, false)))
}
