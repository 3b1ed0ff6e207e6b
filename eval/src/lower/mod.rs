//! Lowering: rnix's syntax tree to the evaluator's [`Expr`] tree, resolving variables.
//!
//! Static scopes (`let`, `rec`, function arguments) resolve names to `(depth, slot)`; a name no
//! static scope binds is looked up in the enclosing `with`s at run time, and is an error when there
//! is no `with` (as in Nix, at parse time).

mod attrs;
pub mod strings;

use std::rc::Rc;

use rnix::ast::{self, AstToken, HasEntry};
use rowan::ast::AstNode;

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::expr::{AttrName, BinOp, Expr, ExprRef, Formal, Formals, LambdaExpr, Var};
use crate::path::canonicalize;
use crate::source::{Pos, Source};
use crate::symbol::{Symbol, SymbolMap};
use crate::value::{Attrs, Value};

use strings::IndPart;

/// The deepest nesting of syntax we lower (deeper input gets an error, not a stack overflow).
const MAX_NESTING: usize = 20_000;

enum Scope {
    Static(SymbolMap<u32>),
    With,
}

/// Turns one source text into an expression.
pub struct Lowerer<'a> {
    source: Rc<Source>,
    base_dir: String,
    globals: &'a SymbolMap<Value>,
    scopes: Vec<Scope>,
    nesting: usize,
}

/// Parses `source` and lowers it. `base_dir` resolves relative paths; `globals` are the names of
/// the outermost scope (`true`, `map`, `builtins`, ...); `initial` names the slots of an
/// environment the expression runs in (for `scopedImport`).
pub fn parse(
    source: Rc<Source>,
    base_dir: &str,
    globals: &SymbolMap<Value>,
    initial: Option<&[Symbol]>,
) -> EvalResult<ExprRef> {
    let parsed = rnix::Root::parse(&source.text);
    if let Some(err) = parsed.errors().first() {
        return Err(parse_error(&source, err));
    }
    let root = parsed.tree();
    let mut lowerer = Lowerer { source: source.clone(), base_dir: base_dir.to_owned(), globals, scopes: Vec::new(), nesting: 0 };
    if let Some(names) = initial {
        let map = names.iter().enumerate().map(|(i, n)| (*n, i as u32)).collect();
        lowerer.scopes.push(Scope::Static(map));
    }
    match root.expr() {
        Some(e) => lowerer.lower(&e),
        None => Err(EvalError::new(ErrorKind::Parse, "syntax error, unexpected end of file").at(&source.pos(0))),
    }
}

fn parse_error(source: &Rc<Source>, err: &rnix::parser::ParseError) -> EvalError {
    use rnix::parser::ParseError as P;
    let end = source.text.len() as u32;
    let (message, offset) = match err {
        P::Unexpected(r) | P::UnexpectedExtra(r) => {
            let tok = source.text.get(usize::from(r.start())..usize::from(r.end())).unwrap_or("");
            (format!("syntax error, unexpected '{tok}'"), u32::from(r.start()))
        }
        P::UnexpectedWanted(_, r, _) => {
            let tok = source.text.get(usize::from(r.start())..usize::from(r.end())).unwrap_or("");
            (format!("syntax error, unexpected '{tok}'"), u32::from(r.start()))
        }
        P::UnexpectedDoubleBind(r) => ("syntax error, double @-binding".to_string(), u32::from(r.start())),
        P::UnexpectedEOF | P::UnexpectedEOFWanted(_) => ("syntax error, unexpected end of file".to_string(), end),
        P::DuplicatedArgs(r, name) => (format!("duplicate formal function argument '{name}'"), u32::from(r.start())),
        P::RecursionLimitExceeded => ("syntax error, expression nested too deeply".to_string(), 0),
        other => (format!("syntax error, {other}"), 0),
    };
    EvalError::new(ErrorKind::Parse, message).at(&source.pos(offset))
}

fn node_offset(node: &impl AstNode) -> u32 {
    u32::from(node.syntax().text_range().start())
}

fn ident_name(ident: &ast::Ident) -> Symbol {
    // The identifier's token text, without copying the node's text into a string.
    match ident.ident_token() {
        Some(token) => Symbol::new(token.text()),
        None => Symbol::new(&ident.syntax().text().to_string()),
    }
}

