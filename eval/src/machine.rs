//! The evaluator: evaluates expressions to weak head normal form, forces thunks, applies functions.

use std::collections::HashMap;

use crate::env::{EnvRef, EnvRegistry, EnvSlots};
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::expr::{AttrName, Binding, DynamicBinding, Expr, ExprRef, Var};
use crate::io::EvalIo;
use crate::source::Pos;
use crate::symbol::Symbol;
use crate::value::{Attr, Attrs, Closure, Thunk, ThunkState, Value, ValueRc};

/// Stack left before we grow it (bytes), and how much a new segment gets.
const STACK_RED_ZONE: usize = 128 * 1024;
const STACK_SEGMENT: usize = 2 * 1024 * 1024;

thread_local! {
    /// The lowest stack address `with_stack` runs a function at without growing the stack
    /// (`STACK_RED_ZONE` above the current segment's end); `usize::MAX` (every call takes the
    /// slow path) until computed, or when the stack's extent is unknown.
    static STACK_LOW: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
    /// Whether `STACK_LOW` has been computed on this thread.
    static STACK_LOW_KNOWN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with enough stack, growing it on the heap when needed. The common case compares the
/// address of a local with a thread-local bound (asking `stacker` for the remaining stack on
/// every call took 3% of an evaluation).
#[inline(always)]
pub fn with_stack<T>(f: impl FnOnce() -> T) -> T {
    let marker = 0u8;
    if std::ptr::addr_of!(marker) as usize > STACK_LOW.get() {
        f()
    } else {
        grow_stack(f)
    }
}

/// The slow path of [`with_stack`]: computes the bound when it is not known yet, and runs `f` on
/// a new segment when the stack is short (the bound is the new segment's meanwhile).
#[cold]
#[inline(never)]
fn grow_stack<T>(f: impl FnOnce() -> T) -> T {
    if !STACK_LOW_KNOWN.get() {
        STACK_LOW_KNOWN.set(true);
        if let Some(low) = stack_low() {
            STACK_LOW.set(low);
            return with_stack(f);
        }
    }
    if STACK_LOW.get() == usize::MAX {
        // The stack's extent is unknown: ask `stacker` every time.
        return stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, f);
    }
    stacker::grow(STACK_SEGMENT, || {
        let _restore = RestoreStackLow(STACK_LOW.get());
        STACK_LOW.set(stack_low().unwrap_or(usize::MAX));
        f()
    })
}

/// Puts the outer segment's bound back when a function run on a new segment returns (or unwinds).
struct RestoreStackLow(usize);

impl Drop for RestoreStackLow {
    fn drop(&mut self) {
        STACK_LOW.set(self.0);
    }
}

/// The lowest address of the current stack segment plus the red zone, if known.
fn stack_low() -> Option<usize> {
    let marker = 0u8;
    let here = std::ptr::addr_of!(marker) as usize;
    stacker::remaining_stack().map(|remaining| here.saturating_sub(remaining) + STACK_RED_ZONE)
}

thread_local! {
    /// `__overrides`, looked up in every `rec` set.
    static OVERRIDES: Symbol = Symbol::new("__overrides");
}

/// One entry of the search path (`-I`, `NIX_PATH`): `prefix=path` or a bare directory.
#[derive(Debug, Clone)]
pub struct SearchPathEntry {
    /// The prefix (empty for a bare directory).
    pub prefix: String,
    /// The directory or file.
    pub path: String,
}

/// Options of an evaluation.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The search path for `<name>`, highest priority first.
    pub search_path: Vec<SearchPathEntry>,
    /// The most nested function calls (Nix's `max-call-depth`).
    pub max_call_depth: usize,
    /// The value of `builtins.currentSystem`.
    pub system: String,
    /// The store directory.
    pub store_dir: String,
    /// Whether `--show-trace` is on (affects nothing but error rendering by the caller).
    pub show_trace: bool,
    /// Whether `fromTOML` returns dates and times (experimental feature `parse-toml-timestamps`).
    pub toml_timestamps: bool,
    /// Whether `builtins.warn` fails after printing (Nix's `abort-on-warn`).
    pub abort_on_warn: bool,
    /// Whether environments are registered so that dropping the evaluator frees the reference
    /// cycles they make (`env::EnvRegistry`). A process that ends its evaluation with
    /// [`Evaluator::finish_without_freeing`] turns it off: registering took 6% of an evaluation,
    /// and the registry kept the memory of environments no longer used until it was compacted.
    pub track_environments: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            search_path: Vec::new(),
            max_call_depth: 10_000,
            system: default_system(),
            store_dir: "/nix/store".into(),
            show_trace: false,
            toml_timestamps: false,
            abort_on_warn: false,
            track_environments: true,
        }
    }
}

