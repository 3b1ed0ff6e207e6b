//! One repl session: its scope of variables and the processing of one complete input, as
//! Nix 2.26's `NixRepl::processLine`.

use eval::source::Origin;
use eval::symbol::Symbol;
use eval::value::Attrs;
use eval::{ErrorKind, EvalError, Evaluator, Value};
use nix_formats::derived_path::{DerivedPath, OutputsSpec, SingleDerivedPath};

use super::printer::{print_value, PrintOptions};
use crate::cmd::daemon_io::DaemonIo;
use crate::cmd::store::connect::StoreLocation;

/// Why an input failed.
pub enum Failure {
    /// An evaluation error, printed as `casnix eval` prints it.
    Eval(EvalError),
    /// Anything else (`error: ...`).
    Other(anyhow::Error),
    /// A syntax error at the end of the input: more lines are wanted.
    Incomplete,
}

impl From<EvalError> for Failure {
    fn from(e: EvalError) -> Failure {
        // Only the input's own end: a file loaded with a truncated end is an error.
        let in_input = e.pos.as_ref().is_some_and(|p| p.source().origin == Origin::String);
        if e.kind == ErrorKind::Parse && in_input && e.message.contains("unexpected end of file") {
            Failure::Incomplete
        } else {
            Failure::Eval(e)
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Other(e)
    }
}

/// What to do after an input.
pub enum Next {
    /// Read the next input.
    Prompt,
    /// End the session (`:q`).
    Quit,
}

/// The state of a session.
pub struct Session {
    /// The evaluator.
    pub ev: Evaluator,
    /// The variables bound so far, each name once.
    scope: Vec<(Symbol, Value)>,
    /// Relative paths in the input are relative to this directory.
    base_dir: String,
    /// Where to build (`:b`); `Err` says why there is no daemon.
    store: Result<StoreLocation, String>,
    /// Whether errors show their trace (`--show-trace`, `:te`).
    pub show_trace: bool,
    /// Whether output is coloured.
    pub colors: bool,
}

/// Nix's `isVarName`: what may stand left of `=` in `x = expr`.
fn is_var_name(s: &str) -> bool {
    const RESERVED: [&str; 9] = ["if", "then", "else", "assert", "with", "let", "in", "rec", "inherit"];
    let Some(first) = s.chars().next() else { return false };
    !(RESERVED.contains(&s) || first.is_ascii_digit() || first == '-' || first == '\'')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '\'')
}

/// Nix's `showType` for the value `:t` prints.
fn show_type(v: &Value) -> String {
    match v {
        Value::String(s) if !s.context.is_empty() => "a string with context".into(),
        Value::PrimOp(p) if p.args.is_empty() => format!("the built-in function '{}'", p.op.name),
        Value::PrimOp(p) => format!("the partially applied built-in function '{}'", p.op.name),
        other => other.describe().into(),
    }
}

const HELP: &str = "\
The following commands are available:

  <expr>                       Evaluate and print expression
  <x> = <expr>                 Bind expression to variable
  :a, :add <expr>              Add attributes from resulting set to scope
  :b <expr>                    Build a derivation
  :l, :load <path>             Load Nix expression and add it to scope
  :p, :print <expr>            Evaluate and print expression recursively
                               Strings are printed directly, without escaping.
  :q, :quit                    Exit the repl
  :t <expr>                    Describe result of evaluation
  :te, :trace-enable [bool]    Enable, disable or toggle showing traces for
                               errors
  :?, :help                    Brings up this help menu
";

impl Session {
    /// A session over `ev`; `store` is where `:b` builds.
    pub fn new(ev: Evaluator, base_dir: String, store: Result<StoreLocation, String>) -> Session {
        let show_trace = ev.options.show_trace;
        Session { ev, scope: Vec::new(), base_dir, store, show_trace, colors: false }
    }

    fn print_options(&self, max_depth: usize) -> PrintOptions {
        PrintOptions { max_depth, colors: self.colors }
    }

    /// Evaluates `text` in the session's scope (forced to its outermost constructor).
    fn eval(&mut self, text: &str) -> Result<Value, Failure> {
        let v = self.ev.eval_string_in_scope(text, &self.base_dir, &self.scope, false)?;
        Ok(self.ev.force(&v)?)
    }

    /// Binds `name` to `value`, replacing an earlier binding of the name.
    fn bind(&mut self, name: Symbol, value: Value) {
        match self.scope.iter_mut().find(|(n, _)| n.as_str() == name.as_str()) {
            Some(slot) => slot.1 = value,
            None => self.scope.push((name, value)),
        }
    }

    /// Adds the attributes of a set to the scope (`:l`, `:a`) and says how many.
    fn add_attrs(&mut self, v: &Value) -> Result<(), Failure> {
        let attrs = self
            .ev
            .force_attrs(v)
            .map_err(|e| e.with_frame(None, "while evaluating an attribute set to be merged in the global scope"))?;
        for attr in attrs.iter() {
            self.bind(attr.name, attr.value.clone());
        }
        eprintln!("Added {} variables.", attrs.len());
        Ok(())
    }

