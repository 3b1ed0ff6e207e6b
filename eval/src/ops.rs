//! Operators, equality, comparison, and the type-checking accessors builtins use.

use crate::env::EnvRef;
use crate::error::{EvalError, EvalResult};
use crate::expr::{BinOp, ExprRef};
use crate::machine::{with_stack, Evaluator};
use crate::print::error_repr;
use crate::source::Pos;
use crate::symbol::Symbol;
use crate::value::{Attrs, Context, List, NixString, Thunk, Value, ValueRc};

fn expected(what: &str, v: &Value) -> EvalError {
    EvalError::type_error(format!("expected {what} but found {}: {}", v.describe(), error_repr(v)))
}

impl Evaluator {
    /// A forced value that must be a Boolean.
    #[inline]
    pub fn expect_bool(&mut self, v: &Value) -> EvalResult<bool> {
        if let Value::Bool(b) = v {
            return Ok(*b);
        }
        match self.force(v)? {
            Value::Bool(b) => Ok(b),
            other => Err(expected("a Boolean", &other)),
        }
    }

    /// A Boolean from a value already forced that the caller gives up (no drop call for a
    /// Boolean), else the error of [`Evaluator::expect_bool`] at `pos`.
    #[inline(always)]
    pub(crate) fn take_bool(&mut self, v: Value, pos: &Pos) -> EvalResult<bool> {
        match v {
            Value::Bool(b) => Ok(b),
            other => self.expect_bool(&other).map_err(|e| e.at(pos)),
        }
    }

    /// Forces a value that must be an integer.
    pub fn force_int(&mut self, v: &Value) -> EvalResult<i64> {
        match self.force(v)? {
            Value::Int(i) => Ok(i),
            other => Err(expected("an integer", &other)),
        }
    }

    /// Forces a value that must be a number, as a float.
    pub fn force_float(&mut self, v: &Value) -> EvalResult<f64> {
        match self.force(v)? {
            Value::Int(i) => Ok(i as f64),
            Value::Float(f) => Ok(f),
            other => Err(expected("a float", &other)),
        }
    }

    /// Forces a value that must be an attribute set.
    pub fn force_attrs(&mut self, v: &Value) -> EvalResult<Attrs> {
        match self.force(v)? {
            Value::Attrs(a) => Ok(a),
            other => Err(expected("a set", &other)),
        }
    }

    /// Forces a value that must be a list.
    pub fn force_list(&mut self, v: &Value) -> EvalResult<List> {
        match self.force(v)? {
            Value::List(l) => Ok(l),
            other => Err(expected("a list", &other)),
        }
    }

    /// Forces a value that must be a function.
    pub fn force_function(&mut self, v: &Value) -> EvalResult<Value> {
        let f = self.force(v)?;
        match &f {
            Value::Lambda(_) | Value::PrimOp(_) => Ok(f),
            Value::Attrs(a) if a.get(Symbol::new("__functor")).is_some() => Ok(f),
            other => Err(expected("a function", other)),
        }
    }

    /// Forces a value that must be a string (no coercion), with its context.
    pub fn force_string(&mut self, v: &Value) -> EvalResult<ValueRc<NixString>> {
        match self.force(v)? {
            Value::String(s) => Ok(s),
            other => Err(expected("a string", &other)),
        }
    }

    /// Forces a string and returns its text, ignoring context.
    pub fn force_str(&mut self, v: &Value) -> EvalResult<String> {
        Ok(self.force_string(v)?.text.clone())
    }

