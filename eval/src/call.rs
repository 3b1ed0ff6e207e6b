//! Function application: one argument at a time as Nix defines it, with fast paths for calls
//! given several arguments at once (`f a b`, builtins calling back): a builtin given all its
//! arguments is called without building its partial applications, and a curried function
//! `x: y: ...` binds its arguments one after another without allocating the closures in between.

use std::rc::Rc;

use crate::env::EnvRef;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::expr::{Expr, LambdaExpr};
use crate::machine::Evaluator;
use crate::source::Pos;
use crate::symbol::Symbol;
use crate::value::{PrimOpApp, Value};

/// The arguments of one call, inline when few.
pub type Args = smallvec::SmallVec<[Value; 4]>;

impl Evaluator {
    /// Applies a function to an argument (forcing the function).
    pub fn apply(&mut self, f: Value, arg: Value, pos: Option<&Pos>) -> EvalResult<Value> {
        let f = self.force_value(f)?;
        self.enter_call(pos)?;
        // No stack check here: a function's body is run by `eval`, which checks, and builtins
        // that recurse check themselves.
        let result = match f {
            Value::Lambda(closure) => match self.bind_arguments(&closure.lambda, &closure.env, arg, pos) {
                Ok(env) => self.run_body(&closure.lambda, &env, pos),
                Err(e) => Err(e),
            },
            other => self.apply_forced(other, arg, pos),
        };
        self.call_depth -= 1;
        result
    }

    /// Applies `f` to `args` one after another, as many single applications would (the same
    /// results, errors and call depth), without the intermediate partial applications.
    pub fn apply_many(&mut self, f: Value, args: &[Value], pos: Option<&Pos>) -> EvalResult<Value> {
        let mut f = f;
        let mut next = 0;
        while next < args.len() {
            f = self.force_value(f)?;
            let rest = &args[next..];
            match &f {
                Value::PrimOp(app) if app.args.is_empty() && app.op.arity > 1 && rest.len() >= app.op.arity => {
                    let op = app.op;
                    let given: Vec<Value> = rest[..op.arity].to_vec();
                    next += op.arity;
                    self.enter_call(pos)?;
                    let result = self.call_primop(op, given, pos);
                    self.call_depth -= 1;
                    f = result?;
                }
                Value::Lambda(closure) if rest.len() > 1 => {
                    let (lambda, env) = (closure.lambda.clone(), closure.env.clone());
                    let (v, used) = self.call_curried(lambda, env, rest, pos)?;
                    next += used;
                    f = v;
                }
                _ => {
                    self.enter_call(pos)?;
                    let result = self.apply_forced(f, rest[0].clone(), pos);
                    self.call_depth -= 1;
                    f = result?;
                    next += 1;
                }
            }
        }
        Ok(f)
    }

    /// Counts a call against `max-call-depth`.
    fn enter_call(&mut self, pos: Option<&Pos>) -> EvalResult<()> {
        self.call_depth += 1;
        if self.call_depth > self.options.max_call_depth {
            self.call_depth -= 1;
            let err = EvalError::new(ErrorKind::StackOverflow, "stack overflow; max-call-depth exceeded");
            return Err(match pos {
                Some(p) => err.at(p),
                None => err,
            });
        }
        Ok(())
    }

    pub(crate) fn apply_forced(&mut self, f: Value, arg: Value, pos: Option<&Pos>) -> EvalResult<Value> {
        match f {
            Value::Lambda(closure) => {
                let env = self.bind_arguments(&closure.lambda, &closure.env, arg, pos)?;
                self.run_body(&closure.lambda, &env, pos)
            }
            Value::PrimOp(app) => {
                let mut args = Vec::with_capacity(app.args.len() + 1);
                args.extend(app.args.iter().cloned());
                args.push(arg);
                if args.len() < app.op.arity {
                    return Ok(Value::PrimOp(crate::value::ValueRc::new(PrimOpApp { op: app.op, args })));
                }
                self.call_primop(app.op, args, pos)
            }
            Value::Attrs(ref attrs) if attrs.get(Symbol::new("__functor")).is_some() => {
                let functor = attrs.get(Symbol::new("__functor")).cloned().unwrap_or(Value::Null);
                let inner = self.apply(functor, f.clone(), pos)?;
                self.apply(inner, arg, pos)
            }
            other => {
                let err = EvalError::type_error(format!(
                    "attempt to call something which is not a function but {}: {}",
                    other.describe(),
                    crate::print::error_repr(&other)
                ));
                Err(match pos {
                    Some(p) => err.at(p),
                    None => err,
                })
            }
        }
    }

    /// Calls a builtin with all its arguments.
    fn call_primop(&mut self, op: &'static crate::builtins::PrimOpDef, args: Vec<Value>, pos: Option<&Pos>) -> EvalResult<Value> {
        // The call site is in the frame; the error itself keeps only a position of its own.
        // `addErrorContext` adds its own frame instead (Nix's `addTrace = false`).
        (op.fun)(self, args).map_err(|e| {
            if op.name == "addErrorContext" {
                e
            } else {
                e.with_frame(pos, format!("while calling the '{}' builtin", op.name))
            }
        })
    }