impl Lowerer<'_> {
    fn pos(&self, node: &impl AstNode) -> Pos {
        self.source.pos(node_offset(node))
    }

    fn error(&self, node: &impl AstNode, message: impl Into<String>) -> EvalError {
        EvalError::new(ErrorKind::Parse, message).at(&self.pos(node))
    }

    fn missing(&self, node: &impl AstNode) -> EvalError {
        self.error(node, "syntax error, unexpected end of expression")
    }

    /// Lowers an optional child, failing on a missing one.
    fn child(&mut self, parent: &impl AstNode, e: Option<ast::Expr>) -> EvalResult<ExprRef> {
        match e {
            Some(e) => self.lower(&e),
            None => Err(self.missing(parent)),
        }
    }

    /// Lowers one expression.
    pub fn lower(&mut self, e: &ast::Expr) -> EvalResult<ExprRef> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            self.nesting -= 1;
            return Err(self.error(e, "expression nested too deeply"));
        }
        let result = stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.lower_inner(e));
        self.nesting -= 1;
        result
    }

    fn lower_inner(&mut self, e: &ast::Expr) -> EvalResult<ExprRef> {
        let pos = self.pos(e);
        Ok(Rc::new(match e {
            ast::Expr::Paren(p) => return self.child(p, p.expr()),
            ast::Expr::Root(r) => return self.child(r, r.expr()),
            ast::Expr::Error(_) => return Err(self.error(e, "syntax error")),
            ast::Expr::Literal(lit) => match lit.kind() {
                ast::LiteralKind::Integer(i) => match i.value() {
                    Ok(n) => Expr::Const(Value::Int(n)),
                    Err(_) => return Err(self.error(e, format!("invalid integer '{}'", i.syntax().text()))),
                },
                ast::LiteralKind::Float(f) => match f.value() {
                    Ok(x) => Expr::Const(Value::Float(x)),
                    Err(_) => return Err(self.error(e, format!("invalid float '{}'", f.syntax().text()))),
                },
                ast::LiteralKind::Uri(u) => Expr::Const(Value::string(u.syntax().text())),
            },
            ast::Expr::Ident(id) => {
                let name = ident_name(id);
                if name.as_str() == "__curPos" {
                    Expr::CurPos(pos)
                } else {
                    return self.resolve(name, pos);
                }
            }
            ast::Expr::Str(s) => return self.lower_string(s),
            ast::Expr::Path(p) => return self.lower_path(p),
            ast::Expr::List(l) => {
                let mut items = Vec::new();
                for item in l.items() {
                    items.push(self.lower(&item)?);
                }
                if items.is_empty() {
                    // `[ ]` is a constant: one shared value, not a thunk per use.
                    Expr::Const(Value::list(Vec::new()))
                } else {
                    Expr::List(items)
                }
            }
            ast::Expr::Apply(a) => {
                let f = self.child(a, a.lambda())?;
                let arg = self.child(a, a.argument())?;
                // `f a b` is one call of `f` with two arguments when `f a` starts where it does
                // (not `(f a) b`, whose errors are placed differently).
                match Rc::try_unwrap(f) {
                    Ok(Expr::Apply(inner, mut args, inner_pos)) if inner_pos == pos => {
                        args.push(arg);
                        Expr::Apply(inner, args, inner_pos)
                    }
                    Ok(other) => Expr::Apply(Rc::new(other), vec![arg], pos),
                    Err(shared) => Expr::Apply(shared, vec![arg], pos),
                }
            }
            ast::Expr::Assert(a) => {
                let cond = self.child(a, a.condition())?;
                let body = self.child(a, a.body())?;
                Expr::Assert(cond, body, pos)
            }
            ast::Expr::IfElse(i) => {
                let c = self.child(i, i.condition())?;
                let t = self.child(i, i.body())?;
                let f = self.child(i, i.else_body())?;
                Expr::If(c, t, f, pos)
            }
            ast::Expr::Select(s) => {
                let target = self.child(s, s.expr())?;
                let path = match s.attrpath() {
                    Some(p) => self.lower_attrpath(&p)?,
                    None => return Err(self.missing(s)),
                };
                let default = match s.default_expr() {
                    Some(d) => Some(self.lower(&d)?),
                    None => None,
                };
                // Nix places a selection's errors at its start.
                Expr::Select(target, path, default, pos)
            }
            ast::Expr::HasAttr(h) => {
                let target = self.child(h, h.expr())?;
                let path = match h.attrpath() {
                    Some(p) => self.lower_attrpath(&p)?,
                    None => return Err(self.missing(h)),
                };
                Expr::HasAttr(target, path)
            }
            ast::Expr::UnaryOp(u) => {
                let operand = self.child(u, u.expr())?;
                match u.operator() {
                    Some(ast::UnaryOpKind::Invert) => Expr::Not(operand, pos),
                    Some(ast::UnaryOpKind::Negate) => {
                        Expr::BinOp(BinOp::Sub, Rc::new(Expr::Const(Value::Int(0))), operand, pos)
                    }
                    None => return Err(self.missing(u)),
                }
            }
            ast::Expr::BinOp(b) => return self.lower_binop(b, pos),
            ast::Expr::With(w) => {
                let namespace = self.child(w, w.namespace())?;
                self.scopes.push(Scope::With);
                let body = self.child(w, w.body());
                self.scopes.pop();
                Expr::With(namespace, body?)
            }
            ast::Expr::Lambda(l) => Expr::Lambda(self.lower_lambda(l, None)?),
            ast::Expr::AttrSet(set) => return self.lower_attrset(set),
            ast::Expr::LetIn(l) => return self.lower_let(l),
            ast::Expr::LegacyLet(l) => return self.lower_legacy_let(l),
        }))
    }

    /// Resolves a variable name.
    fn resolve(&self, name: Symbol, pos: Pos) -> EvalResult<ExprRef> {
        self.resolve_skipping(name, pos, 0)
    }

    /// Resolves a name ignoring the innermost `skip` scopes (for `inherit` in `rec` and `let`).
    fn resolve_skipping(&self, name: Symbol, pos: Pos, skip: usize) -> EvalResult<ExprRef> {
        let mut with_depth = None;
        let count = self.scopes.len().saturating_sub(skip);
        for (depth, scope) in self.scopes[..count].iter().rev().enumerate() {
            match scope {
                Scope::Static(names) => {
                    if let Some(slot) = names.get(&name) {
                        return Ok(Rc::new(Expr::Var(Var::Static { depth: depth as u32, slot: *slot }, name, pos)));
                    }
                }
                Scope::With => {
                    if with_depth.is_none() {
                        with_depth = Some(depth as u32);
                    }
                }
            }
        }
        if let Some(v) = self.globals.get(&name) {
            return Ok(Rc::new(Expr::Const(v.clone())));
        }
        match with_depth {
            Some(depth) => Ok(Rc::new(Expr::Var(Var::With { depth }, name, pos))),
            None => Err(EvalError::new(ErrorKind::Missing, format!("undefined variable '{name}'")).at(&pos)),
        }
    }

    fn lower_binop(&mut self, b: &ast::BinOp, pos: Pos) -> EvalResult<ExprRef> {
        use ast::BinOpKind as K;
        let lhs = self.child(b, b.lhs())?;
        let rhs = self.child(b, b.rhs())?;
        let op = match b.operator() {
            Some(op) => op,
            None => return Err(self.missing(b)),
        };
        let op = match op {
            K::Concat => BinOp::Concat,
            K::Update => BinOp::Update,
            K::Add => BinOp::Add,
            K::Sub => BinOp::Sub,
            K::Mul => BinOp::Mul,
            K::Div => BinOp::Div,
            K::And => BinOp::And,
            K::Equal => BinOp::Eq,
            K::Implication => BinOp::Implies,
            K::Less => BinOp::Less,
            K::LessOrEq => BinOp::LessEq,
            K::More => BinOp::Greater,
            K::MoreOrEq => BinOp::GreaterEq,
            K::NotEqual => BinOp::NotEq,
            K::Or => BinOp::Or,
            K::PipeRight | K::PipeLeft => {
                return Err(self.error(b, "experimental Nix feature 'pipe-operators' is disabled; add '--extra-experimental-features pipe-operators' to enable it"))
            }
        };
        if op == BinOp::Add {
            let rhs_pos = b.rhs().map(|r| self.pos(&r)).unwrap_or_else(|| pos);
            return Ok(Rc::new(Expr::Add(lhs, rhs, pos, rhs_pos)));
        }
        Ok(Rc::new(Expr::BinOp(op, lhs, rhs, pos)))
    }

    /// Lowers an attribute path's names.
    fn lower_attrpath(&mut self, path: &ast::Attrpath) -> EvalResult<Vec<AttrName>> {
        let mut names = Vec::new();
        for attr in path.attrs() {
            names.push(self.lower_attr_name(&attr)?);
        }
        Ok(names)
    }

    /// Lowers one attribute name: static when it has no interpolation.
    fn lower_attr_name(&mut self, attr: &ast::Attr) -> EvalResult<AttrName> {
        match attr {
            ast::Attr::Ident(id) => Ok(AttrName::Static(ident_name(id))),
            ast::Attr::Str(s) => {
                let e = self.lower_string(s)?;
                Ok(match &*e {
                    Expr::Const(Value::String(s)) => AttrName::Static(Symbol::new(&s.text)),
                    _ => AttrName::Dynamic(e),
                })
            }
            ast::Attr::Dynamic(d) => {
                let e = self.child(d, d.expr())?;
                Ok(match &*e {
                    Expr::Const(Value::String(s)) => AttrName::Static(Symbol::new(&s.text)),
                    _ => AttrName::Dynamic(e),
                })
            }
        }
    }

    fn lower_string(&mut self, s: &ast::Str) -> EvalResult<ExprRef> {
        let pos = self.pos(s);
        let indented = s
            .syntax()
            .first_token()
            .is_some_and(|t| t.text() == "''");
        let mut pieces: Vec<Result<String, (ExprRef, Pos)>> = Vec::new();
        if indented {
            let mut parts: Vec<IndPart<ast::Interpol>> = Vec::new();
            let mut first = true;
            for part in s.parts() {
                match part {
                    ast::InterpolPart::Literal(lit) => {
                        let mut raw = lit.syntax().text();
                        if first {
                            if let Some(nl) = raw.find('\n') {
                                if raw[..nl].chars().all(|c| c == ' ') {
                                    raw = &raw[nl + 1..];
                                }
                            }
                        }
                        strings::split_indented(raw, &mut parts);
                    }
                    ast::InterpolPart::Interpolation(i) => parts.push(IndPart::Interpolation(i)),
                }
                first = false;
            }
            for piece in strings::strip_indentation(parts) {
                pieces.push(match piece {
                    Ok(text) => Ok(text),
                    Err(i) => Err((self.child(&i, i.expr())?, self.pos(&i))),
                });
            }
        } else {
            for part in s.parts() {
                pieces.push(match part {
                    ast::InterpolPart::Literal(lit) => Ok(strings::unescape_plain(lit.syntax().text())),
                    ast::InterpolPart::Interpolation(i) => Err((self.child(&i, i.expr())?, self.pos(&i))),
                });
            }
        }
        for piece in pieces.iter().flatten() {
            crate::builtins::json::check_no_nul(piece).map_err(|e| e.at(&pos))?;
        }
        let all_literal = pieces.iter().all(|p| p.is_ok());
        if all_literal {
            let text: String = pieces.into_iter().filter_map(|p| p.ok()).collect();
            return Ok(Rc::new(Expr::Const(Value::string(text))));
        }
        let exprs = pieces
            .into_iter()
            .map(|p| match p {
                Ok(text) => (Rc::new(Expr::Const(Value::string(text))), pos),
                Err(part) => part,
            })
            .collect();
        Ok(Rc::new(Expr::Concat(exprs, true, pos)))
    }

    fn lower_path(&mut self, p: &ast::Path) -> EvalResult<ExprRef> {
        let pos = self.pos(p);
        let parts: Vec<_> = p.parts().collect();
        let mut exprs = Vec::new();
        for (index, part) in parts.iter().enumerate() {
            match part {
                ast::InterpolPart::Literal(lit) => {
                    let text = lit.syntax().text();
                    if index == 0 {
                        if parts.len() == 1 {
                            if let Some(name) = text.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
                                // As Nix: `__findFile __nixPath "name"`, both looked up in scope,
                                // so a `let __nixPath = ...` around it changes the search.
                                let find = self.resolve(Symbol::new("__findFile"), pos)?;
                                let path = self.resolve(Symbol::new("__nixPath"), pos)?;
                                let name = Rc::new(Expr::Const(Value::string(name)));
                                return Ok(Rc::new(Expr::Apply(find, vec![path, name], pos)));
                            }
                        }
                        if let Some(rest) = text.strip_prefix("~/") {
                            if parts.len() == 1 {
                                return Ok(Rc::new(Expr::HomePath(rest.to_owned(), pos)));
                            }
                            exprs.push((Rc::new(Expr::HomePath(rest.to_owned(), pos)), pos));
                            continue;
                        }
                        let mut abs = self.absolute(text);
                        if parts.len() == 1 {
                            return Ok(Rc::new(Expr::Path(abs.into())));
                        }
                        if text.ends_with('/') && text.len() > 1 && !abs.ends_with('/') {
                            abs.push('/');
                        }
                        exprs.push((Rc::new(Expr::Const(Value::Path(abs.into()))), pos));
                    } else {
                        exprs.push((Rc::new(Expr::Const(Value::string(text))), pos));
                    }
                }
                ast::InterpolPart::Interpolation(i) => exprs.push((self.child(i, i.expr())?, self.pos(i))),
            }
        }
        Ok(Rc::new(Expr::Concat(exprs, false, pos)))
    }

    /// Makes a path literal absolute against the file's directory.
    fn absolute(&self, text: &str) -> String {
        if text.starts_with('/') {
            canonicalize(text)
        } else {
            canonicalize(&format!("{}/{}", self.base_dir, text))
        }
    }

    /// Lowers a function; `name` is the binding it is the value of.
    fn lower_lambda(&mut self, l: &ast::Lambda, name: Option<Symbol>) -> EvalResult<Rc<LambdaExpr>> {
        let pos = self.pos(l);
        let param = match l.param() {
            Some(p) => p,
            None => return Err(self.missing(l)),
        };
        let (arg, formals_ast, at, ellipsis) = match &param {
            ast::Param::IdentParam(ip) => match ip.ident() {
                Some(id) => (Some(ident_name(&id)), Vec::new(), None, false),
                None => return Err(self.missing(ip)),
            },
            ast::Param::Pattern(pat) => {
                let at = pat.pat_bind().and_then(|b| b.ident()).map(|id| ident_name(&id));
                let entries: Vec<ast::PatEntry> = pat.pat_entries().collect();
                (None, entries, at, pat.ellipsis_token().is_some())
            }
        };
        let mut names = SymbolMap::default();
        let body_ast = l.body();
        if let Some(arg) = arg {
            names.insert(arg, 0u32);
            self.scopes.push(Scope::Static(names));
            let body = self.child(l, body_ast);
            self.scopes.pop();
            return Ok(Rc::new(LambdaExpr { arg: Some(arg), formals: None, body: body?, name, pos, slots: 1 }));
        }
        let mut entries: Vec<(Symbol, Option<ast::Expr>, Pos)> = Vec::new();
        for entry in &formals_ast {
            let id = match entry.ident() {
                Some(id) => id,
                None => return Err(self.missing(entry)),
            };
            let fname = ident_name(&id);
            if entries.iter().any(|(n, _, _)| *n == fname) {
                return Err(self.error(entry, format!("duplicate formal function argument '{fname}'")));
            }
            entries.push((fname, entry.default(), self.pos(entry)));
        }
        entries.sort_by_key(|e| e.0);
        if let Some(at) = at {
            if entries.iter().any(|(n, _, _)| *n == at) {
                return Err(self.error(l, format!("duplicate formal function argument '{at}'")));
            }
        }
        for (i, (fname, _, _)) in entries.iter().enumerate() {
            names.insert(*fname, i as u32);
        }
        let slots = entries.len() as u32 + u32::from(at.is_some());
        if let Some(at) = at {
            names.insert(at, entries.len() as u32);
        }
        self.scopes.push(Scope::Static(names));
        let result = (|| {
            let mut formals = Vec::new();
            for (fname, default, fpos) in &entries {
                let default = match default {
                    Some(d) => Some(self.lower(d)?),
                    None => None,
                };
                formals.push(Formal { name: *fname, default, pos: *fpos });
            }
            let body = self.child(l, body_ast)?;
            Ok((formals, body))
        })();
        self.scopes.pop();
        let (formals, body) = result?;
        Ok(Rc::new(LambdaExpr {
            arg: None,
            formals: Some(Formals { entries: formals, ellipsis, at }),
            body,
            name,
            pos,
            slots,
        }))
    }

    fn lower_let(&mut self, l: &ast::LetIn) -> EvalResult<ExprRef> {
        let set = self.collect_entries(l.entries(), false)?;
        let body_ast = l.body();
        let (bindings, body) = self.lower_rec_bindings(set, l, |this| this.child(l, body_ast.clone()))?;
        Ok(Rc::new(Expr::Let(bindings, body)))
    }

    fn lower_legacy_let(&mut self, l: &ast::LegacyLet) -> EvalResult<ExprRef> {
        let pos = self.pos(l);
        let set = self.collect_entries(l.entries(), true)?;
        let (bindings, dynamic) = self.lower_set_bindings(set, true)?;
        let attrs = Rc::new(Expr::Attrs { rec: true, bindings, dynamic, pos });
        Ok(Rc::new(Expr::Select(attrs, vec![AttrName::Static(Symbol::new("body"))], None, pos)))
    }

    fn lower_attrset(&mut self, set: &ast::AttrSet) -> EvalResult<ExprRef> {
        let pos = self.pos(set);
        let rec = set.rec_token().is_some();
        let pending = self.collect_entries(set.entries(), true)?;
        let (bindings, dynamic) = self.lower_set_bindings(pending, rec)?;
        if bindings.is_empty() && dynamic.is_empty() {
            // `{ }` is a constant: one shared value, not a thunk per use.
            return Ok(Rc::new(Expr::Const(Value::attrs(Attrs::new()))));
        }
        Ok(Rc::new(Expr::Attrs { rec, bindings, dynamic, pos }))
    }
}