    pub(crate) fn eval_binop(&mut self, op: BinOp, l: &ExprRef, r: &ExprRef, pos: &Pos, env: &EnvRef) -> EvalResult<Value> {
        match op {
            BinOp::And => {
                let lv = self.eval(l, env)?;
                if !self.take_bool(lv, pos)? {
                    return Ok(Value::Bool(false));
                }
                let rv = self.eval(r, env)?;
                Ok(Value::Bool(self.take_bool(rv, pos)?))
            }
            BinOp::Or => {
                let lv = self.eval(l, env)?;
                if self.take_bool(lv, pos)? {
                    return Ok(Value::Bool(true));
                }
                let rv = self.eval(r, env)?;
                Ok(Value::Bool(self.take_bool(rv, pos)?))
            }
            BinOp::Implies => {
                let lv = self.eval(l, env)?;
                if !self.take_bool(lv, pos)? {
                    return Ok(Value::Bool(true));
                }
                let rv = self.eval(r, env)?;
                Ok(Value::Bool(self.take_bool(rv, pos)?))
            }
            BinOp::PipeLeft | BinOp::PipeRight => Err(EvalError::other("pipe operators are not supported").at(pos)),
            _ => {
                let lv = self.eval(l, env)?;
                let rv = self.eval(r, env)?;
                if let (Value::Int(a), Value::Int(b)) = (&lv, &rv) {
                    if let Some(v) = int_binop(op, *a, *b) {
                        return Ok(v);
                    }
                }
                self.binop_values(op, lv, rv).map_err(|e| e.at(pos))
            }
        }
    }

    /// `a + b` as Nix's `ExprConcatStrings` of two operands: numbers add (errors at the right
    /// operand); otherwise the left operand's type decides, and each operand is coerced with
    /// the frame "while evaluating a path segment" at its position.
    pub(crate) fn add_values(&mut self, lv: Value, rv: Value, lpos: &Pos, rpos: &Pos) -> EvalResult<Value> {
        let segment = "while evaluating a path segment";
        let (lv, rv) = match (lv, rv) {
            // Matched by value: two integers are not dropped (no call).
            (Value::Int(a), Value::Int(b)) => match a.checked_add(b) {
                Some(sum) => return Ok(Value::Int(sum)),
                None => (Value::Int(a), Value::Int(b)),
            },
            other => other,
        };
        match (&lv, &rv) {
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => arith(BinOp::Add, &lv, &rv).map_err(|e| e.at(rpos)),
            (Value::Int(_), other) => Err(EvalError::other(format!("cannot add {} to an integer", other.describe())).at(rpos)),
            (Value::Float(_), other) => Err(EvalError::other(format!("cannot add {} to a float", other.describe())).at(rpos)),
            (Value::Path(p), _) => {
                let mut ctx = Context::new();
                let rest = self.coerce_to_string(&rv, &mut ctx, false, false).map_err(|e| e.with_frame(Some(rpos), segment))?;
                if !ctx.is_empty() {
                    return Err(EvalError::other("a string that refers to a store path cannot be appended to a path").at(rpos));
                }
                Ok(Value::Path(crate::path::canonicalize(&format!("{p}{rest}")).into()))
            }
            _ => {
                let mut ctx = Context::new();
                let mut out = self.coerce_to_string(&lv, &mut ctx, false, true).map_err(|e| e.with_frame(Some(lpos), segment))?;
                out.push_str(&self.coerce_to_string(&rv, &mut ctx, false, true).map_err(|e| e.with_frame(Some(rpos), segment))?);
                Ok(Value::string_with_context(out, ctx))
            }
        }
    }

