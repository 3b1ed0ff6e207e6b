//! Attribute sets and `let`: collecting bindings (nested attribute paths merge into nested sets,
//! duplicates are errors) and lowering them in the right scope.

use std::rc::Rc;

use rnix::ast::{self, HasEntry};

use super::{ident_name, Lowerer, Scope};
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::expr::{AttrName, Binding, DynamicBinding, Expr, ExprRef};
use crate::source::Pos;
use crate::symbol::{Symbol, SymbolMap};
use crate::value::Value;

/// A binding's value before lowering.
pub(super) enum Pending {
    /// `name = expr;`
    Expr(ast::Expr),
    /// Merged `a.b = ...; a.c = ...;`: a nested non-recursive set.
    Nested(PendingSet),
    /// `inherit name;`: the variable from the enclosing scope.
    InheritVar,
    /// `inherit (from) name;`: index into the set's `inherit_from`.
    InheritFrom(usize),
}

pub(super) struct PendingAttr {
    name: Symbol,
    value: Pending,
    pos: Pos,
}

/// A set's bindings before lowering.
#[derive(Default)]
pub(super) struct PendingSet {
    statics: Vec<PendingAttr>,
    index: SymbolMap<usize>,
    dynamics: Vec<(ast::Attr, Pending, Pos)>,
    inherit_from: Vec<ast::Expr>,
    pos: Option<Pos>,
    /// The attribute path leading to this set (`a.b.`), for messages.
    prefix: String,
    /// A `rec { }` literal that later `a.b = ...` bindings were merged into stays recursive.
    rec: bool,
}

