//! `casnix instantiate` (like `nix-instantiate`) and `casnix build` (like `nix-build`): evaluate
//! with the daemon as the store, write the store derivations, and for `build` build them and
//! make `result` links.

use anyhow::{bail, Result};
use clap::Args;
use eval::symbol::Symbol;
use eval::value::Attrs;
use eval::{EvalError, EvalResult, Evaluator, Value};
use nix_formats::derived_path::{DerivedPath, OutputsSpec, SingleDerivedPath};

use super::daemon_io::DaemonIo;
use super::eval_env::{auto_args, cwd, import_input, EvaluatorArgs};
use super::store::connect::StoreLocation;

/// Arguments shared by `casnix instantiate` and `casnix build`.
#[derive(Args)]
pub struct InstantiateArgs {
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
    #[command(flatten)]
    env: EvaluatorArgs,
    /// Files (or, with `--expr`, expressions) to evaluate; `-` is not supported.
    inputs: Vec<String>,
}

/// Arguments of `casnix build`.
#[derive(Args)]
pub struct BuildArgs {
    #[command(flatten)]
    common: InstantiateArgs,
    /// The name of the result symlink (`result` by default).
    #[arg(short = 'o', long = "out-link", value_name = "LINK", default_value = "result")]
    out_link: String,
    /// Make no result symlink.
    #[arg(long)]
    no_out_link: bool,
}

/// A derivation found in the result: its `.drv` path, the output wanted and its path.
struct FoundDrv {
    drv_path: String,
    output: String,
    out_path: String,
}

/// Evaluates and instantiates; returns the evaluator (whose I/O is the daemon) and the
/// derivations. An evaluation error is printed and becomes exit code 1.
fn instantiate(args: &InstantiateArgs) -> Result<(Evaluator, Vec<FoundDrv>)> {
    let location = StoreLocation::resolve(args.env.store.as_deref())?;
    let io = DaemonIo::connect(&location)?;
    let mut options = args.env.options(io_store_dir(&io));
    // The evaluator ends with `finish_without_freeing`: no need to track environments.
    options.track_environments = false;
    let mut ev = Evaluator::new(Box::new(io), options);
    args.env.enable_features(&mut ev);
    match find_derivations(&mut ev, args) {
        Ok(found) => Ok((ev, found)),
        Err(e) => {
            eprintln!("{}", e.render(args.env.show_trace));
            ev.finish_without_freeing();
            std::process::exit(1);
        }
    }
}

fn io_store_dir(io: &DaemonIo) -> String {
    use eval::io::EvalIo;
    io.store_dir().as_str().to_string()
}

fn find_derivations(ev: &mut Evaluator, args: &InstantiateArgs) -> EvalResult<Vec<FoundDrv>> {
    let base = cwd();
    let auto_args = auto_args(ev, &args.arg, &args.argstr, &base)?;
    let mut inputs = args.inputs.clone();
    if inputs.is_empty() && !args.expr {
        inputs.push("./default.nix".into());
    }
    let attr_paths = if args.attr.is_empty() { vec![String::new()] } else { args.attr.clone() };
    let mut found = Vec::new();
    for input in &inputs {
        let root = if args.expr {
            ev.eval_string(input, &base)?
        } else {
            import_input(ev, input, &base)?
        };
        for attr_path in &attr_paths {
            let v = ev.find_along_attr_path(&root, attr_path, &auto_args)?;
            let v = ev.auto_call(&v, &auto_args)?;
            collect(ev, &v, &auto_args, true, &mut found)?;
        }
    }
    Ok(found)
}

