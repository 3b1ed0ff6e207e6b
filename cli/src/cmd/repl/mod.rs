//! `casnix repl`: an interactive evaluator like `nix repl` (Nix 2.26): `x = expr` binds,
//! an expression prints its value, `:l`, `:p`, `:b`, `:t`, `:a`, `:q`, `:?`; an input that ends
//! inside an expression continues on the next line. On a terminal lines are edited with
//! rustyline and kept in a history file; piped input is read line by line without prompts.

mod input;
mod printer;
mod session;

use std::io::{IsTerminal, Write};

use anyhow::Result;
use clap::Args;
use eval::io::LocalIo;
use eval::Evaluator;

use super::daemon_io::DaemonIo;
use super::eval_env::EvaluatorArgs;
use super::store::connect::{strip_ansi, StoreLocation};
use input::{Input, Line};
use session::{Failure, Next, Session};

/// Arguments of `casnix repl`.
#[derive(Args)]
pub struct ReplArgs {
    #[command(flatten)]
    env: EvaluatorArgs,
    /// Files to load at the start, as with `:l`.
    files: Vec<String>,
}

/// The evaluator: over the daemon when one answers (derivations are written to its store and
/// `:b` builds there), else over the local filesystem as `casnix eval`.
fn evaluator(args: &ReplArgs) -> (Evaluator, Result<StoreLocation, String>) {
    let mut options = args.env.options(String::new());
    let connected = StoreLocation::resolve(args.env.store.as_deref())
        .and_then(|location| DaemonIo::connect(&location).map(|io| (location, io)));
    let (io, store): (Box<dyn eval::io::EvalIo>, _) = match connected {
        Ok((location, io)) => {
            options.store_dir = eval::io::EvalIo::store_dir(&io).as_str().to_string();
            (Box::new(io), Ok(location))
        }
        Err(e) => {
            options.store_dir = std::env::var("NIX_STORE_DIR").unwrap_or_else(|_| "/nix/store".into());
            (Box::new(LocalIo::new(&options.store_dir)), Err(format!("{e:#}")))
        }
    };
    let mut ev = Evaluator::new(io, options);
    args.env.enable_features(&mut ev);
    (ev, store)
}

/// Prints a failed input's error on standard error.
fn report(failure: Failure, show_trace: bool) {
    let text = match failure {
        Failure::Eval(e) => e.render(show_trace),
        Failure::Other(e) => format!("error: {e:#}"),
        Failure::Incomplete => return,
    };
    if std::io::stderr().is_terminal() {
        eprintln!("{text}");
    } else {
        eprintln!("{}", strip_ansi(&text));
    }
}

/// Runs `casnix repl` until `:q` or the end of input.
pub fn run(args: ReplArgs) -> Result<()> {
    let (ev, store) = evaluator(&args);
    let base_dir = std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| "/".into());
    let mut session = Session::new(ev, base_dir, store);
    session.colors = std::io::stdout().is_terminal();
    let mut input = Input::open();
    let interactive = input.interactive();
    if interactive {
        eprintln!("casnix repl (the Nix 2.26 language)\nType :? for help.");
    }
    let mut stdout = std::io::stdout();
    for file in &args.files {
        let mut out = String::new();
        if let Err(failure) = session.process(&format!(":l {file}"), &mut out) {
            report(failure, session.show_trace);
        }
    }
    let mut pending = String::new();
    loop {
        let line = match input.read_line(!pending.is_empty()) {
            None => break,
            Some(Line::Interrupt) => {
                pending.clear();
                continue;
            }
            Some(Line::Text(line)) => line,
        };
        pending.push_str(&line);
        pending.push('\n');
        let mut out = String::new();
        let result = session.process(&pending, &mut out);
        stdout.write_all(out.as_bytes())?;
        let quit = match result {
            Ok(Next::Quit) => true,
            Ok(Next::Prompt) => false,
            Err(Failure::Incomplete) => continue,
            Err(failure) => {
                stdout.flush()?;
                report(failure, session.show_trace);
                false
            }
        };
        pending.clear();
        if interactive {
            // Nix leaves an empty line after each input's output.
            stdout.write_all(b"\n")?;
        }
        stdout.flush()?;
        if quit {
            break;
        }
    }
    input.save();
    Ok(())
}
