//! What the evaluator's commands (`casnix instantiate`, `build`, `repl`, and `eval` for the
//! search path) share: the search path, the store to talk to, experimental features, the
//! automatic arguments and the file named on the command line.

use clap::Args;
use eval::symbol::Symbol;
use eval::value::{Attr, Attrs};
use eval::{EvalOptions, EvalResult, Evaluator, SearchPathEntry, Value};

/// The evaluator's arguments common to `casnix instantiate`, `casnix build` and `casnix repl`.
#[derive(Args)]
pub struct EvaluatorArgs {
    /// Add a search path entry (`DIR` or `PREFIX=DIR`) before those of `NIX_PATH`.
    #[arg(short = 'I', long = "include", value_name = "PATH")]
    pub include: Vec<String>,
    /// Show the trace of an evaluation error.
    #[arg(long)]
    pub show_trace: bool,
    /// The store to talk to (`daemon` or `unix://PATH`); defaults to `NIX_REMOTE`.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Enable experimental features (`ca-derivations`, `impure-derivations`, ...).
    #[arg(long = "extra-experimental-features", value_name = "FEATURES")]
    pub features: Vec<String>,
}

impl EvaluatorArgs {
    /// Evaluation options for a store at `store_dir`.
    pub fn options(&self, store_dir: String) -> EvalOptions {
        EvalOptions { search_path: search_path(&self.include), store_dir, show_trace: self.show_trace, ..EvalOptions::default() }
    }

    /// Turns the experimental features on in `ev` (for derivations).
    pub fn enable_features(&self, ev: &mut Evaluator) {
        for f in self.features.iter().flat_map(|f| f.split_whitespace()) {
            ev.drv_state.experimental_features.insert(f.to_string());
        }
    }
}

/// The search path of the evaluator's commands: the `-I` entries, then `NIX_PATH`'s, each `DIR`
/// or `PREFIX=DIR`.
pub fn search_path(include: &[String]) -> Vec<SearchPathEntry> {
    let from_env: Vec<String> = std::env::var("NIX_PATH")
        .map(|p| p.split(':').filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    include
        .iter()
        .chain(from_env.iter())
        .map(|e| match e.split_once('=') {
            Some((p, d)) => SearchPathEntry { prefix: p.to_string(), path: d.to_string() },
            None => SearchPathEntry { prefix: String::new(), path: e.clone() },
        })
        .collect()
}

/// The working directory, relative file names' base (`/` when it cannot be read).
pub fn cwd() -> String {
    std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| "/".into())
}

/// Evaluates a file named on the command line as Nix's commands do: `<name>` through the search
/// path, an absolute path as it is, anything else relative to `base`.
pub fn import_input(ev: &mut Evaluator, input: &str, base: &str) -> EvalResult<Value> {
    let path = if input.starts_with('<') && input.ends_with('>') {
        match ev.find_search_path(&input[1..input.len() - 1])? {
            Value::Path(p) => p.to_string(),
            _ => input.to_string(),
        }
    } else if input.starts_with('/') {
        eval::path::canonicalize(input)
    } else {
        eval::path::canonicalize(&format!("{base}/{input}"))
    };
    ev.import_file(&path)
}

/// The automatic arguments of `--arg NAME EXPR` (evaluated lazily, relative to `base`) and
/// `--argstr NAME STRING`, given as name-value pairs.
pub fn auto_args(ev: &mut Evaluator, arg: &[String], argstr: &[String], base: &str) -> EvalResult<Attrs> {
    let mut auto = Vec::new();
    for pair in arg.chunks(2) {
        if let [name, expr] = pair {
            let v = ev.eval_string_lazy(expr, base)?;
            auto.push(Attr { name: Symbol::new(name), value: v, pos: None });
        }
    }
    for pair in argstr.chunks(2) {
        if let [name, s] = pair {
            auto.push(Attr { name: Symbol::new(name), value: Value::string(s.clone()), pos: None });
        }
    }
    Ok(Attrs::from_unsorted(auto))
}