fn default_system() -> String {
    let arch = std::env::consts::ARCH;
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    format!("{arch}-{os}")
}

/// The evaluator. Values it returns must not be used after it is dropped: dropping it breaks the
/// reference cycles of its environments.
pub struct Evaluator {
    pub(crate) envs: EnvRegistry,
    pub(crate) globals: crate::symbol::SymbolMap<Value>,
    /// The I/O interface (filesystem, store).
    pub io: Box<dyn EvalIo>,
    /// The options.
    pub options: EvalOptions,
    pub(crate) call_depth: usize,
    pub(crate) import_cache: HashMap<String, Value>,
    pub(crate) regex_cache: HashMap<String, crate::builtins::regex::Compiled>,
    /// The derivations written so far and their hashes.
    pub drv_state: crate::builtins::derivation::DrvState,
}

impl Evaluator {
    /// A new evaluator with all builtins.
    pub fn new(io: Box<dyn EvalIo>, options: EvalOptions) -> Evaluator {
        let mut ev = Evaluator {
            envs: EnvRegistry::new(options.track_environments),
            globals: Default::default(),
            io,
            options,
            call_depth: 0,
            import_cache: HashMap::new(),
            regex_cache: HashMap::new(),
            drv_state: Default::default(),
        };
        crate::builtins::install(&mut ev);
        ev
    }

    /// Ends the evaluation without freeing its values, for a process about to exit: emptying
    /// every environment and dropping the values took about 6% of an evaluation (nixpkgs.lib's
    /// module system). The I/O is dropped as usual (its connections are closed). Values the
    /// caller still holds stay valid; their memory is returned only when the process exits.
    pub fn finish_without_freeing(self) {
        let Evaluator { envs, globals, io, options, call_depth: _, import_cache, regex_cache, drv_state } = self;
        drop(io);
        drop(options);
        std::mem::forget((envs, globals, import_cache, regex_cache, drv_state));
    }

    /// Allocates an environment.
    pub(crate) fn alloc_env(&mut self, slots: EnvSlots, parent: Option<EnvRef>, is_with: bool) -> EnvRef {
        self.envs.alloc(slots, parent, is_with)
    }

    /// The empty top-level environment expressions run in.
    pub(crate) fn root_env(&mut self) -> EnvRef {
        self.alloc_env(EnvSlots::new(), None, false)
    }

    /// Makes a value for `e` without evaluating it when that is cheap, else a thunk.
    #[inline]
    pub fn thunk(&mut self, e: &ExprRef, env: &EnvRef) -> Value {
        match &**e {
            Expr::Const(v) => v.clone(),
            Expr::Path(p) => Value::Path(p.clone()),
            Expr::Var(Var::Static { depth, slot }, _, _) => {
                match env.up(*depth).and_then(|e| e.get_filled(*slot)) {
                    // Not the thunk but its value, once evaluated: the thunk may be freed sooner.
                    Some(Value::Thunk(t)) => t.evaluated().unwrap_or(Value::Thunk(t)),
                    Some(v) => v,
                    None => Thunk::value_of(ThunkState::Suspended(e.clone(), env.clone())),
                }
            }
            // Making a closure cannot fail and costs less than a thunk that would make it.
            Expr::Lambda(l) => Value::Lambda(ValueRc::new(Closure { lambda: l.clone(), env: env.clone() })),
            _ => Thunk::value_of(ThunkState::Suspended(e.clone(), env.clone())),
        }
    }

    /// Forces a value to weak head normal form.
    pub fn force(&mut self, v: &Value) -> EvalResult<Value> {
        match v {
            Value::Thunk(t) => self.force_thunk(t),
            other => Ok(other.clone()),
        }
    }

    /// Forces a value the caller owns: no reference-count traffic when it is not a thunk.
    pub fn force_value(&mut self, v: Value) -> EvalResult<Value> {
        match v {
            Value::Thunk(t) => self.force_thunk(&t),
            other => Ok(other),
        }
    }