    /// Applies a strict binary operator to two forced values.
    pub fn binop_values(&mut self, op: BinOp, lv: Value, rv: Value) -> EvalResult<Value> {
        match op {
            BinOp::Eq => Ok(Value::Bool(self.values_equal(&lv, &rv, false)?)),
            BinOp::NotEq => Ok(Value::Bool(!self.values_equal(&lv, &rv, false)?)),
            BinOp::Less => Ok(Value::Bool(self.less_than(&lv, &rv)?)),
            BinOp::Greater => Ok(Value::Bool(self.less_than(&rv, &lv)?)),
            BinOp::LessEq => Ok(Value::Bool(!self.less_than(&rv, &lv)?)),
            BinOp::GreaterEq => Ok(Value::Bool(!self.less_than(&lv, &rv)?)),
            BinOp::Concat => {
                let a = self.force_list(&lv)?;
                let b = self.force_list(&rv)?;
                if b.is_empty() {
                    return Ok(Value::List(a));
                }
                if a.is_empty() {
                    return Ok(Value::List(b));
                }
                Ok(Value::list_from(a.len() + b.len(), a.iter().chain(b.iter()).cloned()))
            }
            BinOp::Update => {
                let a = self.force_attrs(&lv)?;
                let b = self.force_attrs(&rv)?;
                if b.is_empty() {
                    return Ok(Value::Attrs(a));
                }
                if a.is_empty() {
                    return Ok(Value::Attrs(b));
                }
                Ok(Value::attrs(a.update(&b)))
            }
            BinOp::Add => match (&lv, &rv) {
                (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => arith(op, &lv, &rv),
                _ => self.concat_values(vec![lv, rv], false),
            },
            BinOp::Sub | BinOp::Mul | BinOp::Div => arith(op, &lv, &rv),
            BinOp::And | BinOp::Or | BinOp::Implies | BinOp::PipeLeft | BinOp::PipeRight => {
                Err(EvalError::other("internal error: lazy operator applied strictly"))
            }
        }
    }

    pub(crate) fn eval_concat(&mut self, parts: &[(ExprRef, Pos)], force_string: bool, pos: &Pos, env: &EnvRef) -> EvalResult<Value> {
        let mut values = Vec::with_capacity(parts.len());
        for (p, _) in parts {
            values.push(self.eval(p, env)?);
        }
        if force_string {
            let mut ctx = Context::new();
            let mut out = String::new();
            for (v, (_, part_pos)) in values.iter().zip(parts) {
                let s = self
                    .coerce_to_string(v, &mut ctx, false, true)
                    .map_err(|e| e.with_frame(Some(part_pos), "while evaluating a path segment"))?;
                out.push_str(&s);
            }
            return Ok(Value::string_with_context(out, ctx));
        }
        self.concat_values(values, false).map_err(|e| e.at(pos))
    }

    /// `+` and path interpolation: the first value's type decides the result's.
    pub fn concat_values(&mut self, values: Vec<Value>, _unused: bool) -> EvalResult<Value> {
        let first = match values.first() {
            Some(v) => self.force(v)?,
            None => return Ok(Value::string("")),
        };
        match first {
            Value::Int(_) | Value::Float(_) => {
                let mut acc = first.clone();
                for v in &values[1..] {
                    let v = self.force(v)?;
                    acc = match (&acc, &v) {
                        (Value::Int(_), Value::String(_) | Value::Path(_) | Value::Attrs(_) | Value::List(_) | Value::Null | Value::Bool(_)) => {
                            return Err(EvalError::other(format!("cannot add {} to an integer", v.describe())))
                        }
                        (Value::Float(_), Value::String(_) | Value::Path(_) | Value::Attrs(_) | Value::List(_) | Value::Null | Value::Bool(_)) => {
                            return Err(EvalError::other(format!("cannot add {} to a float", v.describe())))
                        }
                        _ => arith(BinOp::Add, &acc, &v)?,
                    };
                }
                Ok(acc)
            }
            Value::Path(_) => {
                let mut ctx = Context::new();
                let mut out = String::new();
                for (i, v) in values.iter().enumerate() {
                    let v = self.force(v)?;
                    let s = match (&v, i) {
                        (Value::Path(p), 0) => p.to_string(),
                        _ => self.coerce_to_string(&v, &mut ctx, false, false)?,
                    };
                    out.push_str(&s);
                }
                if !ctx.is_empty() {
                    return Err(EvalError::other("a string that refers to a store path cannot be appended to a path"));
                }
                Ok(Value::Path(crate::path::canonicalize(&out).into()))
            }
            _ => {
                let mut ctx = Context::new();
                let mut out = String::new();
                for v in &values {
                    let s = self.coerce_to_string(v, &mut ctx, false, true)?;
                    out.push_str(&s);
                }
                Ok(Value::string_with_context(out, ctx))
            }
        }
    }

    /// Nix's `coerceToString`: strings as they are, paths copied to the store (when `copy_to_store`)
    /// or as text, sets through `__toString` or `outPath`; with `coerce_more` also numbers,
    /// Booleans, `null` and lists.
    pub fn coerce_to_string(&mut self, v: &Value, ctx: &mut Context, coerce_more: bool, copy_to_store: bool) -> EvalResult<String> {
        let v = self.force(v)?;
        match &v {
            Value::String(s) => {
                ctx.extend(s.context.iter().cloned());
                Ok(s.text.clone())
            }
            Value::Path(p) => {
                if copy_to_store {
                    let sp = self.copy_path_to_store(p)?;
                    ctx.insert(sp.clone());
                    Ok(sp)
                } else {
                    Ok(p.to_string())
                }
            }
            Value::Attrs(a) => {
                if let Some(f) = a.get(Symbol::new("__toString")).cloned() {
                    let r = self.call(&f, std::slice::from_ref(&v))?;
                    return self.coerce_to_string(&r, ctx, coerce_more, copy_to_store);
                }
                match a.get(Symbol::new("outPath")).cloned() {
                    Some(out) => self.coerce_to_string(&out, ctx, coerce_more, copy_to_store),
                    None => Err(EvalError::type_error(format!("cannot coerce {} to a string: {}", v.describe(), error_repr(&v)))),
                }
            }
            Value::Bool(b) if coerce_more => Ok(if *b { "1".into() } else { String::new() }),
            Value::Int(i) if coerce_more => Ok(i.to_string()),
            Value::Float(f) if coerce_more => Ok(format!("{f:.6}")),
            Value::Null if coerce_more => Ok(String::new()),
            Value::List(items) if coerce_more => {
                let mut out = String::new();
                for (n, item) in items.iter().enumerate() {
                    out.push_str(&self.coerce_to_string(item, ctx, coerce_more, copy_to_store)?);
                    if n + 1 < items.len() {
                        let item = self.force(item)?;
                        let empty_list = matches!(&item, Value::List(l) if l.is_empty());
                        if !empty_list {
                            out.push(' ');
                        }
                    }
                }
                Ok(out)
            }
            other => Err(EvalError::type_error(format!("cannot coerce {} to a string: {}", other.describe(), error_repr(other)))),
        }
    }

    /// Copies a path into the store (through the I/O interface) and returns the store path.
    pub fn copy_path_to_store(&mut self, path: &str) -> EvalResult<String> {
        if path.starts_with(self.io.store_dir().as_str()) && path[self.io.store_dir().as_str().len()..].starts_with('/') {
            // Already in the store: `${/nix/store/x}` stays as it is.
            let rest = &path[self.io.store_dir().as_str().len() + 1..];
            if !rest.contains('/') {
                return Ok(path.to_string());
            }
        }
        let name = crate::path::base_name(path).to_string();
        self.io
            .add_path_to_store(path, &name, &mut |_, _| Ok(true))
            .map_err(|e| EvalError::new(crate::error::ErrorKind::Io, e.to_string()))
    }

    /// Nix's equality. `nested` enables the identity shortcut Nix has for list elements and
    /// attribute values (so `[ f ] == [ f ]` holds while `f == f` does not).
    pub fn values_equal(&mut self, a: &Value, b: &Value, nested: bool) -> EvalResult<bool> {
        if nested {
            match (a, b) {
                (Value::Thunk(x), Value::Thunk(y)) if Thunk::ptr_eq(x, y) => return Ok(true),
                (Value::Lambda(x), Value::Lambda(y)) if ValueRc::ptr_eq(x, y) => return Ok(true),
                (Value::Attrs(x), Value::Attrs(y)) if Attrs::ptr_eq(x, y) => return Ok(true),
                (Value::List(x), Value::List(y)) if List::ptr_eq(x, y) => return Ok(true),
                _ => {}
            }
        }
        let a = self.force(a)?;
        let b = self.force(b)?;
        if nested {
            match (&a, &b) {
                (Value::Lambda(x), Value::Lambda(y)) if ValueRc::ptr_eq(x, y) => return Ok(true),
                (Value::PrimOp(x), Value::PrimOp(y)) if ValueRc::ptr_eq(x, y) => return Ok(true),
                _ => {}
            }
        }
        with_stack(|| self.values_equal_forced(&a, &b))
    }

    fn values_equal_forced(&mut self, a: &Value, b: &Value) -> EvalResult<bool> {
        Ok(match (a, b) {
            (Value::Int(x), Value::Int(y)) => x == y,
            (Value::Int(x), Value::Float(y)) => (*x as f64) == *y,
            (Value::Float(x), Value::Int(y)) => *x == (*y as f64),
            (Value::Float(x), Value::Float(y)) => x == y,
            (Value::String(x), Value::String(y)) => x.text == y.text,
            (Value::Path(x), Value::Path(y)) => x == y,
            (Value::Null, Value::Null) => true,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::List(x), Value::List(y)) => {
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (p, q) in x.iter().zip(y.iter()) {
                    if !self.values_equal(p, q, true)? {
                        return Ok(false);
                    }
                }
                true
            }
            (Value::Attrs(x), Value::Attrs(y)) => {
                if Attrs::ptr_eq(x, y) {
                    return Ok(true);
                }
                if self.is_derivation(x)? && self.is_derivation(y)? {
                    let out = Symbol::new("outPath");
                    if let (Some(p), Some(q)) = (x.get(out).cloned(), y.get(out).cloned()) {
                        return self.values_equal(&p, &q, true);
                    }
                }
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (p, q) in x.iter().zip(y.iter()) {
                    if p.name != q.name || !self.values_equal(&p.value, &q.value, true)? {
                        return Ok(false);
                    }
                }
                true
            }
            _ => false,
        })
    }

