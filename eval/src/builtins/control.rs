//! Control: `throw`, `abort`, `seq`, `deepSeq`, `tryEval`, `addErrorContext`, `trace`, `warn`,
//! `break`.

use super::{make_attrs, PrimOpDef};
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Evaluator;
use crate::value::{Context, Value};

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "throw", arity: 1, fun: throw },
    PrimOpDef { name: "abort", arity: 1, fun: abort },
    PrimOpDef { name: "seq", arity: 2, fun: seq },
    PrimOpDef { name: "deepSeq", arity: 2, fun: deep_seq },
    PrimOpDef { name: "tryEval", arity: 1, fun: try_eval },
    PrimOpDef { name: "addErrorContext", arity: 2, fun: add_error_context },
    PrimOpDef { name: "trace", arity: 2, fun: trace },
    PrimOpDef { name: "traceVerbose", arity: 2, fun: trace_verbose },
    PrimOpDef { name: "warn", arity: 2, fun: warn },
    PrimOpDef { name: "break", arity: 1, fun: break_ },
];

fn message(ev: &mut Evaluator, v: &Value) -> EvalResult<String> {
    let mut ctx = Context::new();
    ev.coerce_to_string(v, &mut ctx, false, false)
}

fn throw(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let msg = message(ev, &args[0])?;
    Err(EvalError::new(ErrorKind::Throw, msg))
}

fn abort(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let msg = message(ev, &args[0])?;
    Err(EvalError::new(ErrorKind::Abort, format!("evaluation aborted with the following error message: '{msg}'")))
}

fn seq(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    ev.force(&args[0])?;
    ev.force(&args[1])
}

fn deep_seq(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    ev.deep_force(&args[0])?;
    ev.force(&args[1])
}

fn try_eval(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    match ev.force(&args[0]) {
        Ok(v) => Ok(make_attrs(vec![("success", Value::Bool(true)), ("value", v)])),
        Err(e) if e.is_catchable() => {
            Ok(make_attrs(vec![("success", Value::Bool(false)), ("value", Value::Bool(false))]))
        }
        Err(e) => Err(e),
    }
}

fn add_error_context(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    match ev.force(&args[1]) {
        Ok(v) => Ok(v),
        Err(e) => {
            let msg = message(ev, &args[0]).unwrap_or_default();
            Err(e.with_context(msg))
        }
    }
}

fn print_trace(ev: &mut Evaluator, v: &Value, prefix: &str) -> EvalResult<()> {
    let v = ev.force(v)?;
    let text = match &v {
        Value::String(s) => s.text.clone(),
        other => crate::print::error_repr(other),
    };
    eprintln!("{prefix}{text}");
    Ok(())
}

fn trace(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    print_trace(ev, &args[0], "trace: ")?;
    ev.force(&args[1])
}

fn trace_verbose(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    ev.force(&args[1])
}

fn warn(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let msg = ev.force_string(&args[0])?;
    eprintln!("evaluation warning: {}", msg.text);
    if ev.options.abort_on_warn {
        return Err(EvalError::new(
            ErrorKind::Abort,
            "aborting to reveal stack trace of warning, as abort-on-warn is set",
        ));
    }
    ev.force(&args[1])
}

fn break_(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    ev.force(&args[0])
}