    fn force_thunk(&mut self, t: &Thunk) -> EvalResult<Value> {
        // Evaluated already (the most frequent case): read in place.
        if let Some(v) = t.evaluated() {
            return Ok(v);
        }
        let state = t.take();
        let result = match &state {
            ThunkState::Done(v) => {
                let v = v.clone();
                t.put(state);
                return Ok(v);
            }
            // Being evaluated (its state stays `Blackhole`).
            ThunkState::Blackhole => {
                return Err(EvalError::new(ErrorKind::InfiniteRecursion, "infinite recursion encountered"))
            }
            ThunkState::Suspended(e, env) => self.eval(e, env),
            ThunkState::Apply(call) => self.apply(call.0.clone(), call.1.clone(), None),
            ThunkState::ApplyInt(f, i) => self.apply(Value::Lambda(f.clone()), Value::Int(*i), None),
            ThunkState::Apply2(call) => {
                let (f, a, b) = &**call;
                self.apply_many(f.clone(), &[a.clone(), b.clone()], None)
            }
            ThunkState::Select(select) => {
                let (v, name) = &**select;
                // No `?`: on error the thunk gets its state back below.
                self.force_attrs(v).and_then(|attrs| match attrs.get(*name) {
                    Some(v) => {
                        let v = v.clone();
                        self.force_value(v)
                    }
                    None => Err(EvalError::new(ErrorKind::Missing, format!("attribute '{name}' missing"))),
                })
            }
        };
        match result {
            Ok(v) => {
                t.put(ThunkState::Done(v.clone()));
                self.envs.evaluated(t);
                Ok(v)
            }
            Err(e) => {
                t.put(state);
                Err(e)
            }
        }
    }

    /// Evaluates `e` in `env` to weak head normal form.
    #[inline(always)]
    pub fn eval(&mut self, e: &ExprRef, env: &EnvRef) -> EvalResult<Value> {
        // A constant, and a variable holding a value or an evaluated thunk (the most frequent
        // expressions), are taken where the caller is, without a call.
        match &**e {
            Expr::Const(v) => Ok(v.clone()),
            Expr::Var(Var::Static { depth, slot }, _, _) => match env.up(*depth).and_then(|e| e.get_evaluated(*slot)) {
                Some(v) => Ok(v),
                None => self.eval_node(e, env),
            },
            _ => self.eval_node(e, env),
        }
    }

    /// [`Evaluator::eval`] of anything else: checks the stack, then evaluates.
    fn eval_node(&mut self, e: &ExprRef, env: &EnvRef) -> EvalResult<Value> {
        with_stack(|| self.eval_inner(e, env))
    }

