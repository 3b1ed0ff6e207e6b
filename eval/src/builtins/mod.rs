//! The builtins: a registry of primitive operations in groups, one file per group.
//!
//! To add builtins, write a group file with a `pub const PRIMOPS: &[PrimOpDef]` and list it in
//! [`GROUPS`]. A primop receives all its arguments unevaluated (they may be thunks) and forces
//! what it needs. Names listed in [`GLOBAL_NAMES`] are also in scope without `builtins.`; every
//! other builtin is in scope as `__name`.

pub mod arith;
pub mod attrs;
pub mod context;
pub mod control;
pub mod derivation;
pub mod fetch;
pub mod flakeref;
pub mod fs;
pub mod hash;
pub mod import;
pub mod json;
pub mod lists;
pub mod regex;
pub mod strings;
pub mod types;
pub mod versions;
pub mod xml;

use std::rc::Rc;

use crate::error::EvalResult;
use crate::machine::Evaluator;
use crate::symbol::Symbol;
use crate::value::{Attr, Attrs, PrimOpApp, Value};

/// A builtin's implementation: all its arguments, unevaluated.
pub type PrimOpFn = fn(&mut Evaluator, Vec<Value>) -> EvalResult<Value>;

/// A builtin.
pub struct PrimOpDef {
    /// Its name in `builtins`.
    pub name: &'static str,
    /// How many arguments it takes.
    pub arity: usize,
    /// The implementation.
    pub fun: PrimOpFn,
}

/// Every group of builtins.
pub const GROUPS: &[&[PrimOpDef]] = &[
    arith::PRIMOPS,
    attrs::PRIMOPS,
    context::PRIMOPS,
    control::PRIMOPS,
    derivation::PRIMOPS,
    fetch::PRIMOPS,
    flakeref::PRIMOPS,
    fs::PRIMOPS,
    hash::PRIMOPS,
    import::PRIMOPS,
    json::PRIMOPS,
    lists::PRIMOPS,
    regex::PRIMOPS,
    strings::PRIMOPS,
    types::PRIMOPS,
    versions::PRIMOPS,
    xml::PRIMOPS,
];

/// Builtins that are in scope without `builtins.` (as in Nix).
pub const GLOBAL_NAMES: &[&str] = &[
    "abort",
    "baseNameOf",
    "break",
    "derivation",
    "derivationStrict",
    "dirOf",
    "fetchGit",
    "fetchMercurial",
    "fetchTarball",
    "fetchTree",
    "fromTOML",
    "import",
    "isNull",
    "map",
    "placeholder",
    "removeAttrs",
    "scopedImport",
    "throw",
    "toString",
];

/// The value of a builtin with no arguments yet (a constant when its arity is 0).
fn primop_value(op: &'static PrimOpDef) -> Value {
    Value::PrimOp(crate::value::ValueRc::new(PrimOpApp { op, args: Vec::new() }))
}

/// Installs the builtins and constants into an evaluator's global scope.
pub fn install(ev: &mut Evaluator) {
    let mut entries: Vec<Attr> = Vec::new();
    for group in GROUPS {
        for op in group.iter() {
            let v = primop_value(op);
            let global = if GLOBAL_NAMES.contains(&op.name) { op.name.to_string() } else { format!("__{}", op.name) };
            ev.globals.insert(Symbol::new(&global), v.clone());
            entries.push(Attr { name: Symbol::new(op.name), value: v, pos: None });
        }
    }
    let constants = constants(ev);
    for (name, value) in constants {
        if !matches!(name, "true" | "false" | "null") {
            ev.globals.insert(Symbol::new(&format!("__{name}")), value.clone());
        }
        entries.push(Attr { name: Symbol::new(name), value, pos: None });
    }
    ev.globals.insert(Symbol::new("true"), Value::Bool(true));
    ev.globals.insert(Symbol::new("false"), Value::Bool(false));
    ev.globals.insert(Symbol::new("null"), Value::Null);
    // `builtins` contains itself: a thunk selecting from a set made after it would be a cycle
    // of Rc; instead `builtins.builtins` is a lazy selection of the global `builtins`.
    let builtins_self = Symbol::new("builtins");
    let attrs_without_self = Attrs::from_unsorted(entries.clone());
    let holder = ev.alloc_env(smallvec::smallvec![Value::Null], None, false);
    let self_ref = crate::value::Thunk::value_of(crate::value::ThunkState::Suspended(
        Rc::new(crate::expr::Expr::Var(
            crate::expr::Var::Static { depth: 0, slot: 0 },
            builtins_self,
            crate::source::Source::new(crate::source::Origin::String, String::new()).pos(0),
        )),
        holder.clone(),
    ));
    let mut all = attrs_without_self.into_entries();
    all.push(Attr { name: builtins_self, value: self_ref, pos: None });
    let builtins = Value::attrs(Attrs::from_unsorted(all));
    holder.set(0, builtins.clone());
    ev.globals.insert(builtins_self, builtins);
}

/// The constants of `builtins`.
fn constants(ev: &Evaluator) -> Vec<(&'static str, Value)> {
    let nix_path: Vec<Value> = ev
        .options
        .search_path
        .iter()
        .map(|e| {
            Value::attrs(Attrs::from_unsorted(vec![
                Attr { name: Symbol::new("path"), value: Value::string(e.path.clone()), pos: None },
                Attr { name: Symbol::new("prefix"), value: Value::string(e.prefix.clone()), pos: None },
            ]))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    vec![
        ("true", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("null", Value::Null),
        ("currentSystem", Value::string(ev.options.system.clone())),
        ("currentTime", Value::Int(now)),
        ("nixVersion", Value::string("2.26.3")),
        ("langVersion", Value::Int(6)),
        ("storeDir", Value::string(ev.options.store_dir.clone())),
        ("nixPath", Value::list(nix_path)),
    ]
}

/// Shorthand for building an attribute set from names and values.
pub fn make_attrs(entries: Vec<(&str, Value)>) -> Value {
    Value::attrs(Attrs::from_unsorted(
        entries.into_iter().map(|(n, v)| Attr { name: Symbol::new(n), value: v, pos: None }).collect(),
    ))
}
