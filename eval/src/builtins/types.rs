//! Type predicates and conversions: `typeOf`, `isInt`, ..., `toString`.

use super::PrimOpDef;
use crate::error::EvalResult;
use crate::machine::Evaluator;
use crate::value::{Context, Value};

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "typeOf", arity: 1, fun: type_of },
    PrimOpDef { name: "isNull", arity: 1, fun: is_null },
    PrimOpDef { name: "isBool", arity: 1, fun: is_bool },
    PrimOpDef { name: "isInt", arity: 1, fun: is_int },
    PrimOpDef { name: "isFloat", arity: 1, fun: is_float },
    PrimOpDef { name: "isString", arity: 1, fun: is_string },
    PrimOpDef { name: "isPath", arity: 1, fun: is_path },
    PrimOpDef { name: "isAttrs", arity: 1, fun: is_attrs },
    PrimOpDef { name: "isList", arity: 1, fun: is_list },
    PrimOpDef { name: "isFunction", arity: 1, fun: is_function },
    PrimOpDef { name: "toString", arity: 1, fun: to_string },
];

fn forced(ev: &mut Evaluator, args: &[Value]) -> EvalResult<Value> {
    match args.first() {
        Some(v) => ev.force(v),
        None => Ok(Value::Null),
    }
}

fn type_of(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    Ok(Value::string(forced(ev, &args)?.type_of()))
}

fn is_null(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    Ok(Value::Bool(matches!(forced(ev, &args)?, Value::Null)))
}

fn is_bool(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    Ok(Value::Bool(matches!(forced(ev, &args)?, Value::Bool(_))))
}

fn is_int(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    Ok(Value::Bool(matches!(forced(ev, &args)?, Value::Int(_))))
}

fn is_float(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    Ok(Value::Bool(matches!(forced(ev, &args)?, Value::Float(_))))
}

fn is_string(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    Ok(Value::Bool(matches!(forced(ev, &args)?, Value::String(_))))
}

fn is_path(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    Ok(Value::Bool(matches!(forced(ev, &args)?, Value::Path(_))))
}

fn is_attrs(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    Ok(Value::Bool(matches!(forced(ev, &args)?, Value::Attrs(_))))
}

fn is_list(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    Ok(Value::Bool(matches!(forced(ev, &args)?, Value::List(_))))
}

fn is_function(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    Ok(Value::Bool(forced(ev, &args)?.is_function()))
}

fn to_string(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let v = forced(ev, &args)?;
    let s = ev.coerce_to_string(&v, &mut ctx, true, false)?;
    Ok(Value::string_with_context(s, ctx))
}
