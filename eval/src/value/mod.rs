//! Values: what expressions evaluate to. Compound values are reference-counted; a [`Value::Thunk`]
//! is a suspended computation that is replaced by its result once forced.

use std::collections::BTreeSet;
use std::fmt;
use std::rc::Rc;

/// The shared box of the evaluator's values (thunks, sets, lists, strings, paths, functions): a
/// reference count of 4 bytes and no weak count (`rclite`), so 8–12 bytes less per object than
/// `std::rc::Rc` (a thunk's box is 32 bytes, not 40), and a release that need not look at a
/// weak count. More than 2^32 references to one value would panic; they would need 32 GiB of
/// pointers first. Environments and code keep `std::rc::Rc` (the environment registry holds
/// weak references).
pub use rclite::Rc as ValueRc;

mod thunk;

pub use thunk::{Thunk, ThunkState, ThunkView};

use crate::builtins::PrimOpDef;
use crate::env::EnvRef;
use crate::expr::LambdaExpr;
use crate::source::Pos;
use crate::symbol::Symbol;

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

/// One attribute.
#[derive(Debug, Clone)]
pub struct Attr {
    /// Its name.
    pub name: Symbol,
    /// Its value.
    pub value: Value,
    /// Where it was defined, if known.
    pub pos: Option<Pos>,
}

/// An attribute set: attributes sorted by name.
#[derive(Debug, Clone, Default)]
pub struct Attrs {
    entries: Vec<Attr>,
}

impl Attrs {
    /// The empty set.
    pub fn new() -> Attrs {
        Attrs { entries: Vec::new() }
    }

    /// Builds a set from attributes in any order; a later duplicate replaces an earlier one.
    pub fn from_unsorted(mut entries: Vec<Attr>) -> Attrs {
        entries.sort_by_key(|a| a.name);
        entries.dedup_by(|later, earlier| {
            if later.name == earlier.name {
                std::mem::swap(later, earlier);
                true
            } else {
                false
            }
        });
        Attrs { entries }
    }

    /// Builds a set from attributes already sorted by name without duplicates.
    pub fn from_sorted(entries: Vec<Attr>) -> Attrs {
        debug_assert!(entries.windows(2).all(|w| w[0].name < w[1].name));
        Attrs { entries }
    }

    /// Looks up an attribute.
    pub fn get(&self, name: Symbol) -> Option<&Value> {
        self.get_attr(name).map(|a| &a.value)
    }

    /// Looks up an attribute with its position.
    pub fn get_attr(&self, name: Symbol) -> Option<&Attr> {
        // Small sets: comparing interned names by address beats comparing texts (a binary
        // search compares texts at every probe).
        if self.entries.len() <= 16 {
            return self.entries.iter().find(|a| a.name == name);
        }
        self.entries.binary_search_by(|a| a.name.cmp(&name)).ok().and_then(|i| self.entries.get(i))
    }

    /// Looks up an attribute by text.
    pub fn get_str(&self, name: &str) -> Option<&Value> {
        self.get(Symbol::new(name))
    }

    /// The attributes in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Attr> {
        self.entries.iter()
    }

    /// How many attributes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `self // other`: both sorted, so a merge.
    pub fn update(&self, other: &Attrs) -> Attrs {
        let mut out = Vec::with_capacity(self.len() + other.len());
        let (mut i, mut j) = (0, 0);
        while i < self.entries.len() && j < other.entries.len() {
            let (a, b) = (&self.entries[i], &other.entries[j]);
            match a.name.cmp(&b.name) {
                std::cmp::Ordering::Less => {
                    out.push(a.clone());
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b.clone());
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push(b.clone());
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&self.entries[i..]);
        out.extend_from_slice(&other.entries[j..]);
        Attrs { entries: out }
    }

    /// Consumes the set into its attributes.
    pub fn into_entries(self) -> Vec<Attr> {
        self.entries
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
    Attrs(ValueRc<Attrs>),
    /// A list.
    List(ValueRc<Vec<Value>>),
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
        Value::List(ValueRc::new(items))
    }

    /// An attribute set value.
    pub fn attrs(attrs: Attrs) -> Value {
        Value::Attrs(ValueRc::new(attrs))
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
