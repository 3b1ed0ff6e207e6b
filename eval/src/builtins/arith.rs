//! Arithmetic and bit operations: `add`, `sub`, `mul`, `div`, `lessThan`, `bitAnd`, `ceil`, ...

use super::PrimOpDef;
use crate::error::{EvalError, EvalResult};
use crate::expr::BinOp;
use crate::machine::Evaluator;
use crate::ops::arith;
use crate::value::Value;

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "add", arity: 2, fun: add },
    PrimOpDef { name: "sub", arity: 2, fun: sub },
    PrimOpDef { name: "mul", arity: 2, fun: mul },
    PrimOpDef { name: "div", arity: 2, fun: div },
    PrimOpDef { name: "lessThan", arity: 2, fun: less_than },
    PrimOpDef { name: "bitAnd", arity: 2, fun: bit_and },
    PrimOpDef { name: "bitOr", arity: 2, fun: bit_or },
    PrimOpDef { name: "bitXor", arity: 2, fun: bit_xor },
    PrimOpDef { name: "ceil", arity: 1, fun: ceil },
    PrimOpDef { name: "floor", arity: 1, fun: floor },
];

fn numbers(ev: &mut Evaluator, args: &[Value]) -> EvalResult<(Value, Value)> {
    let a = ev.force(args.first().unwrap_or(&Value::Null))?;
    let b = ev.force(args.get(1).unwrap_or(&Value::Null))?;
    for v in [&a, &b] {
        if !matches!(v, Value::Int(_) | Value::Float(_)) {
            return Err(EvalError::type_error(format!(
                "expected an integer but found {}: {}",
                v.describe(),
                crate::print::error_repr(v)
            )));
        }
    }
    Ok((a, b))
}

fn add(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let (a, b) = numbers(ev, &args)?;
    arith(BinOp::Add, &a, &b)
}

fn sub(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let (a, b) = numbers(ev, &args)?;
    arith(BinOp::Sub, &a, &b)
}

fn mul(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let (a, b) = numbers(ev, &args)?;
    arith(BinOp::Mul, &a, &b)
}

fn div(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let (a, b) = numbers(ev, &args)?;
    arith(BinOp::Div, &a, &b)
}

fn less_than(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    Ok(Value::Bool(ev.less_than(&args[0], &args[1])?))
}

fn ints(ev: &mut Evaluator, args: &[Value]) -> EvalResult<(i64, i64)> {
    Ok((ev.force_int(&args[0])?, ev.force_int(&args[1])?))
}

fn bit_and(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let (a, b) = ints(ev, &args)?;
    Ok(Value::Int(a & b))
}

fn bit_or(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let (a, b) = ints(ev, &args)?;
    Ok(Value::Int(a | b))
}

fn bit_xor(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let (a, b) = ints(ev, &args)?;
    Ok(Value::Int(a ^ b))
}

fn round_with(ev: &mut Evaluator, v: &Value, f: fn(f64) -> f64, what: &str) -> EvalResult<Value> {
    match ev.force(v)? {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Float(x) => {
            let r = f(x);
            if !(-9.223372036854776e18..9.223372036854776e18).contains(&r) {
                return Err(EvalError::other(format!("NixFloat would be out of range of NixInt after {what}: {}", crate::print::format_float(x))));
            }
            Ok(Value::Int(r as i64))
        }
        other => Err(EvalError::type_error(format!(
            "expected a float but found {}: {}",
            other.describe(),
            crate::print::error_repr(&other)
        ))),
    }
}

fn ceil(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    round_with(ev, &args[0], f64::ceil, "ceil")
}

fn floor(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    round_with(ev, &args[0], f64::floor, "floor")
}