    /// Calls a curried function with several arguments: each call's environment becomes the
    /// next function's closure environment while the body is itself a function and arguments
    /// remain. Returns the result and how many arguments were used.
    fn call_curried(&mut self, lambda: Rc<LambdaExpr>, env: EnvRef, args: &[Value], pos: Option<&Pos>) -> EvalResult<(Value, usize)> {
        let (mut lambda, mut closure_env) = (lambda, env);
        let mut used = 0;
        loop {
            self.enter_call(pos)?;
            let bound = self.bind_arguments(&lambda, &closure_env, args[used].clone(), pos);
            used += 1;
            let env = match bound {
                Ok(env) => env,
                Err(e) => {
                    self.call_depth -= 1;
                    return Err(e);
                }
            };
            if used < args.len() {
                if let Expr::Lambda(inner) = &*lambda.body {
                    // The body evaluates to this closure: go on with it directly.
                    self.call_depth -= 1;
                    lambda = inner.clone();
                    closure_env = env;
                    continue;
                }
            }
            let result = self.run_body(&lambda, &env, pos);
            self.call_depth -= 1;
            return result.map(|v| (v, used));
        }
    }

    /// Makes the environment of a call of `lambda` (closing over `closure_env`) with `arg`:
    /// the argument, or the formals taken from it (with their defaults) and the `@` name.
    #[inline]
    fn bind_arguments(&mut self, lambda: &LambdaExpr, closure_env: &EnvRef, arg: Value, call_pos: Option<&Pos>) -> EvalResult<EnvRef> {
        match &lambda.formals {
            None => Ok(self.envs.alloc_one(arg, Some(closure_env.clone()), false)),
            Some(formals) => self.bind_formals(lambda, formals, closure_env, arg, call_pos),
        }
    }

    /// [`Evaluator::bind_arguments`] for a function with a pattern `{ a, b ? 1, ... } @ args`.
    fn bind_formals(
        &mut self,
        lambda: &LambdaExpr,
        formals: &crate::expr::Formals,
        closure_env: &EnvRef,
        arg: Value,
        call_pos: Option<&Pos>,
    ) -> EvalResult<EnvRef> {
        let forced = self.force_value(arg).map_err(|e| e.at(&lambda.pos))?;
        let attrs = match &forced {
            Value::Attrs(a) => a.clone(),
            other => {
                return Err(EvalError::type_error(format!(
                    "expected a set but found {}: {}",
                    other.describe(),
                    crate::print::error_repr(other)
                ))
                .at(&lambda.pos)
                .with_frame(call_pos, "from call site"))
            }
        };
        let env = self.envs.alloc_unfilled(lambda.slots as usize, Some(closure_env.clone()));
        let fname = lambda.name.map(|n| n.as_str()).unwrap_or("anonymous lambda");
        let mut used = 0;
        for (i, formal) in formals.entries.iter().enumerate() {
            let v = match attrs.get(formal.name) {
                Some(v) => {
                    used += 1;
                    v.clone()
                }
                None => match &formal.default {
                    Some(d) => self.thunk(d, &env),
                    None => {
                        return Err(EvalError::type_error(format!(
                            "function '{fname}' called without required argument '{}'",
                            formal.name
                        ))
                        .at(&lambda.pos)
                        .with_frame(call_pos, "from call site"))
                    }
                },
            };
            env.set(i as u32, v);
        }
        if !formals.ellipsis && used != attrs.len() {
            if let Some(extra) = attrs.iter().find(|a| !formals.entries.iter().any(|f| f.name == a.name)) {
                let suggestions =
                    crate::error::suggestions(extra.name.as_str(), formals.entries.iter().map(|f| f.name.as_str()));
                return Err(EvalError::type_error(format!(
                    "function '{fname}' called with unexpected argument '{}'",
                    extra.name
                ))
                .at(&lambda.pos)
                .with_suggestions(suggestions)
                .with_frame(call_pos, "from call site"));
            }
        }
        if formals.at.is_some() {
            env.set(formals.entries.len() as u32, forced);
        }
        Ok(env)
    }

    /// Evaluates a function's body in the environment of its call (with `--show-trace`, an
    /// error gets the frames of the call).
    #[inline(always)]
    fn run_body(&mut self, lambda: &LambdaExpr, env: &EnvRef, call_pos: Option<&Pos>) -> EvalResult<Value> {
        match self.eval(&lambda.body, env) {
            Ok(v) => Ok(v),
            Err(e) => Err(self.call_frames(e, lambda, call_pos)),
        }
    }

    /// An error from a function's body, with the frames of the call when `--show-trace` is on.
    #[cold]
    #[inline(never)]
    fn call_frames(&self, e: EvalError, lambda: &LambdaExpr, call_pos: Option<&Pos>) -> EvalError {
        if !self.options.show_trace {
            return e;
        }
        let what = match lambda.name {
            Some(n) => format!("while calling '{n}'"),
            None => "while calling anonymous lambda".to_string(),
        };
        let e = e.with_frame(Some(&lambda.pos), what);
        match call_pos {
            Some(p) => e.with_frame(Some(p), "from call site"),
            None => e,
        }
    }

    /// Calls `f` with the arguments given, one after another, and forces the result.
    pub fn call(&mut self, f: &Value, args: &[Value]) -> EvalResult<Value> {
        let v = match args {
            [one] => self.apply(f.clone(), one.clone(), None)?,
            _ => self.apply_many(f.clone(), args, None)?,
        };
        self.force_value(v)
    }
}
