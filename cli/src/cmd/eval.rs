//! `casnix eval`: `nix-instantiate --eval` with the casnix evaluator.

use std::io::Read;

use anyhow::Result;
use clap::Args;
use eval::io::{EvalIo, LocalIo};
use eval::output::OutputFormat;
use eval::{EvalOptions, EvalResult, Evaluator};

use super::daemon_io::DaemonIo;
use super::eval_env::{auto_args, cwd, import_input, search_path};
use super::store::connect::StoreLocation;

/// Arguments of `casnix eval` (those of `nix-instantiate --eval`).
#[derive(Args)]
pub struct EvalArgs {
    /// Evaluate the result completely, not just to its outermost constructor.
    #[arg(long)]
    strict: bool,
    /// Print the result as JSON.
    #[arg(long, conflicts_with_all = ["xml", "raw"])]
    json: bool,
    /// Print the result as XML.
    #[arg(long, conflicts_with = "raw")]
    xml: bool,
    /// Print the string result without quotes or a trailing newline.
    #[arg(long)]
    raw: bool,
    /// Leave source positions out of the XML output.
    #[arg(long)]
    no_location: bool,
    /// Show the trace of an evaluation error.
    #[arg(long, overrides_with = "no_show_trace")]
    show_trace: bool,
    /// Do not show the trace of an evaluation error (the default).
    #[arg(long)]
    no_show_trace: bool,
    /// The most nested function calls before "stack overflow" (Nix's `max-call-depth`).
    #[arg(long, value_name = "N")]
    max_call_depth: Option<usize>,
    /// Enable experimental features (`parse-toml-timestamps` is the one that matters here).
    #[arg(long, value_name = "FEATURES")]
    extra_experimental_features: Vec<String>,
    /// Set a Nix option (`--option max-call-depth N`); unknown ones are ignored.
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"])]
    option: Vec<String>,
    /// Make `builtins.warn` fail after printing its warning.
    #[arg(long)]
    abort_on_warn: bool,
    /// Accepted for compatibility: `builtins.traceVerbose` prints nothing either way.
    #[arg(long, hide = true)]
    trace_verbose: bool,
    /// Add a search path entry (`DIR` or `PREFIX=DIR`) before those of `NIX_PATH`.
    #[arg(short = 'I', long = "include", value_name = "PATH")]
    include: Vec<String>,
    /// Select an attribute of the result (`a.b.0.c`); may repeat.
    #[arg(short = 'A', long = "attr", value_name = "ATTR")]
    attr: Vec<String>,
    /// Pass the value of the Nix expression EXPR as argument NAME of the top-level function.
    #[arg(long, num_args = 2, value_names = ["NAME", "EXPR"])]
    arg: Vec<String>,
    /// Pass the string S as argument NAME of the top-level function.
    #[arg(long, num_args = 2, value_names = ["NAME", "S"])]
    argstr: Vec<String>,
    /// Treat the arguments as expressions rather than files.
    #[arg(short = 'E', long)]
    expr: bool,
    /// Accepted for compatibility with `nix-instantiate --eval`.
    #[arg(long, hide = true, alias = "eval-only")]
    eval: bool,
    /// Accepted for compatibility (Nix's build timeout; nothing is built here).
    #[arg(long, hide = true, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Write to the store through the daemon (`toFile`, `path`, derivations) and build what
    /// import-from-derivation needs, as `nix-instantiate --eval --read-write-mode`; without it
    /// store paths are computed, not written.
    #[arg(long, overrides_with = "readonly_mode")]
    read_write_mode: bool,
    /// Compute store paths without writing them (the default).
    #[arg(long, hide = true)]
    readonly_mode: bool,
    /// The store to talk to with `--read-write-mode` (`daemon` or `unix://PATH`); defaults to
    /// `NIX_REMOTE`.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Files (or, with `--expr`, expressions) to evaluate; `-` reads standard input.
    inputs: Vec<String>,
}

/// Runs `casnix eval`; returns the process exit code.
pub fn run(args: EvalArgs) -> Result<i32> {
    let mut options = EvalOptions {
        search_path: search_path(&args.include),
        store_dir: std::env::var("NIX_STORE_DIR").unwrap_or_else(|_| "/nix/store".into()),
        show_trace: args.show_trace,
        toml_timestamps: args.extra_experimental_features.iter().any(|f| f.split_whitespace().any(|f| f == "parse-toml-timestamps")),
        ..EvalOptions::default()
    };
    for pair in args.option.chunks(2) {
        if let [name, value] = pair {
            match name.as_str() {
                "max-call-depth" => options.max_call_depth = value.parse()?,
                "abort-on-warn" => options.abort_on_warn = value == "true",
                _ => {}
            }
        }
    }
    if std::env::var("NIX_ABORT_ON_WARN").is_ok_and(|v| v == "1" || v == "true") || args.abort_on_warn {
        options.abort_on_warn = true;
    }
    if let Some(depth) = args.max_call_depth {
        options.max_call_depth = depth;
    }
    let io: Box<dyn EvalIo> = if args.read_write_mode {
        let location = StoreLocation::resolve(args.store.as_deref())?;
        let io = DaemonIo::connect(&location)?;
        options.store_dir = io.store_dir().as_str().to_string();
        Box::new(io)
    } else {
        Box::new(LocalIo::new(&options.store_dir))
    };
    // The evaluator's values are not freed at the end (below): no need to track environments.
    options.track_environments = false;
    let mut ev = Evaluator::new(io, options);
    let result = evaluate(&mut ev, &args);
    let code = match result {
        Ok(out) => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(out.as_bytes())?;
            stdout.flush()?;
            0
        }
        Err(e) => {
            let text = e.render(args.show_trace);
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                eprintln!("{text}");
            } else {
                eprintln!("{}", super::store::connect::strip_ansi(&text));
            }
            1
        }
    };
    // The process ends now: no need to free the evaluation's values one by one.
    ev.finish_without_freeing();
    Ok(code)
}

fn evaluate(ev: &mut Evaluator, args: &EvalArgs) -> EvalResult<String> {
    let base = cwd();
    let auto_args = auto_args(ev, &args.arg, &args.argstr, &base)?;
    let format = if args.json {
        OutputFormat::Json
    } else if args.xml {
        OutputFormat::Xml { location: !args.no_location }
    } else if args.raw {
        OutputFormat::Raw
    } else {
        OutputFormat::Plain
    };
    let mut inputs = args.inputs.clone();
    if inputs.is_empty() && !args.expr {
        inputs.push("./default.nix".into());
    }
    let attr_paths = if args.attr.is_empty() { vec![String::new()] } else { args.attr.clone() };
    let mut out = String::new();
    for input in &inputs {
        let root = if args.expr {
            ev.eval_string(input, &base)?
        } else if input == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| eval::EvalError::other(format!("reading standard input: {e}")))?;
            ev.eval_stdin(&text, &base)?
        } else {
            import_input(ev, input, &base)?
        };
        for attr_path in &attr_paths {
            let v = ev.find_along_attr_path(&root, attr_path, &auto_args)?;
            let v = if auto_args.is_empty() { v } else { ev.auto_call(&v, &auto_args)? };
            out.push_str(&ev.render_output(&v, format, args.strict)?);
        }
    }
    Ok(out)
}