/// Nix's `getDerivations`: a derivation; the derivations among a set's attributes (recursing
/// where `recurseForDerivations` is true, and always at the top); a list's elements.
fn collect(ev: &mut Evaluator, v: &Value, auto_args: &Attrs, top: bool, out: &mut Vec<FoundDrv>) -> EvalResult<()> {
    let v = ev.auto_call(v, auto_args)?;
    match &v {
        Value::Attrs(a) => {
            if ev.is_derivation(a)? {
                out.push(derivation_of(ev, a)?);
                return Ok(());
            }
            let recurse = match a.get(Symbol::new("recurseForDerivations")) {
                Some(r) => {
                    let r = r.clone();
                    matches!(ev.force(&r)?, Value::Bool(true))
                }
                None => false,
            };
            if !top && !recurse {
                return Ok(());
            }
            for attr in a.iter() {
                let item = ev.force(&attr.value)?;
                match &item {
                    Value::Attrs(inner) if ev.is_derivation(inner)? => out.push(derivation_of(ev, inner)?),
                    Value::Attrs(_) => collect(ev, &item, auto_args, false, out)?,
                    _ => {}
                }
            }
            Ok(())
        }
        Value::List(items) => {
            for item in items.iter() {
                let item = ev.force(item)?;
                match &item {
                    Value::Attrs(_) | Value::List(_) => collect(ev, &item, auto_args, false, out)?,
                    _ => {
                        return Err(EvalError::type_error(
                            "expression does not evaluate to a derivation (or a set or list of those)",
                        ))
                    }
                }
            }
            Ok(())
        }
        _ => Err(EvalError::type_error("expression does not evaluate to a derivation (or a set or list of those)")),
    }
}

fn derivation_of(ev: &mut Evaluator, a: &Attrs) -> EvalResult<FoundDrv> {
    let get = |ev: &mut Evaluator, name: &str| -> EvalResult<Option<String>> {
        match a.get(Symbol::new(name)) {
            Some(v) => {
                let v = v.clone();
                let mut ctx = Default::default();
                Ok(Some(ev.coerce_to_string(&v, &mut ctx, false, false)?))
            }
            None => Ok(None),
        }
    };
    if a.get(Symbol::new("name")).is_none() {
        return Err(EvalError::type_error("derivation name missing"));
    }
    let drv_path = get(ev, "drvPath")?.ok_or_else(|| EvalError::other("derivation has no 'drvPath' attribute"))?;
    let output = get(ev, "outputName")?.unwrap_or_else(|| "out".into());
    let out_path = get(ev, "outPath")?.unwrap_or_default();
    Ok(FoundDrv { drv_path, output, out_path })
}

/// Runs `casnix instantiate`: prints each derivation's `.drv` path (with `!output` for an
/// output other than `out`), as `nix-instantiate` does.
pub fn run_instantiate(args: InstantiateArgs) -> Result<()> {
    let (ev, found) = instantiate(&args)?;
    eprintln!("warning: you did not specify '--add-root'; the result might be removed by the garbage collector");
    for d in &found {
        if d.output == "out" {
            println!("{}", d.drv_path);
        } else {
            println!("{}!{}", d.drv_path, d.output);
        }
    }
    ev.finish_without_freeing();
    Ok(())
}

/// Runs `casnix build`: instantiates, builds the outputs, makes the result links and prints
/// the output paths, as `nix-build` does.
pub fn run_build(args: BuildArgs) -> Result<()> {
    // The evaluation's connection stays open until the end: its temporary roots keep the
    // derivations alive while a second connection builds them.
    let (ev, found) = instantiate(&args.common)?;
    if found.is_empty() {
        bail!("nothing to build");
    }
    let location = StoreLocation::resolve(args.common.env.store.as_deref())?;
    let mut io = DaemonIo::connect(&location)?;
    let store_dir = {
        use eval::io::EvalIo;
        io.store_dir().clone()
    };
    let mut wanted = Vec::new();
    for d in &found {
        wanted.push(DerivedPath::Built {
            drv_path: SingleDerivedPath::Opaque(store_dir.parse(&d.drv_path)?),
            outputs: OutputsSpec::Names([d.output.clone()].into()),
        });
    }
    io.build(&wanted)?;
    let mut prefixes: Vec<(String, String)> = Vec::new();
    for d in &found {
        if !args.no_out_link {
            let mut link = match prefixes.iter().find(|(drv, _)| *drv == d.drv_path) {
                Some((_, prefix)) => prefix.clone(),
                None => {
                    let prefix = if prefixes.is_empty() {
                        args.out_link.clone()
                    } else {
                        format!("{}-{}", args.out_link, prefixes.len() + 1)
                    };
                    prefixes.push((d.drv_path.clone(), prefix.clone()));
                    prefix
                }
            };
            if d.output != "out" {
                link.push_str(&format!("-{}", d.output));
            }
            let abs = if link.starts_with('/') { link } else { format!("{}/{}", cwd(), link) };
            io.add_root(&store_dir.parse(&d.out_path)?, &abs)?;
        }
        println!("{}", d.out_path);
    }
    ev.finish_without_freeing();
    Ok(())
}
