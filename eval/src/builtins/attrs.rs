//! Attribute sets: `attrNames`, `mapAttrs`, `listToAttrs`, `removeAttrs`, `genericClosure`, ...

use std::collections::HashSet;

use super::{make_attrs, PrimOpDef};
use crate::error::{EvalError, EvalResult};
use crate::machine::Evaluator;
use crate::symbol::Symbol;
use crate::value::{Attr, Attrs, Value};

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "attrNames", arity: 1, fun: attr_names },
    PrimOpDef { name: "attrValues", arity: 1, fun: attr_values },
    PrimOpDef { name: "getAttr", arity: 2, fun: get_attr },
    PrimOpDef { name: "hasAttr", arity: 2, fun: has_attr },
    PrimOpDef { name: "removeAttrs", arity: 2, fun: remove_attrs },
    PrimOpDef { name: "intersectAttrs", arity: 2, fun: intersect_attrs },
    PrimOpDef { name: "mapAttrs", arity: 2, fun: map_attrs },
    PrimOpDef { name: "listToAttrs", arity: 1, fun: list_to_attrs },
    PrimOpDef { name: "catAttrs", arity: 2, fun: cat_attrs },
    PrimOpDef { name: "functionArgs", arity: 1, fun: function_args },
    PrimOpDef { name: "zipAttrsWith", arity: 2, fun: zip_attrs_with },
    PrimOpDef { name: "unsafeGetAttrPos", arity: 2, fun: unsafe_get_attr_pos },
    PrimOpDef { name: "genericClosure", arity: 1, fun: generic_closure },
];

fn attr_names(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let a = ev.force_attrs(&args[0])?;
    Ok(Value::list_from(a.len(), a.iter().map(|x| Value::string(x.name.as_str()))))
}

fn attr_values(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let a = ev.force_attrs(&args[0])?;
    Ok(Value::list_from(a.len(), a.iter().map(|x| x.value.clone())))
}

fn get_attr(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let name = ev.force_str(&args[0])?;
    let a = ev.force_attrs(&args[1])?;
    match a.get(Symbol::new(&name)) {
        Some(v) => {
            let v = v.clone();
            ev.force(&v)
        }
        None => Err(EvalError::new(crate::error::ErrorKind::Missing, format!("attribute '{name}' missing"))),
    }
}

fn has_attr(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let name = ev.force_str(&args[0])?;
    let a = ev.force_attrs(&args[1])?;
    Ok(Value::Bool(a.get(Symbol::new(&name)).is_some()))
}

fn remove_attrs(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let a = ev.force_attrs(&args[0])?;
    let names = ev.force_list(&args[1])?;
    let mut remove = HashSet::new();
    for n in names.iter() {
        remove.insert(Symbol::new(&ev.force_str(n)?));
    }
    let kept: Vec<Attr> = a.iter().filter(|x| !remove.contains(&x.name)).cloned().collect();
    Ok(Value::attrs(Attrs::from_sorted(kept)))
}

fn intersect_attrs(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let a = ev.force_attrs(&args[0])?;
    let b = ev.force_attrs(&args[1])?;
    let kept: Vec<Attr> = b.iter().filter(|x| a.get(x.name).is_some()).cloned().collect();
    Ok(Value::attrs(Attrs::from_sorted(kept)))
}

fn map_attrs(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let a = ev.force_attrs(&args[1])?;
    let f = args[0].clone();
    let mapped = a
        .iter()
        .map(|x| {
            let value = Value::lazy_apply2(f.clone(), Value::string(x.name.as_str()), x.value.clone());
            Attr { name: x.name, value, pos: None }
        })
        .collect();
    Ok(Value::attrs(Attrs::from_sorted(mapped)))
}

fn list_to_attrs(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[0])?;
    let mut seen = HashSet::new();
    let mut entries = Vec::new();
    let name_sym = Symbol::new("name");
    let value_sym = Symbol::new("value");
    for item in list.iter() {
        let a = ev.force_attrs(item)?;
        let name = match a.get(name_sym) {
            Some(n) => {
                let n = n.clone();
                ev.force_str(&n)?
            }
            None => return Err(EvalError::other("attribute 'name' missing")),
        };
        let sym = Symbol::new(&name);
        if !seen.insert(sym) {
            continue;
        }
        let value = match a.get_attr(value_sym) {
            Some(v) => v.clone(),
            None => return Err(EvalError::other("attribute 'value' missing")),
        };
        entries.push(Attr { name: sym, value: value.value, pos: value.pos });
    }
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