impl Lowerer<'_> {
    /// The name of an attribute when it is known without evaluation.
    fn static_name(&mut self, attr: &ast::Attr) -> EvalResult<Option<Symbol>> {
        let s = match attr {
            ast::Attr::Ident(id) => return Ok(Some(ident_name(id))),
            ast::Attr::Str(s) => s.clone(),
            ast::Attr::Dynamic(d) => match d.expr() {
                Some(ast::Expr::Str(s)) => s,
                _ => return Ok(None),
            },
        };
        if s.parts().any(|p| matches!(p, ast::InterpolPart::Interpolation(_))) {
            return Ok(None);
        }
        let e = self.lower_string(&s)?;
        Ok(match &*e {
            Expr::Const(Value::String(s)) => Some(Symbol::new(&s.text)),
            _ => None,
        })
    }

    fn duplicate(&self, name: &str, at: &Pos, first: &Pos) -> EvalError {
        EvalError::new(ErrorKind::Parse, format!("attribute '{name}' already defined at {first}")).at(at)
    }

    /// Collects the entries of a set or `let`.
    pub(super) fn collect_entries(
        &mut self,
        entries: impl Iterator<Item = ast::Entry>,
        allow_dynamic: bool,
    ) -> EvalResult<PendingSet> {
        let mut set = PendingSet::default();
        for entry in entries {
            match entry {
                ast::Entry::Inherit(inh) => {
                    let from = match inh.from() {
                        Some(f) => match f.expr() {
                            Some(e) => {
                                set.inherit_from.push(e);
                                Some(set.inherit_from.len() - 1)
                            }
                            None => return Err(self.missing(&f)),
                        },
                        None => None,
                    };
                    for attr in inh.attrs() {
                        let pos = self.pos(&attr);
                        let name = match self.static_name(&attr)? {
                            Some(n) => n,
                            None => return Err(self.error(&attr, "dynamic attributes not allowed in inherit")),
                        };
                        let value = match from {
                            Some(i) => Pending::InheritFrom(i),
                            None => Pending::InheritVar,
                        };
                        self.add_static(&mut set, name, value, pos)?;
                    }
                }
                ast::Entry::AttrpathValue(av) => {
                    let path: Vec<ast::Attr> = match av.attrpath() {
                        Some(p) => p.attrs().collect(),
                        None => return Err(self.missing(&av)),
                    };
                    let value = match av.value() {
                        Some(v) => v,
                        None => return Err(self.missing(&av)),
                    };
                    let path_pos = match path.first() {
                        Some(a) => self.pos(a),
                        None => return Err(self.missing(&av)),
                    };
                    self.add_path(&mut set, &path, value, allow_dynamic, &path_pos)?;
                }
            }
        }
        Ok(set)
    }

    fn add_static(&mut self, set: &mut PendingSet, name: Symbol, value: Pending, pos: Pos) -> EvalResult<()> {
        if let Some(&i) = set.index.get(&name) {
            let first = set.statics[i].pos;
            return Err(self.duplicate(&format!("{}{name}", set.prefix), &pos, &first));
        }
        set.index.insert(name, set.statics.len());
        set.statics.push(PendingAttr { name, value, pos });
        Ok(())
    }

    /// Adds `a.b.c = value;` to `set`.
    fn add_path(&mut self, set: &mut PendingSet, path: &[ast::Attr], value: ast::Expr, allow_dynamic: bool, path_pos: &Pos) -> EvalResult<()> {
        let (first, rest) = match path.split_first() {
            Some(x) => x,
            None => return Err(self.missing(&value)),
        };
        let pos = *path_pos;
        match self.static_name(first)? {
            Some(name) => {
                if let Some(&i) = set.index.get(&name) {
                    let first_pos = set.statics[i].pos;
                    // Merge into an existing nested set (or a plain `{ ... }` literal).
                    let existing = std::mem::replace(&mut set.statics[i].value, Pending::InheritVar);
                    let mut nested = match existing {
                        Pending::Nested(n) => n,
                        Pending::Expr(ast::Expr::AttrSet(lit)) => {
                            let mut n = self.collect_entries(lit.entries(), true)?;
                            n.pos = Some(self.pos(&lit));
                            n.rec = lit.rec_token().is_some();
                            n
                        }
                        other => {
                            set.statics[i].value = other;
                            return Err(self.duplicate(&format!("{}{name}", set.prefix), &pos, &first_pos));
                        }
                    };
                    nested.prefix = format!("{}{name}.", set.prefix);
                    let merged = if rest.is_empty() {
                        match &value {
                            ast::Expr::AttrSet(lit) if lit.rec_token().is_none() => {
                                self.merge_literal(&mut nested, lit, &first_pos)
                            }
                            _ => Err(self.duplicate(&format!("{}{name}", set.prefix), &pos, &first_pos)),
                        }
                    } else {
                        self.add_path(&mut nested, rest, value, true, path_pos)
                    };
                    set.statics[i].value = Pending::Nested(nested);
                    merged
                } else if rest.is_empty() {
                    self.add_static(set, name, Pending::Expr(value), pos)
                } else {
                    let mut nested = PendingSet { pos: Some(pos), prefix: format!("{}{name}.", set.prefix), ..PendingSet::default() };
                    self.add_path(&mut nested, rest, value, true, path_pos)?;
                    self.add_static(set, name, Pending::Nested(nested), pos)
                }
            }
            None => {
                if !allow_dynamic {
                    return Err(self.error(first, "dynamic attributes not allowed in let"));
                }
                let pending = if rest.is_empty() {
                    Pending::Expr(value)
                } else {
                    let mut nested = PendingSet { pos: Some(pos), ..PendingSet::default() };
                    self.add_path(&mut nested, rest, value, true, path_pos)?;
                    Pending::Nested(nested)
                };
                set.dynamics.push((first.clone(), pending, pos));
                Ok(())
            }
        }
    }

    fn merge_literal(&mut self, nested: &mut PendingSet, lit: &ast::AttrSet, _first: &Pos) -> EvalResult<()> {
        let other = self.collect_entries(lit.entries(), true)?;
        let offset = nested.inherit_from.len();
        nested.inherit_from.extend(other.inherit_from);
        for attr in other.statics {
            let value = match attr.value {
                Pending::InheritFrom(i) => Pending::InheritFrom(i + offset),
                v => v,
            };
            self.add_static(nested, attr.name, value, attr.pos)?;
        }
        nested.dynamics.extend(other.dynamics);
        Ok(())
    }

    /// Lowers one pending value. `outer_skip` is how many scopes a plain `inherit` skips.
    fn lower_pending(&mut self, name: Symbol, value: Pending, pos: &Pos, from: &[ExprRef], outer_skip: usize) -> EvalResult<(ExprRef, bool)> {
        Ok(match value {
            Pending::Expr(ast::Expr::Lambda(l)) => (Rc::new(Expr::Lambda(self.lower_lambda(&l, Some(name))?)), false),
            Pending::Expr(e) => (self.lower(&e)?, false),
            Pending::Nested(set) => {
                let set_pos = set.pos.unwrap_or(*pos);
                let rec = set.rec;
                let (bindings, dynamic) = self.lower_set_bindings(set, rec)?;
                (Rc::new(Expr::Attrs { rec, bindings, dynamic, pos: set_pos }), false)
            }
            Pending::InheritVar => (self.resolve_skipping(name, *pos, outer_skip)?, outer_skip > 0),
            Pending::InheritFrom(i) => match from.get(i) {
                Some(e) => (Rc::new(Expr::Select(e.clone(), vec![AttrName::Static(name)], None, *pos)), false),
                None => return Err(EvalError::other("internal error: inherit source missing").at(pos)),
            },
        })
    }

    fn lower_dynamics(&mut self, dynamics: Vec<(ast::Attr, Pending, Pos)>, from: &[ExprRef]) -> EvalResult<Vec<DynamicBinding>> {
        let mut out = Vec::new();
        for (attr, pending, pos) in dynamics {
            let name = match self.lower_attr_name(&attr)? {
                AttrName::Dynamic(e) => e,
                AttrName::Static(s) => Rc::new(Expr::Const(Value::string(s.as_str()))),
            };
            let (value, _) = self.lower_pending(Symbol::new(""), pending, &pos, from, 0)?;
            out.push(DynamicBinding { name, value, pos });
        }
        Ok(out)
    }

    /// Lowers the bindings of a set; a `rec` set gets a scope of its own.
    pub(super) fn lower_set_bindings(&mut self, set: PendingSet, rec: bool) -> EvalResult<(Vec<Binding>, Vec<DynamicBinding>)> {
        if rec {
            let mut dynamics = None;
            let (bindings, ()) = self.lower_rec_bindings_with(set, |this, rest, from| {
                dynamics = Some(this.lower_dynamics(rest, from)?);
                Ok(())
            })?;
            return Ok((bindings, dynamics.unwrap_or_default()));
        }
        let from: Vec<ExprRef> = set.inherit_from.iter().map(|e| self.lower(e)).collect::<EvalResult<_>>()?;
        let mut bindings = Vec::new();
        for attr in set.statics {
            let (value, _) = self.lower_pending(attr.name, attr.value, &attr.pos, &from, 0)?;
            bindings.push(Binding { name: attr.name, value, outer_scope: false, pos: attr.pos });
        }
        // In name order, as the set will be: evaluating the literal then needs no sort.
        bindings.sort_by_key(|b| b.name);
        let dynamic = self.lower_dynamics(set.dynamics, &from)?;
        Ok((bindings, dynamic))
    }

    /// Lowers `let` bindings and then the body in their scope.
    pub(super) fn lower_rec_bindings(
        &mut self,
        set: PendingSet,
        _node: &ast::LetIn,
        body: impl FnOnce(&mut Self) -> EvalResult<ExprRef>,
    ) -> EvalResult<(Vec<Binding>, ExprRef)> {
        let mut body_expr = None;
        let (bindings, ()) = self.lower_rec_bindings_with(set, |this, _rest, _from| {
            body_expr = Some(body(this)?);
            Ok(())
        })?;
        match body_expr {
            Some(b) => Ok((bindings, b)),
            None => Err(EvalError::other("internal error: let body missing")),
        }
    }

    /// Pushes a scope with the set's static names, lowers the bindings and runs `then` inside it.
    fn lower_rec_bindings_with<T>(
        &mut self,
        set: PendingSet,
        then: impl FnOnce(&mut Self, Vec<(ast::Attr, Pending, Pos)>, &[ExprRef]) -> EvalResult<T>,
    ) -> EvalResult<(Vec<Binding>, T)> {
        // Slots in name order (bindings are lowered in source order, then sorted), so that a
        // `rec` set's bindings are already sorted as its attributes when it is evaluated.
        let mut by_name: Vec<usize> = (0..set.statics.len()).collect();
        by_name.sort_by_key(|&i| set.statics[i].name);
        let mut slot_of = vec![0u32; set.statics.len()];
        for (slot, &i) in by_name.iter().enumerate() {
            slot_of[i] = slot as u32;
        }
        let names = set.statics.iter().zip(&slot_of).map(|(a, &slot)| (a.name, slot)).collect();
        self.scopes.push(Scope::Static(names));
        let result = (|| {
            let from: Vec<ExprRef> = set.inherit_from.iter().map(|e| self.lower(e)).collect::<EvalResult<_>>()?;
            let mut bindings = Vec::new();
            for attr in set.statics {
                let (value, outer_scope) = self.lower_pending(attr.name, attr.value, &attr.pos, &from, 1)?;
                bindings.push(Binding { name: attr.name, value, outer_scope, pos: attr.pos });
            }
            bindings.sort_by_key(|b| b.name);
            let t = then(self, set.dynamics, &from)?;
            Ok((bindings, t))
        })();
        self.scopes.pop();
        result
    }
}
