//! The filesystem, through [`crate::io::EvalIo`]: `readFile`, `readDir`, `pathExists`,
//! `readFileType`, `path`, `filterSource`, `toFile`, `toPath`, `getEnv`, `findFile`,
//! `placeholder`, `storePath`.

use super::PrimOpDef;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::io::{FileKind, IoError};
use crate::machine::Evaluator;
use crate::symbol::Symbol;
use crate::value::{Attr, Attrs, Context, Value};

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "readFile", arity: 1, fun: read_file },
    PrimOpDef { name: "readDir", arity: 1, fun: read_dir },
    PrimOpDef { name: "pathExists", arity: 1, fun: path_exists },
    PrimOpDef { name: "readFileType", arity: 1, fun: read_file_type },
    PrimOpDef { name: "path", arity: 1, fun: path },
    PrimOpDef { name: "filterSource", arity: 2, fun: filter_source },
    PrimOpDef { name: "toFile", arity: 2, fun: to_file },
    PrimOpDef { name: "toPath", arity: 1, fun: to_path },
    PrimOpDef { name: "getEnv", arity: 1, fun: get_env },
    PrimOpDef { name: "findFile", arity: 2, fun: find_file },
    PrimOpDef { name: "placeholder", arity: 1, fun: placeholder },
    PrimOpDef { name: "storePath", arity: 1, fun: store_path },
];

fn io_error(what: &str, path: &str, e: IoError) -> EvalError {
    let detail = match &e {
        IoError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
        other => other.to_string(),
    };
    EvalError::new(ErrorKind::Io, format!("{what} '{path}': {detail}"))
}

fn read_file(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let path = ev.realise_path(&args[0])?;
    let data = ev.io.read_file(&path).map_err(|e| io_error("opening file", &path, e))?;
    if data.contains(&0) {
        return Err(EvalError::other(format!("the contents of the file '{path}' cannot be represented as a Nix string")));
    }
    Ok(Value::string(String::from_utf8_lossy(&data).into_owned()))
}

fn read_dir(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let path = ev.realise_path(&args[0])?;
    let entries = ev.io.read_dir(&path).map_err(|e| io_error("reading directory", &path, e))?;
    let attrs = entries
        .into_iter()
        .map(|(name, kind)| Attr { name: Symbol::new(&name), value: Value::string(kind.name()), pos: None })
        .collect();
    Ok(Value::attrs(Attrs::from_unsorted(attrs)))
}

fn path_exists(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let v = ev.force(&args[0])?;
    let must_be_dir = match &v {
        Value::String(s) => s.text.ends_with('/') || s.text.ends_with("/."),
        _ => false,
    };
    let path = ev.realise_path(&v)?;
    let path = crate::path::canonicalize(&path);
    if must_be_dir {
        return Ok(Value::Bool(std::fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false)));
    }
    Ok(Value::Bool(ev.io.file_kind(&path).map_err(|e| io_error("checking", &path, e))?.is_some()))
}

fn read_file_type(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let path = ev.realise_path(&args[0])?;
    match ev.io.file_kind(&path).map_err(|e| io_error("reading file type of", &path, e))? {
        Some(k) => Ok(Value::string(k.name())),
        None => Err(EvalError::new(ErrorKind::Io, format!("getting status of '{path}': No such file or directory"))),
    }
}

/// Copies `path` into the store, keeping what `filter` (a Nix function of path and type) accepts.
fn add_filtered(ev: &mut Evaluator, path: &str, name: &str, filter: Option<Value>, recursive: bool) -> EvalResult<String> {
    if ev.io.file_kind(path).map_err(|e| io_error("getting status of", path, e))?.is_none() {
        return Err(EvalError::new(ErrorKind::Io, format!("path '{path}' does not exist")));
    }
    if !recursive {
        return ev.io.add_flat_file_to_store(path, name).map_err(|e| io_error("adding", path, e));
    }
    let result = match filter {
        None => ev.io.add_path_to_store(path, name, &mut |_, _| Ok(true)),
        Some(f) => {
            // The filter is a Nix function: collect its verdicts first (the I/O interface does
            // not call back into the evaluator), then add with them.
            let keep = collect_verdicts(ev, path, &f)?;
            ev.io.add_path_to_store(path, name, &mut |p, _| Ok(keep.contains(p)))
        }
    };
    result.map_err(|e| io_error("adding", path, e))
}

fn store_string(sp: String) -> Value {
    let mut ctx = Context::new();
    ctx.insert(sp.clone());
    Value::string_with_context(sp, ctx)
}

/// Walks the tree under `root`, asking the filter about each entry (not descending into rejected
/// directories); returns the set of accepted paths.
fn collect_verdicts(ev: &mut Evaluator, root: &str, filter: &Value) -> EvalResult<std::collections::HashSet<String>> {
    let mut keep = std::collections::HashSet::new();
    let mut stack = vec![root.to_string()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(_) => continue,
        };
        for entry in entries.flatten() {
            let p = entry.path().to_string_lossy().into_owned();
            let kind = match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => FileKind::Symlink,
                Ok(m) if m.is_dir() => FileKind::Directory,
                Ok(m) if m.is_file() => FileKind::Regular,
                _ => FileKind::Unknown,
            };
            let verdict = ev.call(filter, &[Value::string(p.clone()), Value::string(kind.name())])?;
            if ev.expect_bool(&verdict)? {
                if kind == FileKind::Directory {
                    stack.push(p.clone());
                }
                keep.insert(p);
            }
        }
    }
    Ok(keep)
}