    fn eval_inner(&mut self, e: &ExprRef, env: &EnvRef) -> EvalResult<Value> {
        // The branch an `if` takes is evaluated here, not by a nested call (`else if` chains).
        let mut e = e;
        while let Expr::If(c, t, f, pos) = &**e {
            let cv = self.eval(c, env)?;
            let b = self.take_bool(cv, pos)?;
            e = if b { t } else { f };
        }
        match &**e {
            Expr::Const(v) => Ok(v.clone()),
            Expr::Path(p) => Ok(Value::Path(p.clone())),
            Expr::Var(Var::Static { depth, slot }, name, pos) => {
                let no_slot = || EvalError::other(format!("internal error: variable '{name}' has no slot")).at(pos);
                let holder = env.up(*depth).ok_or_else(no_slot)?;
                match holder.get(*slot).ok_or_else(no_slot)? {
                    Value::Thunk(t) => {
                        let forced = self.force_thunk(&t).map_err(|e| e.at(pos))?;
                        holder.replace_evaluated(*slot, &t, forced.clone());
                        Ok(forced)
                    }
                    v => Ok(v),
                }
            }
            Expr::Var(Var::With { depth }, name, pos) => {
                let v = self.lookup_with(*depth, *name, env, pos)?;
                self.force_value(v).map_err(|e| e.at(pos))
            }
            Expr::Select(target, path, default, pos) => self.eval_select(target, path, default.as_ref(), pos, env),
            Expr::HasAttr(target, path) => self.eval_has_attr(target, path, env),
            Expr::Attrs { rec, bindings, dynamic, pos } => self.eval_attrs(*rec, bindings, dynamic, pos, env),
            Expr::List(items) => {
                Ok(Value::list_from(items.len(), items.iter().map(|i| self.thunk(i, env))))
            }
            Expr::Lambda(l) => Ok(Value::Lambda(ValueRc::new(Closure { lambda: l.clone(), env: env.clone() }))),
            Expr::Apply(f, args, pos) => {
                let fv = self.eval(f, env)?;
                if let [arg] = args.as_slice() {
                    let av = self.thunk(arg, env);
                    return self.apply(fv, av, Some(pos));
                }
                let avs: crate::call::Args = args.iter().map(|a| self.thunk(a, env)).collect();
                self.apply_many(fv, &avs, Some(pos))
            }
            Expr::Let(bindings, body) => {
                let env2 = self.envs.alloc_unfilled(bindings.len(), Some(env.clone()));
                for (i, b) in bindings.iter().enumerate() {
                    let v = if b.outer_scope { self.thunk(&b.value, env) } else { self.thunk(&b.value, &env2) };
                    env2.set(i as u32, v);
                }
                self.eval(body, &env2)
            }
            Expr::With(ns, body) => {
                let nsv = self.thunk(ns, env);
                let env2 = self.envs.alloc_one(nsv, Some(env.clone()), true);
                self.eval(body, &env2)
            }
            Expr::If(c, t, f, pos) => {
                let cv = self.eval(c, env)?;
                let b = self.take_bool(cv, pos)?;
                self.eval(if b { t } else { f }, env)
            }
            Expr::Assert(c, body, pos) => {
                let cv = self.eval(c, env)?;
                if self.take_bool(cv, pos)? {
                    self.eval(body, env)
                } else {
                    let text = assert_text(pos);
                    if let Expr::BinOp(crate::expr::BinOp::Eq, l, r, eq_pos) = &**c {
                        let lv = self.eval(l, env)?;
                        let rv = self.eval(r, env)?;
                        self.assert_eq_values(&lv, &rv).map_err(|e| {
                            e.at(eq_pos).with_frame(Some(pos), format!("assertion '({text})' failed"))
                        })?;
                    }
                    Err(EvalError::new(ErrorKind::Assert, format!("assertion '{text}' failed")).at(pos))
                }
            }
            Expr::Not(operand, pos) => {
                let v = self.eval(operand, env)?;
                Ok(Value::Bool(!self.take_bool(v, pos)?))
            }
            Expr::BinOp(op, l, r, pos) => self.eval_binop(*op, l, r, pos, env),
            Expr::Add(l, r, lpos, rpos) => {
                let lv = self.eval(l, env)?;
                let rv = self.eval(r, env)?;
                self.add_values(lv, rv, lpos, rpos)
            }
            Expr::Concat(parts, force_string, pos) => self.eval_concat(parts, *force_string, pos, env),
            Expr::HomePath(rest, pos) => {
                let home = std::env::var("HOME").map_err(|_| EvalError::other("$HOME is not set").at(pos))?;
                let mut p = crate::path::canonicalize(&format!("{home}/{rest}"));
                if (rest.is_empty() || rest.ends_with('/')) && !p.ends_with('/') {
                    p.push('/');
                }
                Ok(Value::Path(p.into()))
            }
            Expr::CurPos(pos) => Ok(self.pos_to_attrs(pos)),
        }
    }

    /// `{ file, line, column }` for a position (as `__curPos` and `unsafeGetAttrPos` give).
    pub fn pos_to_attrs(&mut self, pos: &Pos) -> Value {
        let (line, column) = pos.line_col();
        let file = Value::string(pos.source().name());
        Value::attrs(Attrs::from_unsorted(vec![
            Attr { name: Symbol::new("file"), value: file, pos: None },
            Attr { name: Symbol::new("line"), value: Value::Int(line.into()), pos: None },
            Attr { name: Symbol::new("column"), value: Value::Int(column.into()), pos: None },
        ]))
    }

