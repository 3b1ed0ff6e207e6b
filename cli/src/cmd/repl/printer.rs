//! Printing values as `nix repl` does (Nix's `Printer` with the repl's options): values forced
//! as they are printed, derivations as `«derivation /nix/store/….drv»`, sets and lists of more
//! than one item (or holding nested ones) one item a line, indented by two, and nesting past
//! the depth limit as `{ ... }` / `[ ... ]`. An error below the top is printed in place as
//! `«error: …»`; one at the top ends the printing.

use std::collections::HashSet;
use std::fmt::Write;

use eval::print::{format_float, print_identifier, push_string_literal};
use eval::value::List;
use eval::{EvalError, EvalResult, Evaluator, Value};

const CYAN: &str = "\x1b[36;1m";
const MAGENTA: &str = "\x1b[35;1m";
const GREEN: &str = "\x1b[32;1m";
const BLUE: &str = "\x1b[34;1m";
const RED: &str = "\x1b[31;1m";
const NORMAL: &str = "\x1b[0m";

/// How deep to print and whether to colour.
#[derive(Clone, Copy)]
pub struct PrintOptions {
    /// Sets and lists nested deeper than this are elided (1 for a plain expression).
    pub max_depth: usize,
    /// Whether to use ANSI colours (when standard output is a terminal).
    pub colors: bool,
}

/// What was printed, and the error that stopped the printing at the top level, if any (Nix
/// has written the text before it when it reports the error).
pub struct Printed {
    /// The text.
    pub text: String,
    /// The top-level error.
    pub error: Option<EvalError>,
}

/// Prints `v` (forcing it as far as it prints).
pub fn print_value(ev: &mut Evaluator, v: &Value, options: PrintOptions) -> Printed {
    let mut printer = Printer { ev, options, out: String::new(), indent: String::new(), seen: HashSet::new() };
    let error = printer.print(v, 0).err();
    Printed { text: printer.out, error }
}

struct Printer<'a> {
    ev: &'a mut Evaluator,
    options: PrintOptions,
    out: String,
    indent: String,
    seen: HashSet<usize>,
}

impl Printer<'_> {
    fn colored(&mut self, color: &str, text: &str) {
        if self.options.colors {
            self.out.push_str(color);
            self.out.push_str(text);
            self.out.push_str(NORMAL);
        } else {
            self.out.push_str(text);
        }
    }

    fn space(&mut self, pretty: bool) {
        if pretty {
            self.out.push('\n');
            self.out.push_str(&self.indent);
        } else {
            self.out.push(' ');
        }
    }

    /// Prints one value at `depth`; errors below the top are printed in place.
    fn print(&mut self, v: &Value, depth: usize) -> EvalResult<()> {
        let indent = self.indent.len();
        match eval::machine::with_stack(|| self.print_forced(v, depth)) {
            Ok(()) => Ok(()),
            Err(e) if depth == 0 => Err(e),
            Err(e) => {
                // What was written before the error stays, as in Nix.
                self.indent.truncate(indent);
                let message = super::super::store::connect::strip_ansi(&e.message);
                self.colored(RED, &format!("«error: {message}»"));
                Ok(())
            }
        }
    }

    fn print_forced(&mut self, v: &Value, depth: usize) -> EvalResult<()> {
        let v = self.ev.force(v)?;
        match &v {
            Value::Null => self.colored(CYAN, "null"),
            Value::Bool(b) => self.colored(CYAN, if *b { "true" } else { "false" }),
            Value::Int(i) => self.colored(CYAN, &i.to_string()),
            Value::Float(f) => self.colored(CYAN, &format_float(*f)),
            Value::String(s) => {
                let mut text = String::new();
                push_string_literal(&mut text, &s.text);
                self.colored(MAGENTA, &text);
            }
            Value::Path(p) => self.colored(GREEN, p),
            Value::Attrs(a) => self.print_attrs(a, depth)?,
            Value::List(l) => self.print_list(l, depth)?,
            Value::Lambda(c) => {
                let text = match c.lambda.name {
                    Some(n) => format!("«lambda {n} @ {}»", c.lambda.pos),
                    None => format!("«lambda @ {}»", c.lambda.pos),
                };
                self.colored(BLUE, &text);
            }
            Value::PrimOp(p) if p.args.is_empty() => self.colored(BLUE, &format!("«primop {}»", p.op.name)),
            Value::PrimOp(p) => self.colored(BLUE, &format!("«partially applied primop {}»", p.op.name)),
            Value::Thunk(_) => self.colored(MAGENTA, "«thunk»"),
        }
        Ok(())
    }

    fn print_attrs(&mut self, a: &eval::value::Attrs, depth: usize) -> EvalResult<()> {
        if !a.is_empty() && !self.seen.insert(a.addr()) {
            self.colored(MAGENTA, "«repeated»");
            return Ok(());
        }
        if self.ev.is_derivation(a)? {
            return self.print_derivation(a);
        }
        if depth >= self.options.max_depth {
            self.out.push_str("{ ... }");
            return Ok(());
        }
        self.indent.push_str("  ");
        self.out.push('{');
        let mut sorted: Vec<(&str, &Value)> = a.iter().map(|attr| (attr.name.as_str(), &attr.value)).collect();
        sorted.sort_by(|x, y| x.0.cmp(y.0));
        let pretty = match sorted.as_slice() {
            [] => false,
            [(_, only)] => self.is_nested(only)?,
            _ => true,
        };
        for (name, value) in sorted {
            self.space(pretty);
            print_identifier(&mut self.out, name);
            self.out.push_str(" = ");
            self.print(value, depth + 1)?;
            self.out.push(';');
        }
        self.indent.truncate(self.indent.len() - 2);
        self.space(pretty);
        self.out.push('}');
        Ok(())
    }

    fn print_list(&mut self, l: &List, depth: usize) -> EvalResult<()> {
        if !l.is_empty() && !self.seen.insert(l.addr()) {
            self.colored(MAGENTA, "«repeated»");
            return Ok(());
        }
        if depth >= self.options.max_depth {
            self.out.push_str("[ ... ]");
            return Ok(());
        }
        self.indent.push_str("  ");
        self.out.push('[');
        let pretty = match &l[..] {
            [] => false,
            [only] => self.is_nested(only)?,
            _ => true,
        };
        for item in l.iter() {
            self.space(pretty);
            self.print(item, depth + 1)?;
        }
        self.indent.truncate(self.indent.len() - 2);
        self.space(pretty);
        self.out.push(']');
        Ok(())
    }

    /// Whether the only item of a set or list holds a set or list (it is forced here, as Nix
    /// forces it: it is printed next anyway).
    fn is_nested(&mut self, item: &Value) -> EvalResult<bool> {
        let item = self.ev.force(item)?;
        Ok(matches!(item, Value::Attrs(_) | Value::List(_)))
    }

    fn print_derivation(&mut self, a: &eval::value::Attrs) -> EvalResult<()> {
        let mut text = String::from("«derivation");
        if let Some(drv) = a.get_str("drvPath") {
            let drv = drv.clone();
            let mut ctx = Default::default();
            let path = self.ev.coerce_to_string(&drv, &mut ctx, false, false)?;
            let _ = write!(text, " {path}");
        }
        text.push('»');
        self.colored(GREEN, &text);
        Ok(())
    }
}