fn path(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let a = ev.force_attrs(&args[0])?;
    let mut path_value = None;
    let mut name = None;
    let mut filter = None;
    let mut recursive = true;
    let mut expected = None;
    for attr in a.iter() {
        match attr.name.as_str() {
            "path" => path_value = Some(attr.value.clone()),
            "name" => name = Some(ev.force_str(&attr.value)?),
            "filter" => filter = Some(ev.force_function(&attr.value)?),
            "recursive" => recursive = ev.expect_bool(&attr.value)?,
            "sha256" => expected = Some(ev.force_str(&attr.value)?),
            other => {
                return Err(EvalError::other(format!("unsupported argument '{other}' to 'builtins.path'")));
            }
        }
    }
    let path_value = path_value.ok_or_else(|| EvalError::other("missing required 'path' attribute in the first argument to 'builtins.path'"))?;
    let p = ev.realise_path(&path_value)?;
    let name = name.unwrap_or_else(|| crate::path::base_name(&p).to_string());
    let sp = add_filtered(ev, &p, &name, filter, recursive)?;
    if let Some(expected) = expected {
        let hash = nix_formats::hash::Hash::parse_any(&expected, Some(nix_formats::hash::Algorithm::Sha256))
            .map_err(|e| EvalError::other(e.to_string()))?;
        let store_dir = ev.io.store_dir().clone();
        let want = store_dir
            .make_fixed_output_path(&name, recursive, &hash, [], false)
            .map_err(|e| EvalError::other(e.to_string()))?;
        let want = store_dir.print(&want);
        if want != sp {
            return Err(EvalError::other(format!("hash mismatch in file added from '{p}': expected path '{want}', got '{sp}'")));
        }
    }
    Ok(store_string(sp))
}

fn filter_source(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let f = ev.force_function(&args[0])?;
    let p = ev.realise_path(&args[1])?;
    let name = crate::path::base_name(&p).to_string();
    Ok(store_string(add_filtered(ev, &p, &name, Some(f), true)?))
}

fn to_file(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let name = ev.force_str(&args[0])?;
    let s = ev.force_string(&args[1])?;
    let mut refs = Vec::new();
    for elem in &s.context {
        match super::context::decode(elem) {
            super::context::ContextElem::Opaque(p) => refs.push(p.to_string()),
            _ => {
                return Err(EvalError::other(format!(
                    "files created by builtins.toFile may not reference derivations, but {name} references {elem}"
                )))
            }
        }
    }
    let sp = ev.io.add_text_to_store(&name, s.text.as_bytes(), &refs).map_err(|e| io_error("adding", &name, e))?;
    let mut ctx = Context::new();
    ctx.insert(sp.clone());
    Ok(Value::string_with_context(sp, ctx))
}

fn to_path(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let s = ev.coerce_to_string(&args[0], &mut ctx, false, false)?;
    if !s.starts_with('/') {
        return Err(EvalError::other(format!("string '{s}' doesn't represent an absolute path")));
    }
    Ok(Value::string_with_context(crate::path::canonicalize(&s), ctx))
}

fn get_env(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let name = ev.force_str(&args[0])?;
    Ok(Value::string(std::env::var(&name).unwrap_or_default()))
}

fn find_file(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[0])?;
    let name = ev.force_str(&args[1])?;
    let mut entries = Vec::new();
    for item in list.iter() {
        let a = ev.force_attrs(item)?;
        let prefix = match a.get(Symbol::new("prefix")).cloned() {
            Some(p) => ev.force_str(&p)?,
            None => String::new(),
        };
        let path = match a.get(Symbol::new("path")).cloned() {
            Some(p) => {
                let mut ctx = Context::new();
                ev.coerce_to_string(&p, &mut ctx, false, false)?
            }
            None => return Err(EvalError::other("attribute 'path' missing")),
        };
        entries.push(crate::machine::SearchPathEntry { prefix, path });
    }
    let saved = std::mem::replace(&mut ev.options.search_path, entries);
    let r = ev.find_search_path(&name);
    ev.options.search_path = saved;
    r
}

fn placeholder(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let output = ev.force_str(&args[0])?;
    let hash = nix_formats::hash::Hash::of(nix_formats::hash::Algorithm::Sha256, format!("nix-output:{output}").as_bytes());
    Ok(Value::string(format!("/{}", hash.to_nix32())))
}

fn store_path(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let s = ev.coerce_to_string(&args[0], &mut ctx, false, false)?;
    let store_dir = ev.io.store_dir().clone();
    let sp = store_dir.parse_prefix(&s).map_err(|_| EvalError::other(format!("path '{s}' is not in the Nix store")))?;
    let base = store_dir.print(&sp.0);
    ctx.insert(base);
    Ok(Value::string_with_context(s, ctx))
}
