//! String contexts: `getContext`, `hasContext`, `appendContext`, `unsafeDiscardStringContext`,
//! `unsafeDiscardOutputDependency`, `addDrvOutputDependencies`.

use std::collections::BTreeMap;

use super::{make_attrs, PrimOpDef};
use crate::error::{EvalError, EvalResult};
use crate::machine::Evaluator;
use crate::symbol::Symbol;
use crate::value::{Attr, Attrs, Context, Value};

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "getContext", arity: 1, fun: get_context },
    PrimOpDef { name: "hasContext", arity: 1, fun: has_context },
    PrimOpDef { name: "appendContext", arity: 2, fun: append_context },
    PrimOpDef { name: "unsafeDiscardStringContext", arity: 1, fun: discard },
    PrimOpDef { name: "unsafeDiscardOutputDependency", arity: 1, fun: discard_output_dependency },
    PrimOpDef { name: "addDrvOutputDependencies", arity: 1, fun: add_drv_output_dependencies },
];

/// One decoded context element.
pub enum ContextElem<'a> {
    /// A plain store path.
    Opaque(&'a str),
    /// A derivation and everything it depends on (`=drv`).
    DrvDeep(&'a str),
    /// One output of a derivation (`!out!drv`).
    Built {
        /// The output name.
        output: &'a str,
        /// The derivation's store path.
        drv: &'a str,
    },
}

/// Decodes a context element.
pub fn decode(elem: &str) -> ContextElem<'_> {
    if let Some(drv) = elem.strip_prefix('=') {
        return ContextElem::DrvDeep(drv);
    }
    if let Some(rest) = elem.strip_prefix('!') {
        if let Some((output, drv)) = rest.split_once('!') {
            return ContextElem::Built { output, drv };
        }
    }
    ContextElem::Opaque(elem)
}

fn get_context(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let s = ev.force_string(&args[0])?;
    #[derive(Default)]
    struct Info {
        path: bool,
        all_outputs: bool,
        outputs: Vec<String>,
    }
    let mut map: BTreeMap<String, Info> = BTreeMap::new();
    for elem in &s.context {
        match decode(elem) {
            ContextElem::Opaque(p) => map.entry(p.to_string()).or_default().path = true,
            ContextElem::DrvDeep(d) => map.entry(d.to_string()).or_default().all_outputs = true,
            ContextElem::Built { output, drv } => map.entry(drv.to_string()).or_default().outputs.push(output.to_string()),
        }
    }
    let entries = map
        .into_iter()
        .map(|(path, info)| {
            let mut fields = Vec::new();
            if info.all_outputs {
                fields.push(("allOutputs", Value::Bool(true)));
            }
            if !info.outputs.is_empty() {
                fields.push(("outputs", Value::list(info.outputs.into_iter().map(Value::string).collect())));
            }
            if info.path {
                fields.push(("path", Value::Bool(true)));
            }
            Attr { name: Symbol::new(&path), value: make_attrs(fields), pos: None }
        })
        .collect();
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

fn has_context(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    Ok(Value::Bool(!ev.force_string(&args[0])?.context.is_empty()))
}

fn discard(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    Ok(Value::string(ev.force_string(&args[0])?.text.clone()))
}

fn discard_output_dependency(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let s = ev.force_string(&args[0])?;
    let ctx: Context = s
        .context
        .iter()
        .map(|e| match decode(e) {
            ContextElem::DrvDeep(d) => d.to_string(),
            _ => e.clone(),
        })
        .collect();
    Ok(Value::string_with_context(s.text.clone(), ctx))
}

fn add_drv_output_dependencies(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let s = ev.force_string(&args[0])?;
    if s.context.len() != 1 {
        return Err(EvalError::other(format!(
            "context of string '{}' must have exactly one element, but has {}",
            s.text,
            s.context.len()
        )));
    }
    let ctx: Context = s
        .context
        .iter()
        .map(|e| match decode(e) {
            ContextElem::Opaque(p) if p.ends_with(".drv") => Ok(format!("={p}")),
            ContextElem::Opaque(p) => Err(EvalError::other(format!("path '{p}' is not a derivation"))),
            ContextElem::DrvDeep(_) => Ok(e.clone()),
            ContextElem::Built { output, .. } => Err(EvalError::other(format!(
                "`addDrvOutputDependencies` can only act on derivations, not on a derivation output such as '{output}'"
            ))),
        })
        .collect::<EvalResult<_>>()?;
    Ok(Value::string_with_context(s.text.clone(), ctx))
}

fn append_context(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let s = ev.force_string(&args[0])?;
    let extra = ev.force_attrs(&args[1])?;
    let mut ctx = s.context.clone();
    let store_dir = ev.io.store_dir().as_str().to_string();
    for attr in extra.iter() {
        let path = attr.name.as_str();
        if !path.starts_with(&store_dir) {
            return Err(EvalError::other(format!("context key '{path}' is not a store path")));
        }
        let info = ev.force_attrs(&attr.value)?;
        if let Some(p) = info.get(Symbol::new("path")).cloned() {
            if ev.expect_bool(&p)? {
                ctx.insert(path.to_string());
            }
        }
        if let Some(p) = info.get(Symbol::new("allOutputs")).cloned() {
            if ev.expect_bool(&p)? {
                if !path.ends_with(".drv") {
                    return Err(EvalError::other(format!(
                        "tried to add all-outputs context of {path}, which is not a derivation, to a string"
                    )));
                }
                ctx.insert(format!("={path}"));
            }
        }
        if let Some(o) = info.get(Symbol::new("outputs")).cloned() {
            let outs = ev.force_list(&o)?;
            if !outs.is_empty() && !path.ends_with(".drv") {
                return Err(EvalError::other(format!(
                    "tried to add derivation output context of {path}, which is not a derivation, to a string"
                )));
            }
            for out in outs.iter() {
                let name = ev.force_str(out)?;
                ctx.insert(format!("!{name}!{path}"));
            }
        }
    }
    Ok(Value::string_with_context(s.text.clone(), ctx))
}
