//! The lowered expression tree: what the evaluator runs. Variables are resolved to
//! `(depth, slot)` where the scope is static; names under `with` are looked up at run time.

use std::rc::Rc;

use crate::source::Pos;
use crate::symbol::Symbol;
use crate::value::{Value, ValueRc};

/// A shared expression node.
pub type ExprRef = Rc<Expr>;

/// A variable reference.
#[derive(Debug, Clone)]
pub enum Var {
    /// A statically bound variable: `depth` environments up, slot `slot`.
    Static {
        /// How many environments up.
        depth: u32,
        /// The slot in that environment.
        slot: u32,
    },
    /// A name only a `with` can bind; `depth` is the innermost `with` environment.
    With {
        /// How many environments up the innermost `with` is.
        depth: u32,
    },
}

/// One attribute name in a path: static or computed.
#[derive(Debug, Clone)]
pub enum AttrName {
    /// `a` or `"a"`.
    Static(Symbol),
    /// `${e}` or `"${e}x"`.
    Dynamic(ExprRef),
}

/// A binding of an attribute set or `let`.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The name.
    pub name: Symbol,
    /// The value's expression.
    pub value: ExprRef,
    /// Whether it is evaluated in the enclosing environment (non-`rec` sets, `inherit`) rather
    /// than the set's own.
    pub outer_scope: bool,
    /// Where the name is (for `unsafeGetAttrPos`).
    pub pos: Pos,
}

/// A dynamic attribute `"${e}" = v;`.
#[derive(Debug, Clone)]
pub struct DynamicBinding {
    /// The name's expression.
    pub name: ExprRef,
    /// The value's expression.
    pub value: ExprRef,
    /// Where.
    pub pos: Pos,
}

/// One formal of a function's pattern.
#[derive(Debug, Clone)]
pub struct Formal {
    /// Its name.
    pub name: Symbol,
    /// Its default (evaluated in the function's environment).
    pub default: Option<ExprRef>,
    /// Where it is.
    pub pos: Pos,
}

/// A function's pattern `{ a, b ? 1, ... } @ args`.
#[derive(Debug, Clone)]
pub struct Formals {
    /// The formals, sorted by name; formal `i` lives in slot `i`.
    pub entries: Vec<Formal>,
    /// Whether `...` was given.
    pub ellipsis: bool,
    /// The `@` name, in the slot after the formals.
    pub at: Option<Symbol>,
}

/// A function.
#[derive(Debug)]
pub struct LambdaExpr {
    /// The plain argument name (`x: ...`), in slot 0.
    pub arg: Option<Symbol>,
    /// The pattern, if any.
    pub formals: Option<Formals>,
    /// The body.
    pub body: ExprRef,
    /// The name of the binding it was defined in, for messages.
    pub name: Option<Symbol>,
    /// Where.
    pub pos: Pos,
    /// How many slots the environment of a call needs.
    pub slots: u32,
}

/// Binary operators, evaluated by the evaluator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Concat,
    Update,
    Eq,
    NotEq,
    Less,
    LessEq,
    Greater,
    GreaterEq,
    And,
    Or,
    Implies,
    PipeRight,
    PipeLeft,
}

/// An expression. The tag is a plain byte (`repr(u8)`): the evaluator's dispatch on it is a
/// load and a jump, not a decoding of a niche in one variant's fields.
#[derive(Debug)]
#[repr(u8)]
pub enum Expr {
    /// A constant (number, string without interpolation, `null`, `true`, builtin).
    Const(Value),
    /// A path literal to be resolved at run time (`~/x`, `<x>` already rewritten to calls).
    Var(Var, Symbol, Pos),
    /// `e.a.b or d`.
    Select(ExprRef, Vec<AttrName>, Option<ExprRef>, Pos),
    /// `e ? a.b`.
    HasAttr(ExprRef, Vec<AttrName>),
    /// `{ ... }` or `rec { ... }`; a `rec` set allocates an environment of `bindings.len()` slots.
    Attrs {
        /// Whether it is `rec`.
        rec: bool,
        /// Static bindings, in slot order for `rec`.
        bindings: Vec<Binding>,
        /// Dynamic bindings.
        dynamic: Vec<DynamicBinding>,
        /// Where.
        pos: Pos,
    },
    /// `[ ... ]`.
    List(Vec<ExprRef>),
    /// A function.
    Lambda(Rc<LambdaExpr>),
    /// `f a` or `f a b ...`: applications starting at the same place are one call with several
    /// arguments (applied one after another).
    Apply(ExprRef, Vec<ExprRef>, Pos),
    /// `let ...; in body`: an environment of `bindings.len()` slots.
    Let(Vec<Binding>, ExprRef),
    /// `with e; body`: an environment of one slot holding `e`.
    With(ExprRef, ExprRef),
    /// `if c then a else b`.
    If(ExprRef, ExprRef, ExprRef, Pos),
    /// `assert c; body`.
    Assert(ExprRef, ExprRef, Pos),
    /// `!e`.
    Not(ExprRef, Pos),
    /// `-e` is lowered to `0 - e`; binary operators.
    BinOp(BinOp, ExprRef, ExprRef, Pos),
    /// `a + b`, with each operand's position (Nix's `ExprConcatStrings` places the errors of
    /// adding at the operand being added).
    Add(ExprRef, ExprRef, Pos, Pos),
    /// String interpolation `"a${b}c"` (`force_string`) or path interpolation (`!force_string`):
    /// the parts with their positions.
    Concat(Vec<(ExprRef, Pos)>, bool, Pos),
    /// A path literal, already made absolute.
    Path(ValueRc<String>),
    /// `~/x`: resolved against `$HOME` at run time.
    HomePath(String, Pos),
    /// `__curPos`.
    CurPos(Pos),
}