    /// Whether a set is a derivation (`type = "derivation"`).
    pub fn is_derivation(&mut self, attrs: &Attrs) -> EvalResult<bool> {
        match attrs.get(Symbol::new("type")).cloned() {
            Some(t) => match self.force(&t)? {
                Value::String(s) => Ok(s.text == "derivation"),
                _ => Ok(false),
            },
            None => Ok(false),
        }
    }

    /// `a < b` as Nix's `lessThan`.
    pub fn less_than(&mut self, a: &Value, b: &Value) -> EvalResult<bool> {
        let a = self.force(a)?;
        let b = self.force(b)?;
        Ok(match (&a, &b) {
            (Value::Int(x), Value::Int(y)) => x < y,
            (Value::Int(x), Value::Float(y)) => (*x as f64) < *y,
            (Value::Float(x), Value::Int(y)) => *x < (*y as f64),
            (Value::Float(x), Value::Float(y)) => x < y,
            (Value::String(x), Value::String(y)) => x.text < y.text,
            (Value::Path(x), Value::Path(y)) => **x < **y,
            (Value::List(x), Value::List(y)) => {
                let mut i = 0;
                loop {
                    match (x.get(i), y.get(i)) {
                        (_, None) => return Ok(false),
                        (None, Some(_)) => return Ok(true),
                        (Some(p), Some(q)) => {
                            if !self.values_equal(p, q, true)? {
                                return self.less_than(p, q);
                            }
                        }
                    }
                    i += 1;
                }
            }
            _ if std::mem::discriminant(&a) != std::mem::discriminant(&b) => {
                return Err(EvalError::other(format!("cannot compare {} with {}", a.describe(), b.describe())))
            }
            _ => {
                return Err(EvalError::other(format!(
                    "cannot compare {} with {}; values of that type are incomparable",
                    a.describe(),
                    b.describe()
                )))
            }
        })
    }

