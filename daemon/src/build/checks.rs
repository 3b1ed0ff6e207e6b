//! Output checks before registration, as Nix 2.26's `checkOutputs`: `allowedReferences`,
//! `allowedRequisites`, `disallowedReferences`, `disallowedRequisites` (top-level attributes
//! for every output; with structured attributes per output under `outputChecks`, which also
//! has `maxSize` and `maxClosureSize`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use nix_formats::derivation::Derivation;
use nix_formats::store_path::StorePath;
use store::local::BuiltOutput;
use store::Store;

use super::BuildFailure;

/// What to check for one output.
#[derive(Debug, Default)]
struct Checks {
    ignore_self_refs: bool,
    max_size: Option<u64>,
    max_closure_size: Option<u64>,
    allowed_references: Option<Vec<String>>,
    allowed_requisites: Option<Vec<String>>,
    disallowed_references: Option<Vec<String>>,
    disallowed_requisites: Option<Vec<String>>,
}

fn words(drv: &Derivation, name: &str) -> Option<Vec<String>> {
    drv.env.get(name.as_bytes()).map(|v| String::from_utf8_lossy(v).split_whitespace().map(str::to_owned).collect())
}

fn json_strings(obj: &serde_json::Value, name: &str) -> Option<Vec<String>> {
    obj.get(name)
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
}

/// The checks for `output`, or `None` when there are none.
fn checks_for(drv: &Derivation, output: &str) -> Option<Checks> {
    match drv.env.get(&b"__json"[..]) {
        None => Some(Checks {
            ignore_self_refs: true,
            allowed_references: words(drv, "allowedReferences"),
            allowed_requisites: words(drv, "allowedRequisites"),
            disallowed_references: words(drv, "disallowedReferences"),
            disallowed_requisites: words(drv, "disallowedRequisites"),
            ..Checks::default()
        }),
        Some(json) => {
            let value: serde_json::Value = serde_json::from_slice(json).ok()?;
            let o = value.get("outputChecks")?.get(output)?;
            Some(Checks {
                ignore_self_refs: false,
                max_size: o.get("maxSize").and_then(|v| v.as_u64()),
                max_closure_size: o.get("maxClosureSize").and_then(|v| v.as_u64()),
                allowed_references: json_strings(o, "allowedReferences"),
                allowed_requisites: json_strings(o, "allowedRequisites"),
                disallowed_references: json_strings(o, "disallowedReferences"),
                disallowed_requisites: json_strings(o, "disallowedRequisites"),
            })
        }
    }
}

/// Checks the built outputs (by output name) before they are registered.
pub fn check_outputs(st: &Store, drv: &Derivation, outputs: &BTreeMap<String, BuiltOutput>) -> Result<(), BuildFailure> {
    let by_path: BTreeMap<&StorePath, &BuiltOutput> = outputs.values().map(|o| (&o.path, o)).collect();
    let misc = |e: store::StoreError| BuildFailure::misc(e.to_string());
    let nar_size = |o: &BuiltOutput| -> Result<u64, BuildFailure> {
        nix_formats::nar::hash_path(&o.source, nix_formats::hash::Algorithm::Sha256)
            .map(|(_, size)| size)
            .map_err(|e| BuildFailure::misc(e.to_string()))
    };
    // The closure of an output, through the other new outputs and the valid paths.
    let closure = |start: &StorePath, with_size: bool| -> Result<(BTreeSet<StorePath>, u64), BuildFailure> {
        let mut done = BTreeSet::new();
        let mut size = 0;
        let mut left = VecDeque::from([start.clone()]);
        while let Some(path) = left.pop_front() {
            if !done.insert(path.clone()) {
                continue;
            }
            if let Some(o) = by_path.get(&path) {
                if with_size {
                    size += nar_size(o)?;
                }
                left.extend(o.references.iter().cloned());
            } else {
                let info = st.query_path_info(&path).map_err(misc)?.ok_or_else(|| {
                    BuildFailure::misc(format!("path '{}' is not valid", st.print(&path)))
                })?;
                size += info.nar_size;
                left.extend(info.references.iter().cloned());
            }
        }
        Ok((done, size))
    };
    for (name, output) in outputs {
        let Some(checks) = checks_for(drv, name) else { continue };
        let printed = st.print(&output.path);
        if let Some(max) = checks.max_size {
            let size = nar_size(output)?;
            if size > max {
                return Err(BuildFailure::permanent(format!(
                    "path '{printed}' is too large at {size} bytes; limit is {max} bytes"
                )));
            }
        }
        if let Some(max) = checks.max_closure_size {
            let size = closure(&output.path, true)?.1;
            if size > max {
                return Err(BuildFailure::permanent(format!(
                    "closure of path '{printed}' is too large at {size} bytes; limit is {max} bytes"
                )));
            }
        }
        let check = |spec: &Option<Vec<String>>, allowed: bool, recursive: bool| -> Result<(), BuildFailure> {
            let Some(spec) = spec else { return Ok(()) };
            let mut set = BTreeSet::new();
            for item in spec {
                if let Ok(path) = st.store_dir().parse(item) {
                    set.insert(path);
                } else if let Some(o) = outputs.get(item) {
                    set.insert(o.path.clone());
                } else {
                    return Err(BuildFailure::permanent(format!(
                        "derivation contains an illegal reference specifier '{item}'"
                    )));
                }
            }
            let mut used = if recursive { closure(&output.path, false)?.0 } else { output.references.clone() };
            if recursive && checks.ignore_self_refs {
                used.remove(&output.path);
            }
            let bad: Vec<String> =
                used.iter().filter(|p| set.contains(*p) != allowed).map(|p| format!("\n  {}", st.print(p))).collect();
            if bad.is_empty() {
                return Ok(());
            }
            Err(BuildFailure::permanent(format!(
                "output '{printed}' is not allowed to refer to the following paths:{}",
                bad.concat()
            )))
        };
        check(&checks.allowed_references, true, false)?;
        check(&checks.allowed_requisites, true, true)?;
        check(&checks.disallowed_references, false, false)?;
        check(&checks.disallowed_requisites, false, true)?;
    }
    Ok(())
}
