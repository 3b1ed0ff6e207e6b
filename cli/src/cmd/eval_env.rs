//! What the evaluator's commands (`casnix instantiate`, `build`, `repl`, and `eval` for the
//! search path) share: the search path, the store to talk to, experimental features.

use clap::Args;
use eval::{EvalOptions, Evaluator, SearchPathEntry};

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