    /// Looks up a name only a `with` can bind, from the innermost `with` environment `depth`
    /// levels up (without forcing the value).
    fn lookup_with(&mut self, depth: u32, name: Symbol, env: &EnvRef, pos: &Pos) -> EvalResult<Value> {
        let mut cur = env.up(depth).cloned();
        while let Some(e) = cur {
            if e.is_with() {
                if let Some(ns) = e.get(0) {
                    let attrs = self.force_value(ns).map_err(|err| err.at(pos))?;
                    let attrs = match attrs {
                        Value::Attrs(a) => a,
                        other => {
                            return Err(EvalError::type_error(format!(
                                "expected a set but found {}: {}",
                                other.describe(),
                                crate::print::error_repr(&other)
                            ))
                            .at(pos))
                        }
                    };
                    if let Some(v) = attrs.get(name) {
                        return Ok(v.clone());
                    }
                }
            }
            cur = e.parent().cloned();
        }
        Err(EvalError::new(ErrorKind::Missing, format!("undefined variable '{name}'")).at(pos))
    }

    /// Evaluates an attribute name of a path.
    pub(crate) fn attr_name(&mut self, name: &AttrName, env: &EnvRef) -> EvalResult<Option<Symbol>> {
        match name {
            AttrName::Static(s) => Ok(Some(*s)),
            AttrName::Dynamic(e) => {
                let v = self.eval(e, env)?;
                match v {
                    Value::Null => Ok(None),
                    Value::String(s) => Ok(Some(Symbol::new(&s.text))),
                    other => Err(EvalError::type_error(format!(
                        "expected a string but found {}: {}",
                        other.describe(),
                        crate::print::error_repr(&other)
                    ))),
                }
            }
        }
    }

