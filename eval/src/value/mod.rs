//! Values: what expressions evaluate to. Compound values are reference-counted; a [`Value::Thunk`]
//! is a suspended computation that is replaced by its result once forced.

use std::collections::BTreeSet;
use std::fmt;
use std::rc::Rc;

mod attrs;
pub(crate) mod rc;
mod shared_slice;
pub(crate) mod thunk;

pub use attrs::{Attr, Attrs};
pub use rc::ValueRc;
pub use shared_slice::SharedSlice;
pub use thunk::{Thunk, ThunkState, ThunkView};

use crate::builtins::PrimOpDef;
use crate::env::EnvRef;
use crate::expr::LambdaExpr;
use crate::symbol::Symbol;

/// A list: its elements in one shared allocation.
pub type List = SharedSlice<Value>;

/// A string's context: the store paths it refers to, encoded as Nix encodes them (`/nix/store/x`
/// for a plain path, `=/nix/store/x.drv` for a derivation and its closure, `!out!/nix/store/x.drv`
/// for one output).
pub type Context = BTreeSet<String>;

/// A string with its context.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NixString {
    /// The text.
    pub text: String,
    /// The context.
    pub context: Context,
}

impl NixString {
    /// A string without context.
    pub fn plain(text: impl Into<String>) -> NixString {
        NixString { text: text.into(), context: Context::new() }
    }
}

/// A function value: its code and the environment it closes over.
pub struct Closure {
    /// The code.
    pub lambda: Rc<LambdaExpr>,
    /// The environment of its definition.
    pub env: EnvRef,
}

/// A builtin with the arguments given so far.
pub struct PrimOpApp {
    /// The builtin.
    pub op: &'static PrimOpDef,
    /// The arguments so far (fewer than its arity).
    pub args: Vec<Value>,
}

// Two words: a tag and one pointer or scalar (`ValueRc` is one pointer).
const _: () = assert!(std::mem::size_of::<Value>() == 16);

/// A Nix value.
#[derive(Clone)]
pub enum Value {
    /// `null`.
    Null,
    /// `true`/`false`.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string with context.
    String(ValueRc<NixString>),
    /// An absolute, canonical path (behind one pointer, so that a value is two words).
    Path(ValueRc<String>),
    /// An attribute set.
    Attrs(Attrs),
    /// A list.
    List(List),
    /// A function.
    Lambda(ValueRc<Closure>),
    /// A builtin, possibly partially applied.
    PrimOp(ValueRc<PrimOpApp>),
    /// A suspended computation.
    Thunk(Thunk),
}

impl Value {
    /// A string value without context.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(ValueRc::new(NixString::plain(s)))
    }

    /// A string value with context.
    pub fn string_with_context(text: String, context: Context) -> Value {
        Value::String(ValueRc::new(NixString { text, context }))
    }

    /// A list value.
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(List::from_vec(items))
    }

    /// A list value of the `len` values `items` yields, written straight into the list (no
    /// vector first: a big list would be held twice for a moment).
    pub fn list_from(len: usize, items: impl IntoIterator<Item = Value>) -> Value {
        Value::List(List::from_iter_len(len, items))
    }

    /// An attribute set value.
    pub fn attrs(attrs: Attrs) -> Value {
        Value::Attrs(attrs)
    }

    /// A thunk applying `f` to `arg`.
    pub fn lazy_apply(f: Value, arg: Value) -> Value {
        Thunk::value_of(ThunkState::Apply(Box::new((f, arg))))
    }

    /// A thunk applying `f` to `a` and then `b`.
    pub fn lazy_apply2(f: Value, a: Value, b: Value) -> Value {
        Thunk::value_of(ThunkState::Apply2(Box::new((f, a, b))))
    }

    /// A thunk applying `f` to the integer `i`.
    pub fn lazy_apply_int(f: &Value, i: i64) -> Value {
        match f {
            Value::Lambda(closure) => Thunk::value_of(ThunkState::ApplyInt(closure.clone(), i)),
            other => Value::lazy_apply(other.clone(), Value::Int(i)),
        }
    }

    /// A thunk selecting `name` from `v`.
    pub fn lazy_select(v: Value, name: Symbol) -> Value {
        Thunk::value_of(ThunkState::Select(Box::new((v, name))))
    }

    /// The type name `builtins.typeOf` gives (thunks say "thunk").
    pub fn type_of(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Path(_) => "path",
            Value::Attrs(_) => "set",
            Value::List(_) => "list",
            Value::Lambda(_) | Value::PrimOp(_) => "lambda",
            Value::Thunk(_) => "thunk",
        }
    }

    /// The phrase Nix uses in type errors ("a string", "an integer", ...).
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a Boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::String(_) => "a string",
            Value::Path(_) => "a path",
            Value::Attrs(_) => "a set",
            Value::List(_) => "a list",
            Value::Lambda(_) => "a function",
            Value::PrimOp(p) if p.args.is_empty() => "a built-in function",
            Value::PrimOp(_) => "a partially applied built-in function",
            Value::Thunk(_) => "a thunk",
        }
    }

    /// Whether it is a function.
    pub fn is_function(&self) -> bool {
        matches!(self, Value::Lambda(_) | Value::PrimOp(_))
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::String(s) => write!(f, "{:?}", s.text),
            Value::Path(p) => f.write_str(p),
            Value::Attrs(a) => write!(f, "{{ {} attrs }}", a.len()),
            Value::List(l) => write!(f, "[ {} items ]", l.len()),
            Value::Lambda(_) => f.write_str("<LAMBDA>"),
            Value::PrimOp(_) => f.write_str("<PRIMOP>"),
            Value::Thunk(_) => f.write_str("<CODE>"),
        }
    }
}