    /// Forces a value completely (lists and sets recursively), as `deepSeq` and `--strict` do.
    pub fn deep_force(&mut self, v: &Value) -> EvalResult<Value> {
        let mut seen = std::collections::HashSet::new();
        self.deep_force_inner(v, &mut seen)
    }

    fn deep_force_inner(&mut self, v: &Value, seen: &mut std::collections::HashSet<usize>) -> EvalResult<Value> {
        let v = self.force(v)?;
        with_stack(|| {
            match &v {
                Value::Attrs(a) => {
                    if !seen.insert(a.addr()) {
                        return Ok(());
                    }
                    for attr in a.iter() {
                        self.deep_force_inner(&attr.value, seen).map_err(|e| {
                            let pos = attr.pos;
                            e.with_frame(pos.as_ref(), format!("while evaluating the attribute '{}'", attr.name))
                        })?;
                    }
                }
                Value::List(l) => {
                    if !seen.insert(l.addr()) {
                        return Ok(());
                    }
                    for item in l.iter() {
                        self.deep_force_inner(item, seen)?;
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok(v)
    }
}

/// Comparisons and subtraction or multiplication of two integers that cannot fail (`None`:
/// take the general path, which reports overflow).
#[inline(always)]
fn int_binop(op: BinOp, a: i64, b: i64) -> Option<Value> {
    Some(match op {
        BinOp::Eq => Value::Bool(a == b),
        BinOp::NotEq => Value::Bool(a != b),
        BinOp::Less => Value::Bool(a < b),
        BinOp::Greater => Value::Bool(a > b),
        BinOp::LessEq => Value::Bool(a <= b),
        BinOp::GreaterEq => Value::Bool(a >= b),
        BinOp::Sub => Value::Int(a.checked_sub(b)?),
        BinOp::Mul => Value::Int(a.checked_mul(b)?),
        _ => return None,
    })
}

/// Integer and float arithmetic with Nix's overflow and division rules.
pub fn arith(op: BinOp, a: &Value, b: &Value) -> EvalResult<Value> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => {
            let (x, y) = (*x, *y);
            let r = match op {
                BinOp::Add => x.checked_add(y).ok_or_else(|| EvalError::other(format!("integer overflow in adding {x} + {y}")))?,
                BinOp::Sub => x.checked_sub(y).ok_or_else(|| EvalError::other(format!("integer overflow in subtracting {x} - {y}")))?,
                BinOp::Mul => x.checked_mul(y).ok_or_else(|| EvalError::other(format!("integer overflow in multiplying {x} * {y}")))?,
                BinOp::Div => {
                    if y == 0 {
                        return Err(EvalError::other("division by zero"));
                    }
                    x.checked_div(y).ok_or_else(|| EvalError::other(format!("integer overflow in dividing {x} / {y}")))?
                }
                _ => return Err(EvalError::other("internal error: not arithmetic")),
            };
            Ok(Value::Int(r))
        }
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let x = match a {
                Value::Int(i) => *i as f64,
                Value::Float(f) => *f,
                _ => 0.0,
            };
            let y = match b {
                Value::Int(i) => *i as f64,
                Value::Float(f) => *f,
                _ => 0.0,
            };
            Ok(Value::Float(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => {
                    if y == 0.0 {
                        return Err(EvalError::other("division by zero"));
                    }
                    x / y
                }
                _ => return Err(EvalError::other("internal error: not arithmetic")),
            }))
        }
        (Value::Int(_) | Value::Float(_), other) | (other, _) => {
            let what = match op {
                BinOp::Add => "add",
                BinOp::Sub => "subtract",
                BinOp::Mul => "multiply",
                _ => "divide",
            };
            let _ = what;
            Err(EvalError::type_error(format!("expected an integer but found {}: {}", other.describe(), error_repr(other))))
        }
    }
}