fn cat_attrs(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let name = Symbol::new(&ev.force_str(&args[0])?);
    let list = ev.force_list(&args[1])?;
    let mut out = Vec::new();
    for item in list.iter() {
        let a = ev.force_attrs(item)?;
        if let Some(v) = a.get(name) {
            out.push(v.clone());
        }
    }
    Ok(Value::list(out))
}

fn function_args(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    match ev.force(&args[0])? {
        Value::Lambda(c) => match &c.lambda.formals {
            Some(f) => Ok(Value::attrs(Attrs::from_sorted(
                f.entries
                    .iter()
                    .map(|e| Attr { name: e.name, value: Value::Bool(e.default.is_some()), pos: Some(e.pos) })
                    .collect(),
            ))),
            None => Ok(Value::attrs(Attrs::new())),
        },
        Value::PrimOp(_) => Ok(Value::attrs(Attrs::new())),
        other => Err(EvalError::type_error(format!(
            "'functionArgs' requires a function but found {}: {}",
            other.describe(),
            crate::print::error_repr(&other)
        ))),
    }
}

fn zip_attrs_with(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[1])?;
    let mut groups: std::collections::BTreeMap<Symbol, Vec<Value>> = std::collections::BTreeMap::new();
    for item in list.iter() {
        let a = ev.force_attrs(item)?;
        for attr in a.iter() {
            groups.entry(attr.name).or_default().push(attr.value.clone());
        }
    }
    let f = args[0].clone();
    let entries = groups
        .into_iter()
        .map(|(name, values)| {
            let value = Value::lazy_apply2(f.clone(), Value::string(name.as_str()), Value::list(values));
            Attr { name, value, pos: None }
        })
        .collect();
    Ok(Value::attrs(Attrs::from_sorted(entries)))
}

fn unsafe_get_attr_pos(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let name = Symbol::new(&ev.force_str(&args[0])?);
    let a = ev.force_attrs(&args[1])?;
    match a.get_attr(name).and_then(|x| x.pos) {
        Some(pos) => Ok(ev.pos_to_attrs(&pos)),
        None => Ok(Value::Null),
    }
}

/// A hashable form of a `genericClosure` key.
#[derive(Hash, PartialEq, Eq)]
enum KeyRepr {
    Int(i64),
    Float(u64),
    Str(String),
    Path(String),
}

fn generic_closure(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let a = ev.force_attrs(&args[0])?;
    let start = a.get(Symbol::new("startSet")).cloned().ok_or_else(|| EvalError::other("attribute 'startSet' missing"))?;
    let op = a.get(Symbol::new("operator")).cloned().ok_or_else(|| EvalError::other("attribute 'operator' missing"))?;
    let mut work: std::collections::VecDeque<Value> = ev.force_list(&start)?.iter().cloned().collect();
    let mut seen = HashSet::new();
    let mut other_keys: Vec<Value> = Vec::new();
    let mut out = Vec::new();
    let key_sym = Symbol::new("key");
    while let Some(item) = work.pop_front() {
        let attrs = ev.force_attrs(&item)?;
        let key = match attrs.get(key_sym) {
            Some(k) => ev.force(&k.clone())?,
            None => return Err(EvalError::other("attribute 'key' required")),
        };
        let fresh = match &key {
            Value::Int(i) => seen.insert(KeyRepr::Int(*i)),
            Value::Float(f) => seen.insert(KeyRepr::Float(f.to_bits())),
            Value::String(s) => seen.insert(KeyRepr::Str(s.text.clone())),
            Value::Path(p) => seen.insert(KeyRepr::Path(p.to_string())),
            _ => {
                let mut found = false;
                for k in &other_keys {
                    if ev.values_equal(k, &key, false)? {
                        found = true;
                        break;
                    }
                }
                if !found {
                    other_keys.push(key.clone());
                }
                !found
            }
        };
        if !fresh {
            continue;
        }
        out.push(Value::Attrs(attrs));
        let next = ev.call(&op, std::slice::from_ref(&item))?;
        work.extend(ev.force_list(&next)?.iter().cloned());
    }
    let _ = make_attrs;
    Ok(Value::list(out))
}
