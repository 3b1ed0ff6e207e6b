//! What `nix-instantiate --eval` does with the value of its expression: select `-A` paths,
//! call functions with `--arg`/`--argstr` values, and print in one of its formats.

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Evaluator;
use crate::symbol::Symbol;
use crate::value::{Attrs, Context, Value};

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Nix syntax, with `<CODE>` for unevaluated parts.
    Plain,
    /// The string itself, without quotes or newline.
    Raw,
    /// JSON.
    Json,
    /// Nix's XML; `location` adds source positions (off with `--no-location`).
    Xml {
        /// Whether attributes and functions carry their source positions.
        location: bool,
    },
}

impl Evaluator {
    /// Nix's `autoCallFunction`: a function with formals is called with the automatic arguments
    /// it asks for; anything else is returned as it is.
    pub fn auto_call(&mut self, v: &Value, auto_args: &Attrs) -> EvalResult<Value> {
        let f = self.force(v)?;
        match &f {
            Value::Attrs(a) => {
                if let Some(functor) = a.get(Symbol::new("__functor")).cloned() {
                    let inner = self.apply(functor, f.clone(), None)?;
                    return self.auto_call(&inner, auto_args);
                }
                Ok(f)
            }
            Value::Lambda(c) => match &c.lambda.formals {
                None => Ok(f.clone()),
                Some(formals) => {
                    let mut entries = Vec::new();
                    for formal in &formals.entries {
                        match auto_args.get_attr(formal.name) {
                            Some(a) => entries.push(a.clone()),
                            None if formal.default.is_some() => {}
                            None => {
                                return Err(EvalError::new(
                                    ErrorKind::Missing,
                                    format!(
                                        "cannot evaluate a function that has an argument without a value ('{}')\n\
                                         Nix attempted to evaluate a function as a top level expression; in\n\
                                         this case it must have its arguments supplied either by default\n\
                                         values, or passed explicitly with '--arg' or '--argstr'. See\n\
                                         https://nix.dev/manual/nix/stable/language/constructs.html#functions.",
                                        formal.name
                                    ),
                                )
                                .at(&c.lambda.pos))
                            }
                        }
                    }
                    let arg = if formals.ellipsis { Value::Attrs(auto_args.clone()) } else { Value::attrs(Attrs::from_sorted(entries)) };
                    let r = self.apply(f.clone(), arg, None)?;
                    self.force(&r)
                }
            },
            _ => Ok(f),
        }
    }

    /// Nix's `findAlongAttrPath`: follows `a.b.0.c` (numbers index lists), auto-calling the
    /// function at every step before selecting from it.
    pub fn find_along_attr_path(&mut self, root: &Value, path: &str, auto_args: &Attrs) -> EvalResult<Value> {
        let mut v = root.clone();
        if path.is_empty() {
            return self.force(&v);
        }
        for component in split_attr_path(path)? {
            v = self.auto_call(&v, auto_args)?;
            v = match component.parse::<usize>() {
                Ok(index) if !component.is_empty() => match self.force(&v)? {
                    Value::List(l) => match l.get(index) {
                        Some(x) => x.clone(),
                        None => return Err(EvalError::other(format!("list index {index} in selection path '{path}' is out of range"))),
                    },
                    other => {
                        return Err(EvalError::type_error(format!(
                            "the expression selected by the selection path '{path}' should be a list but is {}",
                            other.describe()
                        )))
                    }
                },
                _ => match self.force(&v)? {
                    Value::Attrs(a) => match a.get(Symbol::new(&component)) {
                        Some(x) => x.clone(),
                        None => return Err(EvalError::new(ErrorKind::Missing, format!("attribute '{component}' in selection path '{path}' not found"))),
                    },
                    other => {
                        return Err(EvalError::type_error(format!(
                            "the expression selected by the selection path '{path}' should be a set but is {}",
                            other.describe()
                        )))
                    }
                },
            };
        }
        self.force(&v)
    }

    /// Renders the final value as `nix-instantiate --eval` prints it (with the trailing newline
    /// where Nix prints one).
    pub fn render_output(&mut self, v: &Value, format: OutputFormat, strict: bool) -> EvalResult<String> {
        match format {
            OutputFormat::Plain => {
                let v = if strict { self.deep_force(v)? } else { self.force(v)? };
                Ok(format!("{}\n", crate::print::print_ambiguous(&v)))
            }
            OutputFormat::Raw => {
                let mut ctx = Context::new();
                self.coerce_to_string(v, &mut ctx, false, true)
            }
            OutputFormat::Json => {
                let mut ctx = Context::new();
                let mut out = String::new();
                self.to_json(v, strict, &mut ctx, &mut out)?;
                out.push('\n');
                Ok(out)
            }
            OutputFormat::Xml { location } => {
                let mut ctx = Context::new();
                self.to_xml(v, strict, location, &mut ctx)
            }
        }
    }
}

/// Splits `a."b.c".d` into its components.
pub fn split_attr_path(path: &str) -> EvalResult<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '.' => out.push(std::mem::take(&mut cur)),
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => cur.push(c),
                    None => return Err(EvalError::other(format!("missing closing quote in selection path '{path}'"))),
                }
            },
            c => cur.push(c),
        }
    }
    out.push(cur);
    Ok(out)
}