    /// `e.a.b` as Nix's `ExprSelect`: each step forces a set ("while selecting an attribute"),
    /// a missing name is an error at the selection with suggestions, and an error while
    /// forcing what was selected is traced to the attribute's definition
    /// ("while evaluating the attribute 'a.b'").
    fn eval_select(&mut self, target: &ExprRef, path: &[AttrName], default: Option<&ExprRef>, pos: &Pos, env: &EnvRef) -> EvalResult<Value> {
        let v = self.eval(target, env)?;
        let mut defined_at: Option<Pos> = None;
        // The names selected so far (for the message of an error), kept without copying them.
        let mut names: smallvec::SmallVec<[Option<Symbol>; 4]> = smallvec::SmallVec::new();
        let result = self.select_steps(v, path, default, pos, env, &mut defined_at, &mut names);
        result.map_err(|e| match &defined_at {
            Some(p) if !crate::builtins::derivation::is_internal(&p.source()) => {
                let mut shown: Vec<String> =
                    names.iter().map(|n| n.map(|n| n.as_str().to_string()).unwrap_or_default()).collect();
                for name in &path[names.len()..] {
                    shown.push(match name {
                        AttrName::Static(s) => s.as_str().to_string(),
                        AttrName::Dynamic(_) => "\"${…}\"".to_string(),
                    });
                }
                e.with_frame(Some(p), format!("while evaluating the attribute '{}'", shown.join(".")))
            }
            _ => e,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn select_steps(
        &mut self,
        mut v: Value,
        path: &[AttrName],
        default: Option<&ExprRef>,
        pos: &Pos,
        env: &EnvRef,
        defined_at: &mut Option<Pos>,
        names: &mut smallvec::SmallVec<[Option<Symbol>; 4]>,
    ) -> EvalResult<Value> {
        for name in path {
            let name = self.attr_name(name, env)?;
            names.push(name);
            let forced = self.force_value(v)?;
            let attr = match &forced {
                Value::Attrs(a) => name.and_then(|n| a.get_attr(n)).map(|at| (at.value.clone(), at.pos)),
                other if default.is_none() => {
                    return Err(EvalError::type_error(format!(
                        "expected a set but found {}: {}",
                        other.describe(),
                        crate::print::error_repr(other)
                    ))
                    .with_frame(Some(pos), "while selecting an attribute"))
                }
                _ => None,
            };
            match attr {
                Some((next, at)) => {
                    v = next;
                    *defined_at = at;
                }
                None => {
                    return match default {
                        Some(d) => self.eval(d, env),
                        None => {
                            let shown = name.map(|n| n.as_str()).unwrap_or("");
                            let suggestions = match &forced {
                                Value::Attrs(a) => crate::error::suggestions(shown, a.iter().map(|at| at.name.as_str())),
                                _ => Vec::new(),
                            };
                            Err(EvalError::new(ErrorKind::Missing, format!("attribute '{shown}' missing"))
                                .at(pos)
                                .with_suggestions(suggestions))
                        }
                    }
                }
            }
        }
        self.force_value(v)
    }

    fn eval_has_attr(&mut self, target: &ExprRef, path: &[AttrName], env: &EnvRef) -> EvalResult<Value> {
        let mut v = self.eval(target, env)?;
        for (i, name) in path.iter().enumerate() {
            let name = self.attr_name(name, env)?;
            let next = match (&v, name) {
                (Value::Attrs(a), Some(n)) => a.get(n).cloned(),
                _ => None,
            };
            match next {
                // Only the sets along the path are forced, not the attribute itself.
                Some(next) if i + 1 < path.len() => v = self.force_value(next)?,
                Some(_) => return Ok(Value::Bool(true)),
                None => return Ok(Value::Bool(false)),
            }
        }
        Ok(Value::Bool(true))
    }

    fn eval_attrs(&mut self, rec: bool, bindings: &[Binding], dynamic: &[DynamicBinding], pos: &Pos, env: &EnvRef) -> EvalResult<Value> {
        let inner = if rec {
            self.envs.alloc_unfilled(bindings.len(), Some(env.clone()))
        } else {
            env.clone()
        };
        // `__overrides` replaces slots after they are set: then a binding that is just another
        // binding's name must stay a lookup, not take that binding's value now.
        let overrides_sym = if rec { OVERRIDES.with(|s| Some(*s)) } else { None };
        let has_overrides = rec && bindings.iter().any(|b| Some(b.name) == overrides_sym);
        let mut entries = Vec::with_capacity(bindings.len() + dynamic.len());
        for (i, b) in bindings.iter().enumerate() {
            let v = if has_overrides && !b.outer_scope {
                Thunk::value_of(ThunkState::Suspended(b.value.clone(), inner.clone()))
            } else if rec && !b.outer_scope {
                self.thunk(&b.value, &inner)
            } else {
                self.thunk(&b.value, env)
            };
            if rec {
                inner.set(i as u32, v.clone());
            }
            entries.push(Attr { name: b.name, value: v, pos: Some(b.pos) });
        }
        // The lowering sorted the static bindings by name.
        let mut attrs = Attrs::from_sorted(entries);
        if has_overrides {
            if let Some(i) = bindings.iter().position(|b| Some(b.name) == overrides_sym) {
                let ov = inner.get(i as u32).unwrap_or(Value::Null);
                let ov = self.force_attrs(&ov).map_err(|e| e.at(pos))?;
                for attr in ov.iter() {
                    if let Some(slot) = bindings.iter().position(|b| b.name == attr.name) {
                        inner.set(slot as u32, attr.value.clone());
                    }
                }
                attrs = attrs.update(&ov);
            }
        }
        if !dynamic.is_empty() {
            let mut extra: Vec<Attr> = Vec::new();
            for d in dynamic {
                let name = self.eval(&d.name, &inner)?;
                let name = match name {
                    Value::Null => continue,
                    Value::String(s) => Symbol::new(&s.text),
                    other => {
                        return Err(EvalError::type_error(format!(
                            "expected a string but found {}: {}",
                            other.describe(),
                            crate::print::error_repr(&other)
                        ))
                        .at(&d.pos))
                    }
                };
                if let Some(first) = attrs.get_attr(name).and_then(|a| a.pos).or_else(|| {
                    extra.iter().find(|a| a.name == name).and_then(|a| a.pos)
                }) {
                    return Err(EvalError::other(format!("dynamic attribute '{name}' already defined at {first}")).at(&d.pos));
                }
                let v = self.thunk(&d.value, &inner);
                extra.push(Attr { name, value: v, pos: Some(d.pos) });
            }
            if !extra.is_empty() {
                attrs = attrs.update(&Attrs::from_unsorted(extra));
            }
        }
        let _ = pos;
        Ok(Value::attrs(attrs))
    }
}

/// The text of an assertion's condition for the error message.
fn assert_text(pos: &Pos) -> String {
    let (source, start) = pos.source_and_offset();
    let text = &source.text;
    let start = start as usize;
    let rest = text.get(start..).unwrap_or("");
    let rest = rest.strip_prefix("assert").unwrap_or(rest);
    let end = rest.find(';').unwrap_or(rest.len());
    rest[..end].trim().to_string()
}
