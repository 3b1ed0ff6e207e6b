//! `derivationStrict` (Nix 2.26's `prim_derivationStrict`) and `derivation` (Nix's
//! `derivation.nix`, written here as our own Nix code): derivation attributes become a store
//! derivation, written through [`crate::io::EvalIo::add_text_to_store`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use nix_formats::content_address::{ContentAddress, Method, MethodAlgo};
use nix_formats::derivation::{
    fill_output_paths, Derivation, DerivationOutput, DerivationReader, DrvHashCache, HashModuloError,
};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::store_path::{output_path_name, StoreDir, StorePath, StorePathError};

use super::context::{decode, ContextElem};
use super::PrimOpDef;
use crate::error::{EvalError, EvalResult};
use crate::io::EvalIo;
use crate::machine::Evaluator;
use crate::symbol::Symbol;
use crate::value::{Attr, Attrs, Context, Value};

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "derivationStrict", arity: 1, fun: derivation_strict },
    PrimOpDef { name: "derivation", arity: 1, fun: derivation },
];

/// `derivation`: the lazy wrapper around `derivationStrict` (same attributes as Nix's
/// `derivation.nix`: the attributes given, one set per output, `all`, `drvAttrs`, `drvPath`,
/// `outPath`, `outputName`, `type`).
const DERIVATION_NIX: &str = r#"
args@{ outputs ? [ "out" ], ... }:
let
  strict = derivationStrict args;
  shared = args // (builtins.listToAttrs perOutput) // {
    all = map (o: o.value) perOutput;
    drvAttrs = args;
  };
  forOutput = name: {
    inherit name;
    value = shared // {
      outPath = builtins.getAttr name strict;
      drvPath = strict.drvPath;
      type = "derivation";
      outputName = name;
    };
  };
  perOutput = map forOutput outputs;
in (builtins.head perOutput).value
"#;

/// Whether `source` is the `derivation` wrapper's (Nix leaves its attributes out of traces, as
/// it does those of `derivation-internal.nix`).
pub fn is_internal(source: &crate::source::Source) -> bool {
    source.origin == crate::source::Origin::String && source.text == DERIVATION_NIX
}

/// What the evaluator remembers about the derivations it wrote.
#[derive(Default)]
pub struct DrvState {
    /// Modulo hashes of derivations by path (Nix's `drvHashes`).
    hashes: DrvHashCache,
    /// The derivations written during this evaluation, by printed store path.
    written: HashMap<String, Derivation>,
    /// The `derivation` function, once made.
    derivation_fn: Option<Value>,
    /// The experimental features enabled (`ca-derivations`, `impure-derivations`, ...).
    pub experimental_features: BTreeSet<String>,
}

impl DrvState {
    /// The derivation at `path`, if this evaluation wrote it.
    pub fn written(&self, path: &str) -> Option<&Derivation> {
        self.written.get(path)
    }
}

fn derivation(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let f = match &ev.drv_state.derivation_fn {
        Some(f) => f.clone(),
        None => {
            let f = ev.eval_string(DERIVATION_NIX, "/")?;
            ev.drv_state.derivation_fn = Some(f.clone());
            f
        }
    };
    ev.call(&f, &args[..1])
}

/// Reads input derivations: the ones written in this evaluation, else from the store.
struct Reader<'a> {
    io: &'a mut dyn EvalIo,
    written: &'a HashMap<String, Derivation>,
}

impl DerivationReader for Reader<'_> {
    fn read_derivation(&mut self, drv_path: &StorePath) -> Result<Derivation, HashModuloError> {
        let store_dir = self.io.store_dir().clone();
        let printed = store_dir.print(drv_path);
        if let Some(d) = self.written.get(&printed) {
            return Ok(d.clone());
        }
        read_store_derivation(self.io, &store_dir, drv_path)
    }
}