    /// Processes one complete input (one line, or several that make one expression); the
    /// results go to `out`.
    pub fn process(&mut self, input: &str, out: &mut String) -> Result<Next, Failure> {
        let line = input.trim();
        if line.is_empty() {
            return Ok(Next::Prompt);
        }
        let (command, arg) = match line.strip_prefix(':') {
            Some(_) => match line.find(|c: char| c.is_ascii_whitespace()) {
                Some(p) => (&line[..p], line[p..].trim()),
                None => (line, ""),
            },
            None => ("", line),
        };
        match command {
            ":?" | ":help" => out.push_str(HELP),
            ":a" | ":add" => {
                let v = self.eval(arg)?;
                self.add_attrs(&v)?;
            }
            ":l" | ":load" => self.load(arg)?,
            ":t" => {
                let v = self.eval(arg)?;
                out.push_str(&show_type(&v));
                out.push('\n');
            }
            ":b" => self.build(arg, out)?,
            ":p" | ":print" => {
                let v = self.eval(arg)?;
                if let Value::String(s) = &v {
                    out.push_str(&s.text);
                } else {
                    let options = self.print_options(usize::MAX);
                    let printed = print_value(&mut self.ev, &v, options);
                    out.push_str(&printed.text);
                    if let Some(e) = printed.error {
                        return Err(Failure::Eval(e));
                    }
                }
                out.push('\n');
            }
            ":q" | ":quit" => return Ok(Next::Quit),
            ":te" | ":trace-enable" => {
                self.show_trace = match arg {
                    "false" => false,
                    "true" => true,
                    "" => !self.show_trace,
                    _ => return Err(Failure::Other(anyhow::anyhow!("unexpected argument '{arg}' to {command}"))),
                };
                self.ev.options.show_trace = self.show_trace;
                out.push_str(if self.show_trace { "showing error traces\n" } else { "not showing error traces\n" });
            }
            "" => self.expression(line, out)?,
            other => return Err(Failure::Other(anyhow::anyhow!("unknown command '{other}'"))),
        }
        Ok(Next::Prompt)
    }

    /// `x = expr` binds (lazily); anything else is evaluated and printed one level deep.
    fn expression(&mut self, line: &str, out: &mut String) -> Result<(), Failure> {
        if let Some(p) = line.find('=') {
            let name = line[..p].trim();
            if line.as_bytes().get(p + 1) != Some(&b'=') && is_var_name(name) {
                let v = self.ev.eval_string_in_scope(&line[p + 1..], &self.base_dir, &self.scope, true)?;
                self.bind(Symbol::new(name), v);
                return Ok(());
            }
        }
        let v = self.eval(line)?;
        let options = self.print_options(1);
        let printed = print_value(&mut self.ev, &v, options);
        out.push_str(&printed.text);
        out.push('\n');
        match printed.error {
            Some(e) => Err(Failure::Eval(e)),
            None => Ok(()),
        }
    }

    /// `:l FILE`: evaluates the file (`<name>` from the search path), calls it if it is a
    /// function of defaulted arguments, and adds its attributes to the scope.
    fn load(&mut self, arg: &str) -> Result<(), Failure> {
        let path = if arg.starts_with('<') && arg.ends_with('>') && arg.len() > 2 {
            match self.ev.find_search_path(&arg[1..arg.len() - 1])? {
                Value::Path(p) => p.to_string(),
                _ => arg.to_string(),
            }
        } else if arg.starts_with('/') {
            eval::path::canonicalize(arg)
        } else {
            eval::path::canonicalize(&format!("{}/{arg}", self.base_dir))
        };
        let v = self.ev.import_file(&path)?;
        let v = self.ev.auto_call(&v, &Attrs::new())?;
        self.add_attrs(&v)
    }

    /// `:b EXPR`: builds every output of the derivation through the daemon and lists them.
    fn build(&mut self, arg: &str, out: &mut String) -> Result<(), Failure> {
        let v = self.eval(arg)?;
        let attrs = match &v {
            Value::Attrs(a) if self.ev.is_derivation(a)? => a.clone(),
            _ => return Err(anyhow::anyhow!("expression does not evaluate to a derivation, so I can't build it").into()),
        };
        let drv_path = match attrs.get_str("drvPath") {
            Some(d) => {
                let d = d.clone();
                let mut ctx = Default::default();
                self.ev.coerce_to_string(&d, &mut ctx, false, false)?
            }
            None => {
                return Err(anyhow::anyhow!("expression did not evaluate to a valid derivation (no 'drvPath' attribute)").into())
            }
        };
        let location = self.store.as_ref().map_err(|e| anyhow::anyhow!("cannot build without a daemon: {e}"))?;
        // A second connection builds, as `casnix build` does: the evaluation's own connection
        // keeps its temporary roots on the derivations meanwhile.
        let mut io = DaemonIo::connect(location)?;
        let store_dir = {
            use eval::io::EvalIo;
            io.store_dir().clone()
        };
        let drv = store_dir.parse(&drv_path).map_err(anyhow::Error::from)?;
        if !io.is_valid(&drv)? {
            return Err(anyhow::anyhow!("expression evaluated to invalid derivation '{drv_path}'").into());
        }
        io.build(&[DerivedPath::Built { drv_path: SingleDerivedPath::Opaque(drv.clone()), outputs: OutputsSpec::All }])?;
        out.push_str("\nThis derivation produced the following outputs:\n");
        for (name, path) in io.output_map(&drv)? {
            let shown = path.map(|p| store_dir.print(&p)).unwrap_or_default();
            out.push_str(&format!("  {name} -> {shown}\n"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::is_var_name;

    #[test]
    fn var_names_as_nix_repl_takes_them() {
        for good in ["x", "foo-bar", "a'", "_x", "A1"] {
            assert!(is_var_name(good), "{good}");
        }
        for bad in ["", "1x", "-x", "'x", "let", "in", "a.b", "{ a", "x y"] {
            assert!(!is_var_name(bad), "{bad}");
        }
    }
}
