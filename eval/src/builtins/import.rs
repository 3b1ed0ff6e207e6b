//! `import` and `scopedImport`, and the evaluation of files and strings they share.

use super::PrimOpDef;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Evaluator;
use crate::source::{Origin, Source};
use crate::symbol::Symbol;
use crate::value::{Context, Value};

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "import", arity: 1, fun: import },
    PrimOpDef { name: "scopedImport", arity: 2, fun: scoped_import },
];

impl Evaluator {
    /// Turns a value into an absolute path, realising its context first (import from derivation).
    pub fn realise_path(&mut self, v: &Value) -> EvalResult<String> {
        let v = self.force(v)?;
        let (path, ctx) = match &v {
            Value::Path(p) => (p.to_string(), Context::new()),
            _ => {
                let mut ctx = Context::new();
                let s = self.coerce_to_string(&v, &mut ctx, false, false)?;
                (s, ctx)
            }
        };
        if !path.starts_with('/') {
            return Err(EvalError::other(format!("string '{path}' doesn't represent an absolute path")));
        }
        if !ctx.is_empty() {
            let wanted: Vec<String> = ctx.into_iter().collect();
            self.io.realise_context(&wanted).map_err(|e| EvalError::new(ErrorKind::Io, e.to_string()))?;
        }
        Ok(path)
    }

    /// Reads and parses a file (a directory means its `default.nix`).
    pub fn parse_file(&mut self, path: &str, scope: Option<&[Symbol]>) -> EvalResult<crate::expr::ExprRef> {
        if let Some(text) = crate::corepkgs::source(path) {
            let source = Source::new(Origin::File(path.to_string()), text.to_string());
            return crate::lower::parse(source, crate::path::dir_of(path), &self.globals, scope);
        }
        let mut path = path.to_string();
        if !self.io.path_exists(&path).unwrap_or(false) {
            return Err(EvalError::new(ErrorKind::Io, format!("path '{path}' does not exist")));
        }
        if let Ok(Some(crate::io::FileKind::Directory)) = self.io.file_kind(&path) {
            path = format!("{}/default.nix", path.trim_end_matches('/'));
        } else if let Ok(Some(crate::io::FileKind::Symlink)) = self.io.file_kind(&path) {
            if std::fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false) {
                path = format!("{}/default.nix", path.trim_end_matches('/'));
            }
        }
        let bytes = self
            .io
            .read_file(&path)
            .map_err(|e| EvalError::new(ErrorKind::Io, format!("opening file '{path}': {}", describe_io(&e))))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| EvalError::new(ErrorKind::Parse, format!("file '{path}' is not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to())))?;
        let source = Source::new(Origin::File(path.clone()), text);
        let dir = crate::path::dir_of(&path).to_string();
        crate::lower::parse(source, &dir, &self.globals, scope)
    }

    /// Evaluates a file as `import` does (cached per path).
    pub fn import_file(&mut self, path: &str) -> EvalResult<Value> {
        if let Some(v) = self.import_cache.get(path) {
            let v = v.clone();
            return self.force(&v);
        }
        let expr = self.parse_file(path, None)?;
        let env = self.root_env();
        let v = self.eval(&expr, &env)?;
        self.import_cache.insert(path.to_string(), v.clone());
        Ok(v)
    }

    /// Parses and evaluates a string; relative paths in it are relative to `base_dir`.
    pub fn eval_string(&mut self, text: &str, base_dir: &str) -> EvalResult<Value> {
        let source = Source::new(Origin::String, text.to_string());
        let expr = crate::lower::parse(source, base_dir, &self.globals, None)?;
        let env = self.root_env();
        self.eval(&expr, &env)
    }

    /// Looks `<name>` up in the search path.
    pub fn find_search_path(&mut self, name: &str) -> EvalResult<Value> {
        let entries = self.options.search_path.clone();
        for entry in &entries {
            // Relative entries are relative to the working directory, as Nix makes them absolute.
            let base = if entry.path.starts_with('/') || entry.path.contains("://") {
                entry.path.clone()
            } else {
                match std::env::current_dir() {
                    Ok(cwd) => format!("{}/{}", cwd.display(), entry.path),
                    Err(_) => entry.path.clone(),
                }
            };
            let entry = crate::machine::SearchPathEntry { prefix: entry.prefix.clone(), path: base };
            let candidate = if entry.prefix.is_empty() {
                format!("{}/{}", entry.path, name)
            } else if name == entry.prefix {
                entry.path.clone()
            } else if let Some(rest) = name.strip_prefix(&entry.prefix).and_then(|r| r.strip_prefix('/')) {
                format!("{}/{}", entry.path, rest)
            } else {
                continue;
            };
            let candidate = crate::path::canonicalize(&candidate);
            if self.io.path_exists(&candidate).unwrap_or(false) {
                return Ok(Value::Path(candidate.into()));
            }
        }
        if let Some(rest) = name.strip_prefix("nix/") {
            let path = format!("{}{rest}", crate::corepkgs::PREFIX);
            if crate::corepkgs::source(&path).is_some() {
                return Ok(Value::Path(path.into()));
            }
        }
        Err(EvalError::new(
            ErrorKind::Throw,
            format!("file '{name}' was not found in the Nix search path (add it using $NIX_PATH or -I)"),
        ))
    }
}

fn describe_io(e: &crate::io::IoError) -> String {
    match e {
        crate::io::IoError::Io(io) => match io.kind() {
            std::io::ErrorKind::NotFound => "No such file or directory".into(),
            std::io::ErrorKind::PermissionDenied => "Permission denied".into(),
            _ => io.to_string(),
        },
        other => other.to_string(),
    }
}

fn import(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let path = ev.realise_path(&args[0])?;
    ev.import_file(&path)
}

fn scoped_import(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let scope = ev.force_attrs(&args[0])?;
    let path = ev.realise_path(&args[1])?;
    let names: Vec<Symbol> = scope.iter().map(|a| a.name).collect();
    let values: crate::env::EnvSlots = scope.iter().map(|a| a.value.clone()).collect();
    let expr = ev.parse_file(&path, Some(&names))?;
    let env = ev.alloc_env(values, None, false);
    ev.eval(&expr, &env)
}

impl Evaluator {
    /// Parses a string now and returns its value as a thunk (for `--arg`).
    pub fn eval_string_lazy(&mut self, text: &str, base_dir: &str) -> EvalResult<Value> {
        let source = Source::new(Origin::String, text.to_string());
        let expr = crate::lower::parse(source, base_dir, &self.globals, None)?;
        let env = self.root_env();
        Ok(self.thunk(&expr, &env))
    }

