//! `builtins.toXML` and `--xml` output, in the format of Nix's `printValueAsXML`.

use std::collections::{BTreeMap, HashSet};

use super::PrimOpDef;
use crate::error::EvalResult;
use crate::machine::{with_stack, Evaluator};
use crate::source::Pos;
use crate::symbol::Symbol;
use crate::value::{Context, Value};

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[PrimOpDef { name: "toXML", arity: 1, fun: to_xml }];

fn to_xml(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let s = ev.to_xml(&args[0], true, false, &mut ctx)?;
    Ok(Value::string_with_context(s, ctx))
}

struct Writer {
    out: String,
    depth: usize,
}

type XmlAttrs = BTreeMap<&'static str, String>;

impl Writer {
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn attrs(&mut self, attrs: &XmlAttrs) {
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '"' => self.out.push_str("&quot;"),
                    '<' => self.out.push_str("&lt;"),
                    '>' => self.out.push_str("&gt;"),
                    '&' => self.out.push_str("&amp;"),
                    '\n' => self.out.push_str("&#xA;"),
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
    }

    fn empty(&mut self, name: &str, attrs: &XmlAttrs) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(attrs);
        self.out.push_str(" />\n");
    }

    fn open(&mut self, name: &str, attrs: &XmlAttrs) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(attrs);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }
}

fn one(key: &'static str, value: impl Into<String>) -> XmlAttrs {
    let mut m = XmlAttrs::new();
    m.insert(key, value.into());
    m
}

fn pos_attrs(attrs: &mut XmlAttrs, pos: &Pos) {
    if let crate::source::Origin::File(p) = &pos.source().origin {
        attrs.insert("path", p.clone());
    }
    let (line, col) = pos.line_col();
    attrs.insert("line", line.to_string());
    attrs.insert("column", col.to_string());
}

impl Evaluator {
    /// Renders a value as Nix's XML.
    pub fn to_xml(&mut self, v: &Value, strict: bool, location: bool, ctx: &mut Context) -> EvalResult<String> {
        let mut w = Writer { out: String::from("<?xml version='1.0' encoding='utf-8'?>\n"), depth: 0 };
        w.open("expr", &XmlAttrs::new());
        let mut seen = HashSet::new();
        self.xml_value(&mut w, v, strict, location, ctx, &mut seen)?;
        w.close("expr");
        Ok(w.out)
    }

    fn xml_attrs(&mut self, w: &mut Writer, attrs: &crate::value::Attrs, strict: bool, location: bool, ctx: &mut Context, seen: &mut HashSet<String>) -> EvalResult<()> {
        for a in attrs.iter() {
            let mut xa = one("name", a.name.as_str());
            if location {
                if let Some(p) = &a.pos {
                    pos_attrs(&mut xa, p);
                }
            }
            w.open("attr", &xa);
            self.xml_value(w, &a.value, strict, location, ctx, seen)?;
            w.close("attr");
        }
        Ok(())
    }

    fn xml_value(&mut self, w: &mut Writer, v: &Value, strict: bool, location: bool, ctx: &mut Context, seen: &mut HashSet<String>) -> EvalResult<()> {
        let v = if strict { self.force(v)? } else { v.clone() };
        let v = match &v {
            Value::Thunk(t) => match t.view() {
                crate::value::ThunkView::Done(x) => x,
                _ => Value::Null,
            },
            _ => v,
        };
        if let Value::Thunk(_) = v {
            w.empty("unevaluated", &XmlAttrs::new());
            return Ok(());
        }
        with_stack(|| match &v {
            Value::Int(i) => {
                w.empty("int", &one("value", i.to_string()));
                Ok(())
            }
            Value::Bool(b) => {
                w.empty("bool", &one("value", if *b { "true" } else { "false" }));
                Ok(())
            }
            Value::String(s) => {
                ctx.extend(s.context.iter().cloned());
                w.empty("string", &one("value", s.text.clone()));
                Ok(())
            }
            Value::Path(p) => {
                w.empty("path", &one("value", p.to_string()));
                Ok(())
            }
            Value::Null => {
                w.empty("null", &XmlAttrs::new());
                Ok(())
            }
            Value::Float(f) => {
                w.empty("float", &one("value", crate::print::format_float(*f)));
                Ok(())
            }
            Value::Attrs(a) => {
                if self.is_derivation(a)? {
                    let mut xa = XmlAttrs::new();
                    let mut drv_path = String::new();
                    if let Some(d) = a.get(Symbol::new("drvPath")).cloned() {
                        let d = if strict { self.force(&d)? } else { d };
                        if let Value::String(s) = d {
                            drv_path = s.text.clone();
                            xa.insert("drvPath", s.text.clone());
                        }
                    }
                    if let Some(o) = a.get(Symbol::new("outPath")).cloned() {
                        let o = if strict { self.force(&o)? } else { o };
                        if let Value::String(s) = o {
                            xa.insert("outPath", s.text.clone());
                        }
                    }
                    w.open("derivation", &xa);
                    if !drv_path.is_empty() && seen.insert(drv_path) {
                        self.xml_attrs(w, a, strict, location, ctx, seen)?;
                    } else {
                        w.empty("repeated", &XmlAttrs::new());
                    }
                    w.close("derivation");
                } else {
                    w.open("attrs", &XmlAttrs::new());
                    self.xml_attrs(w, a, strict, location, ctx, seen)?;
                    w.close("attrs");
                }
                Ok(())
            }
            Value::List(l) => {
                w.open("list", &XmlAttrs::new());
                for item in l.iter() {
                    self.xml_value(w, item, strict, location, ctx, seen)?;
                }
                w.close("list");
                Ok(())
            }
            Value::Lambda(c) => {
                let mut xa = XmlAttrs::new();
                if location {
                    pos_attrs(&mut xa, &c.lambda.pos);
                }
                w.open("function", &xa);
                match &c.lambda.formals {
                    Some(f) => {
                        let mut pa = XmlAttrs::new();
                        if let Some(at) = f.at {
                            pa.insert("name", at.as_str().to_string());
                        }
                        if f.ellipsis {
                            pa.insert("ellipsis", "1".into());
                        }
                        w.open("attrspat", &pa);
                        for e in &f.entries {
                            w.empty("attr", &one("name", e.name.as_str()));
                        }
                        w.close("attrspat");
                    }
                    None => {
                        let name = c.lambda.arg.map(|a| a.as_str()).unwrap_or("");
                        w.empty("varpat", &one("name", name));
                    }
                }
                w.close("function");
                Ok(())
            }
            _ => {
                w.empty("unevaluated", &XmlAttrs::new());
                Ok(())
            }
        })
    }
}