fn read_store_derivation(io: &mut dyn EvalIo, store_dir: &StoreDir, drv_path: &StorePath) -> Result<Derivation, HashModuloError> {
    let printed = store_dir.print(drv_path);
    let name = Derivation::name_from_path(drv_path).ok_or_else(|| HashModuloError::NotDerivation(printed.clone()))?;
    let bytes = io.read_file(&printed).map_err(|e| HashModuloError::Io {
        path: printed.clone().into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Derivation::parse_aterm(&bytes, name, store_dir).map_err(|source| HashModuloError::Parse { path: printed.into(), source })
}

fn require_feature(ev: &Evaluator, feature: &str) -> EvalResult<()> {
    if ev.drv_state.experimental_features.contains(feature) {
        return Ok(());
    }
    Err(EvalError::other(format!(
        "experimental Nix feature '{feature}' is disabled; add '--extra-experimental-features {feature}' to enable it"
    )))
}

/// A string that must not have a context (`forceStringNoCtx`).
fn string_no_context(ev: &mut Evaluator, v: &Value) -> EvalResult<String> {
    let s = ev.force_string(v)?;
    if let Some(elem) = s.context.iter().next() {
        let path = match decode(elem) {
            ContextElem::Opaque(p) | ContextElem::DrvDeep(p) => p.to_string(),
            ContextElem::Built { drv, .. } => drv.to_string(),
        };
        return Err(EvalError::other(format!(
            "the string '{}' is not allowed to refer to a store path (such as '{}')",
            s.text, path
        )));
    }
    Ok(s.text.clone())
}

/// Nix's `parseHashAlgoOpt`: an unknown (or empty) algorithm name is no algorithm.
fn parse_algo(s: &str) -> Option<Algorithm> {
    s.parse().ok()
}

fn parse_hash_mode(ev: &Evaluator, s: &str) -> EvalResult<Method> {
    let method = match s {
        "recursive" | "nar" => Method::Nar,
        "flat" => Method::Flat,
        "text" => Method::Text,
        "git" => Method::Git,
        _ => return Err(EvalError::other(format!("invalid value '{s}' for 'outputHashMode' attribute"))),
    };
    match method {
        Method::Text => require_feature(ev, "dynamic-derivations")?,
        Method::Git => require_feature(ev, "git-hashing")?,
        _ => {}
    }
    Ok(method)
}

/// Nix's words for a hash of the wrong length; other errors as `nix_formats` says them.
fn hash_parse_error(text: &str, algo: Option<Algorithm>, e: &nix_formats::hash::HashError) -> EvalError {
    let split = text.split_once(':').or_else(|| text.split_once('-'));
    let (algo, rest) = match split.and_then(|(a, r)| a.parse::<Algorithm>().ok().map(|a| (a, r))) {
        Some((a, r)) => (a, r),
        None => match algo {
            Some(a) => (a, text),
            None => return EvalError::other(e.to_string()),
        },
    };
    let size = algo.size();
    let lengths = [size * 2, (size * 8 - 1) / 5 + 1, size.div_ceil(3) * 4];
    if !lengths.contains(&rest.len()) {
        return EvalError::other(format!("hash '{rest}' has wrong length for hash algorithm '{algo}'"));
    }
    EvalError::other(e.to_string())
}

fn check_outputs(names: Vec<String>) -> EvalResult<BTreeSet<String>> {
    let mut outputs = BTreeSet::new();
    for name in names {
        if outputs.contains(&name) {
            return Err(EvalError::other(format!("duplicate derivation output '{name}'")));
        }
        if name == "drvPath" {
            return Err(EvalError::other("invalid derivation output name 'drvPath'"));
        }
        outputs.insert(name);
    }
    if outputs.is_empty() {
        return Err(EvalError::other("derivation cannot have an empty set of outputs"));
    }
    Ok(outputs)
}

fn name_error(e: StorePathError) -> String {
    match e {
        StorePathError::EmptyName(_) => "name must not be empty".into(),
        StorePathError::NameTooLong(_) => "name '…' must be no longer than 211 characters".into(),
        StorePathError::IllegalCharacter { name, ch, .. } => format!("name '{name}' contains illegal character '{ch}'"),
        StorePathError::DotComponent { name, component, .. } => {
            format!("name '{name}' is not valid: first dash-separated component must not be '{component}'")
        }
        other => other.to_string(),
    }
}

/// What the attributes say, before outputs are decided.
struct Collected {
    drv: Derivation,
    context: Context,
    outputs: BTreeSet<String>,
    output_hash: Option<String>,
    output_hash_algo: Option<Algorithm>,
    method: Option<Method>,
    content_addressed: bool,
    impure: bool,
}

fn derivation_strict(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let attrs = ev
        .force_attrs(&args[0])
        .map_err(|e| e.with_frame(None, "while evaluating the argument passed to builtins.derivationStrict"))?;
    let name_attr = attrs.get_attr(Symbol::new("name")).cloned().ok_or_else(|| {
        EvalError::type_error("attribute 'name' missing")
            .with_frame(None, "in the attrset passed as argument to builtins.derivationStrict")
    })?;
    let name = string_no_context(ev, &name_attr.value)
        .map_err(|e| e.with_frame(name_attr.pos.as_ref(), "while evaluating the derivation attribute 'name'"))?;
    derivation_strict_named(ev, &name, &attrs).map_err(|e| {
        let at = name_attr.pos.as_ref().map(|p| p.to_string()).unwrap_or_else(|| "«none»".into());
        e.with_frame(None, format!("while evaluating derivation '{name}'\n  whose name attribute is located at {at}"))
    })
}

fn derivation_strict_named(ev: &mut Evaluator, name: &str, attrs: &Attrs) -> EvalResult<Value> {
    nix_formats::store_path::check_name(name, name).map_err(|e| {
        EvalError::other(format!("invalid derivation name: {}. Please pass a different 'name'.", name_error(e)))
    })?;
    let mut c = collect_attributes(ev, name, attrs)?;
    let store_dir = ev.io.store_dir().clone();
    add_context_inputs(ev, &store_dir, &mut c)?;
    if c.drv.builder.is_empty() {
        return Err(EvalError::other("required attribute 'builder' missing"));
    }
    if c.drv.system.is_empty() {
        return Err(EvalError::other("required attribute 'system' missing"));
    }
    let single_out = c.outputs.len() == 1 && c.outputs.contains("out");
    if name.ends_with(".drv") && !(c.method == Some(Method::Text) && single_out) {
        return Err(EvalError::other(
            "derivation names are allowed to end in '.drv' only if they produce a single derivation file",
        ));
    }
    decide_outputs(ev, &store_dir, &mut c, single_out)?;
    let drv = c.drv;
    let hash_error = |e: HashModuloError| EvalError::other(e.to_string());
    let drv_path = store_dir.print(&drv.drv_path(&store_dir).map_err(|e| EvalError::other(e.to_string()))?);
    let aterm = drv.to_aterm(&store_dir).map_err(|e| EvalError::other(e.to_string()))?;
    let refs: Vec<String> = drv.references().iter().map(|p| store_dir.print(p)).collect();
    let written = ev
        .io
        .add_text_to_store(&format!("{name}.drv"), &aterm, &refs)
        .map_err(|e| EvalError::new(crate::error::ErrorKind::Io, e.to_string()))?;
    if written != drv_path {
        return Err(EvalError::other(format!("the store wrote derivation '{drv_path}' as '{written}'")));
    }
    let drv_sp = store_dir.parse(&drv_path).map_err(|e| EvalError::other(e.to_string()))?;
    {
        let Evaluator { io, drv_state, .. } = ev;
        let DrvState { hashes, written, .. } = drv_state;
        let mut reader = Reader { io: &mut **io, written };
        let h = hashes.hash_modulo(&store_dir, &mut reader, &drv, false).map_err(hash_error)?;
        hashes.insert(drv_sp.clone(), h);
    }
    let mut entries = vec![Attr {
        name: Symbol::new("drvPath"),
        value: Value::string_with_context(drv_path.clone(), Context::from([format!("={drv_path}")])),
        pos: None,
    }];
    for (out, output) in &drv.outputs {
        let text = match output.path(&store_dir, &drv.name, out).map_err(|e| EvalError::other(e.to_string()))? {
            Some(p) => store_dir.print(&p),
            None => {
                let clear = format!("nix-upstream-output:{}:{}", drv_sp.hash_part(), output_path_name(&drv.name, out));
                format!("/{}", Hash::of(Algorithm::Sha256, clear.as_bytes()).to_nix32())
            }
        };
        entries.push(Attr {
            name: Symbol::new(out),
            value: Value::string_with_context(text, Context::from([format!("!{out}!{drv_path}")])),
            pos: None,
        });
    }
    ev.drv_state.written.insert(drv_path, drv);
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

fn collect_attributes(ev: &mut Evaluator, name: &str, attrs: &Attrs) -> EvalResult<Collected> {
    let structured = match attrs.get(Symbol::new("__structuredAttrs")) {
        Some(v) => {
            let v = v.clone();
            ev.expect_bool(&v)?
        }
        None => false,
    };
    let ignore_nulls = match attrs.get(Symbol::new("__ignoreNulls")) {
        Some(v) => {
            let v = v.clone();
            ev.expect_bool(&v)?
        }
        None => false,
    };
    let mut c = Collected {
        drv: Derivation { name: name.to_string(), ..Derivation::default() },
        context: Context::new(),
        outputs: BTreeSet::from(["out".to_string()]),
        output_hash: None,
        output_hash_algo: None,
        method: None,
        content_addressed: false,
        impure: false,
    };
    let mut json: Vec<(String, String)> = Vec::new();
    for attr in attrs.iter() {
        let key = attr.name.as_str();
        if key == "__ignoreNulls" {
            continue;
        }
        collect_one(ev, &mut c, key, &attr.value, structured, ignore_nulls, &mut json).map_err(|e| {
            e.with_frame(attr.pos.as_ref(), format!("while evaluating attribute '{key}' of derivation '{name}'"))
        })?;
    }
    if structured {
        let mut text = String::from("{");
        for (i, (k, v)) in json.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            crate::builtins::json::json_string(&mut text, k);
            text.push(':');
            text.push_str(v);
        }
        text.push('}');
        c.drv.env.insert(b"__json".to_vec(), text.into_bytes());
    }
    Ok(c)
}

fn collect_one(
    ev: &mut Evaluator,
    c: &mut Collected,
    key: &str,
    value: &Value,
    structured: bool,
    ignore_nulls: bool,
    json: &mut Vec<(String, String)>,
) -> EvalResult<()> {
    if ignore_nulls && matches!(ev.force(value)?, Value::Null) {
        return Ok(());
    }
    if key == "__contentAddressed" && ev.expect_bool(value)? {
        c.content_addressed = true;
        return require_feature(ev, "ca-derivations");
    }
    if key == "__impure" && ev.expect_bool(value)? {
        c.impure = true;
        return require_feature(ev, "impure-derivations");
    }
    if key == "args" {
        let items = ev.force_list(value)?;
        for item in items.iter() {
            let s = ev
                .coerce_to_string(item, &mut c.context, true, true)
                .map_err(|e| e.with_frame(None, "while evaluating an element of the argument list"))?;
            c.drv.args.push(s.into_bytes());
        }
        return Ok(());
    }
    if structured {
        if key == "__structuredAttrs" {
            return Ok(());
        }
        let mut text = String::new();
        ev.to_json(value, true, &mut c.context, &mut text)?;
        json.push((key.to_string(), text));
        match key {
            "builder" => {
                let s = ev.force_string(value)?;
                c.context.extend(s.context.iter().cloned());
                c.drv.builder = s.text.clone().into_bytes();
            }
            "system" => c.drv.system = string_no_context(ev, value)?.into_bytes(),
            "outputHash" => c.output_hash = Some(string_no_context(ev, value)?),
            "outputHashAlgo" => c.output_hash_algo = parse_algo(&string_no_context(ev, value)?),
            "outputHashMode" => {
                let mode = string_no_context(ev, value)?;
                c.method = Some(parse_hash_mode(ev, &mode)?);
            }
            "outputs" => {
                let items = ev.force_list(value)?;
                let mut names = Vec::new();
                for item in items.iter() {
                    names.push(string_no_context(ev, item)?);
                }
                c.outputs = check_outputs(names)?;
            }
            _ => {}
        }
        return Ok(());
    }
    let s = ev.coerce_to_string(value, &mut c.context, true, true)?;
    match key {
        "builder" => c.drv.builder = s.clone().into_bytes(),
        "system" => c.drv.system = s.clone().into_bytes(),
        "outputHash" => c.output_hash = Some(s.clone()),
        "outputHashAlgo" => c.output_hash_algo = parse_algo(&s),
        "outputHashMode" => c.method = Some(parse_hash_mode(ev, &s)?),
        "outputs" => {
            let names = s.split([' ', '\t', '\n', '\r']).filter(|t| !t.is_empty()).map(str::to_string).collect();
            c.outputs = check_outputs(names)?;
        }
        _ => {}
    }
    c.drv.env.insert(key.as_bytes().to_vec(), s.into_bytes());
    Ok(())
}

/// The references of `path` in the store: from the derivations written here, else the store.
fn references_of(ev: &mut Evaluator, store_dir: &StoreDir, path: &str) -> EvalResult<Vec<String>> {
    if let Some(d) = ev.drv_state.written.get(path) {
        return Ok(d.references().iter().map(|p| store_dir.print(p)).collect());
    }
    ev.io.query_references(path).map_err(|e| EvalError::new(crate::error::ErrorKind::Io, e.to_string()))
}

fn output_names_of(ev: &mut Evaluator, store_dir: &StoreDir, path: &StorePath) -> EvalResult<BTreeSet<String>> {
    let printed = store_dir.print(path);
    if let Some(d) = ev.drv_state.written.get(&printed) {
        return Ok(d.outputs.keys().cloned().collect());
    }
    let d = read_store_derivation(&mut *ev.io, store_dir, path).map_err(|e| EvalError::other(e.to_string()))?;
    Ok(d.outputs.keys().cloned().collect())
}

fn add_context_inputs(ev: &mut Evaluator, store_dir: &StoreDir, c: &mut Collected) -> EvalResult<()> {
    let parse = |p: &str| store_dir.parse(p).map_err(|e| EvalError::other(e.to_string()));
    let context = std::mem::take(&mut c.context);
    for elem in &context {
        match decode(elem) {
            ContextElem::Opaque(p) => {
                c.drv.input_srcs.insert(parse(p)?);
            }
            ContextElem::Built { output, drv } => {
                c.drv.input_drvs.entry(parse(drv)?).or_default().outputs.insert(output.to_string());
            }
            ContextElem::DrvDeep(drv) => {
                let mut seen = BTreeSet::new();
                let mut todo = vec![drv.to_string()];
                while let Some(p) = todo.pop() {
                    if !seen.insert(p.clone()) {
                        continue;
                    }
                    todo.extend(references_of(ev, store_dir, &p)?);
                }
                for p in seen {
                    let sp = parse(&p)?;
                    if sp.is_derivation() {
                        let outs = output_names_of(ev, store_dir, &sp)?;
                        c.drv.input_drvs.entry(sp.clone()).or_default().outputs = outs;
                    }
                    c.drv.input_srcs.insert(sp);
                }
            }
        }
    }
    Ok(())
}

fn decide_outputs(ev: &mut Evaluator, store_dir: &StoreDir, c: &mut Collected, single_out: bool) -> EvalResult<()> {
    let other = |e: &dyn std::fmt::Display| EvalError::other(e.to_string());
    if let Some(text) = &c.output_hash {
        if !single_out {
            return Err(EvalError::other("multiple outputs are not supported in fixed-output derivations"));
        }
        let hash = if text.is_empty() {
            let algo = c
                .output_hash_algo
                .ok_or_else(|| EvalError::other("empty hash requires explicit hash algorithm"))?;
            Hash::zero(algo)
        } else {
            Hash::parse_any(text, c.output_hash_algo).map_err(|e| hash_parse_error(text, c.output_hash_algo, &e))?
        };
        let ca = ContentAddress { method: c.method.unwrap_or(Method::Flat), hash };
        c.drv.outputs = BTreeMap::from([("out".to_string(), DerivationOutput::CaFixed(ca))]);
    } else if c.content_addressed || c.impure {
        if c.content_addressed && c.impure {
            return Err(EvalError::other("derivation cannot be both content-addressed and impure"));
        }
        let ma = MethodAlgo {
            method: c.method.unwrap_or(Method::Nar),
            algo: c.output_hash_algo.unwrap_or(Algorithm::Sha256),
        };
        c.drv.outputs = c
            .outputs
            .iter()
            .map(|o| (o.clone(), if c.impure { DerivationOutput::Impure(ma) } else { DerivationOutput::CaFloating(ma) }))
            .collect();
    } else {
        c.drv.outputs = c.outputs.iter().map(|o| (o.clone(), DerivationOutput::Deferred)).collect();
    }
    let Evaluator { io, drv_state, .. } = ev;
    let DrvState { hashes, written, .. } = drv_state;
    let mut reader = Reader { io: &mut **io, written };
    fill_output_paths(&mut c.drv, store_dir, hashes, &mut reader).map_err(|e| other(&e))
}