    /// Parses and evaluates standard input's text (`«stdin»`).
    pub fn eval_stdin(&mut self, text: &str, base_dir: &str) -> EvalResult<Value> {
        let source = Source::new(Origin::Stdin, text.to_string());
        let expr = crate::lower::parse(source, base_dir, &self.globals, None)?;
        let env = self.root_env();
        self.eval(&expr, &env)
    }
}

impl Evaluator {
    /// Parses `text` (named `«string»`) with the variables of `scope` bound in front of the
    /// globals, as `nix repl` evaluates its input, and evaluates it in an environment holding
    /// their values. With `lazy` the result is a thunk (for `x = expr`), else it is forced.
    pub fn eval_string_in_scope(
        &mut self,
        text: &str,
        base_dir: &str,
        scope: &[(Symbol, Value)],
        lazy: bool,
    ) -> EvalResult<Value> {
        let names: Vec<Symbol> = scope.iter().map(|(n, _)| *n).collect();
        let values: crate::env::EnvSlots = scope.iter().map(|(_, v)| v.clone()).collect();
        let source = Source::new(Origin::String, text.to_string());
        let expr = crate::lower::parse(source, base_dir, &self.globals, Some(&names))?;
        let env = self.alloc_env(values, None, false);
        if lazy {
            Ok(self.thunk(&expr, &env))
        } else {
            self.eval(&expr, &env)
        }
    }
}
