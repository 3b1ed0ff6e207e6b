//! Printing values: `nix-instantiate --eval`'s format (`printAmbiguous`), the short form used in
//! error messages, and Nix's float formatting.

use std::collections::HashSet;
use std::fmt::Write;

use crate::value::{ThunkView, Value};

/// Formats a float as C++ streams do by default (`%g` with 6 significant digits).
pub fn format_float(x: f64) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let precision = 6i32;
    let exp = format!("{:.*e}", (precision - 1) as usize, x);
    let (mantissa, e) = exp.split_once('e').unwrap_or((&exp, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    if e < -4 || e >= precision {
        let m = trim_zeros(mantissa);
        let sign = if e < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", e.abs())
    } else {
        let decimals = (precision - 1 - e).max(0) as usize;
        trim_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Appends a string literal with Nix's escapes.
pub fn push_string_literal(out: &mut String, s: &str) {
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Prints a value as `nix-instantiate --eval` does: unevaluated parts as `<CODE>`, functions as
/// `<LAMBDA>`/`<PRIMOP>`/`<PRIMOP-APP>`, a set or list seen before as `«repeated»`.
pub fn print_ambiguous(v: &Value) -> String {
    let mut out = String::new();
    let mut seen = HashSet::new();
    crate::machine::with_stack(|| ambiguous(&mut out, v, &mut seen));
    out
}

/// Nix keeps lists of up to two elements inside the value that holds them, so their identity
/// (for «repeated») is that of the holder: here the thunk they were reached through.
const SMALL_LIST: usize = 2;

fn ambiguous(out: &mut String, v: &Value, seen: &mut HashSet<usize>) {
    let holder = match v {
        Value::Thunk(t) => Some(t.addr()),
        _ => None,
    };
    let v = match v {
        Value::Thunk(t) => match t.view() {
            ThunkView::Done(v) => v,
            ThunkView::Blackhole => {
                out.push_str("«potential infinite recursion»");
                return;
            }
            ThunkView::Pending => {
                out.push_str("<CODE>");
                return;
            }
        },
        other => other.clone(),
    };
    match &v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float(*f)),
        Value::String(s) => push_string_literal(out, &s.text),
        Value::Path(p) => out.push_str(p),
        Value::Attrs(a) => {
            if !a.is_empty() && !seen.insert(a.addr()) {
                out.push_str("«repeated»");
                return;
            }
            out.push_str("{ ");
            for attr in a.iter() {
                print_identifier(out, attr.name.as_str());
                out.push_str(" = ");
                crate::machine::with_stack(|| ambiguous(out, &attr.value, seen));
                out.push_str("; ");
            }
            out.push('}');
        }
        Value::List(l) => {
            let key = if l.len() <= SMALL_LIST { holder } else { Some(l.addr()) };
            if let Some(key) = key {
                if !l.is_empty() && !seen.insert(key) {
                    out.push_str("«repeated»");
                    return;
                }
            }
            out.push_str("[ ");
            for item in l.iter() {
                crate::machine::with_stack(|| ambiguous(out, item, seen));
                out.push(' ');
            }
            out.push(']');
        }
        Value::Lambda(_) => out.push_str("<LAMBDA>"),
        Value::PrimOp(p) if p.args.is_empty() => out.push_str("<PRIMOP>"),
        Value::PrimOp(_) => out.push_str("<PRIMOP-APP>"),
        Value::Thunk(_) => out.push_str("<CODE>"),
    }
}

/// A short rendering of a value for error messages (Nix's `ValuePrinter` with its
/// `errorPrintOptions`): nothing is forced, sets and lists deeper than 10 are elided, at most
/// 10 attributes and 10 list items in all are shown (`type`/`_type` first), strings are cut
/// at 1024 bytes, and a set met again is `«repeated»`.
pub fn error_repr(v: &Value) -> String {
    let mut printer = ShortPrinter { out: String::new(), attrs_printed: 0, items_printed: 0, seen: HashSet::new() };
    printer.print(v, 0);
    printer.out
}

/// The limits of [`error_repr`].
const SHORT_MAX_DEPTH: usize = 10;
const SHORT_MAX_ATTRS: usize = 10;
const SHORT_MAX_ITEMS: usize = 10;
const SHORT_MAX_STRING: usize = 1024;

struct ShortPrinter {
    out: String,
    attrs_printed: usize,
    items_printed: usize,
    seen: HashSet<usize>,
}

fn elided(out: &mut String, n: usize, single: &str, plural: &str) {
    let _ = write!(out, "«{n} {} elided»", if n == 1 { single } else { plural });
}

impl ShortPrinter {
    fn print(&mut self, v: &Value, depth: usize) {
        let v = match v {
            Value::Thunk(t) => match t.view() {
                ThunkView::Done(v) => v,
                ThunkView::Blackhole => {
                    self.out.push_str("«potential infinite recursion»");
                    return;
                }
                ThunkView::Pending => {
                    self.out.push_str("«thunk»");
                    return;
                }
            },
            other => other.clone(),
        };
        match &v {
            Value::String(s) => {
                if s.text.len() > SHORT_MAX_STRING {
                    let mut cut = SHORT_MAX_STRING;
                    while !s.text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    push_string_literal(&mut self.out, &s.text[..cut]);
                    self.out.push(' ');
                    elided(&mut self.out, s.text.len() - cut, "byte", "bytes");
                } else {
                    push_string_literal(&mut self.out, &s.text);
                }
            }
            Value::Attrs(a) => {
                if !a.is_empty() && !self.seen.insert(a.addr()) {
                    self.out.push_str("«repeated»");
                    return;
                }
                if depth >= SHORT_MAX_DEPTH {
                    self.out.push_str("{ ... }");
                    return;
                }
                let mut sorted: Vec<&crate::value::Attr> = a.iter().collect();
                let important = |n: &str| n == "type" || n == "_type";
                sorted.sort_by(|x, y| {
                    let (x, y) = (x.name.as_str(), y.name.as_str());
                    (!important(x), x).cmp(&(!important(y), y))
                });
                self.out.push('{');
                for (i, attr) in sorted.iter().enumerate() {
                    self.out.push(' ');
                    if self.attrs_printed >= SHORT_MAX_ATTRS {
                        elided(&mut self.out, sorted.len() - i, "attribute", "attributes");
                        break;
                    }
                    print_identifier(&mut self.out, attr.name.as_str());
                    self.out.push_str(" = ");
                    crate::machine::with_stack(|| self.print(&attr.value, depth + 1));
                    self.out.push(';');
                    self.attrs_printed += 1;
                }
                self.out.push_str(" }");
            }
            Value::List(l) => {
                if depth >= SHORT_MAX_DEPTH {
                    self.out.push_str("[ ... ]");
                    return;
                }
                self.out.push('[');
                for (i, item) in l.iter().enumerate() {
                    self.out.push(' ');
                    if self.items_printed >= SHORT_MAX_ITEMS {
                        elided(&mut self.out, l.len() - i, "item", "items");
                        break;
                    }
                    crate::machine::with_stack(|| self.print(item, depth + 1));
                    self.items_printed += 1;
                }
                self.out.push_str(" ]");
            }
            Value::Lambda(c) => {
                let pos = &c.lambda.pos;
                match c.lambda.name {
                    Some(n) => {
                        let _ = write!(self.out, "«lambda {n} @ {pos}»");
                    }
                    None => {
                        let _ = write!(self.out, "«lambda @ {pos}»");
                    }
                }
            }
            Value::PrimOp(p) if p.args.is_empty() => {
                let _ = write!(self.out, "«primop {}»", p.op.name);
            }
            Value::PrimOp(p) => {
                let _ = write!(self.out, "«partially applied primop {}»", p.op.name);
            }
            other => {
                let mut seen = HashSet::new();
                ambiguous(&mut self.out, other, &mut seen);
            }
        }
    }
}

/// Appends an attribute name, quoted when it is not a plain identifier.
pub fn print_identifier(out: &mut String, s: &str) {
    const RESERVED: [&str; 9] = ["if", "then", "else", "assert", "with", "let", "in", "rec", "inherit"];
    let plain = !s.is_empty()
        && !RESERVED.contains(&s)
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '\'' || c == '-');
    if plain {
        out.push_str(s);
    } else {
        push_string_literal(out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::format_float;

    #[test]
    fn floats_like_cpp_streams() {
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(format_float(1e20), "1e+20");
        assert_eq!(format_float(3.0), "3");
        assert_eq!(format_float(1.0 / 3.0), "0.333333");
        assert_eq!(format_float(123456789.0), "1.23457e+08");
        assert_eq!(format_float(0.0001), "0.0001");
        assert_eq!(format_float(0.00001), "1e-05");
    }
}
