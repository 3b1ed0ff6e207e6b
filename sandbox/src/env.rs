//! The builder's environment, exactly as Nix 2.26 sets it (`initEnv`, `initTmpDir`,
//! `writeStructuredAttrs` in `local-derivation-goal.cc`), and the files it needs in the build
//! directory (`passAsFile` contents, `.attrs.json`, `.attrs.sh`).

use std::collections::BTreeMap;

use nix_formats::derivation::{hash_placeholder, Derivation};
use nix_formats::hash::{Algorithm, Hash};

/// The environment of one build and the files to create in its build directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildEnv {
    /// Variables, by name.
    pub vars: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Files to write in the build directory: name, contents.
    pub files: Vec<(String, Vec<u8>)>,
    /// The builder's arguments.
    pub args: Vec<Vec<u8>>,
}

/// Replaces every occurrence of each key of `rewrites` in `s` by its value (Nix's
/// `rewriteStrings`, applied in the map's order).
pub fn rewrite(s: &[u8], rewrites: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<u8> {
    let mut out = s.to_vec();
    for (from, to) in rewrites {
        if from.is_empty() || !out.windows(from.len()).any(|w| w == from.as_slice()) {
            continue;
        }
        let mut next = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            if out[i..].starts_with(from) {
                next.extend_from_slice(to);
                i += from.len();
            } else {
                next.push(out[i]);
                i += 1;
            }
        }
        out = next;
    }
    out
}

/// What the environment depends on besides the derivation.
#[derive(Debug, Clone)]
pub struct EnvParams<'a> {
    /// The logical store directory.
    pub store_dir: &'a str,
    /// The build directory as the builder sees it (`/build` in a sandbox, else the real one).
    pub build_dir: &'a str,
    /// `NIX_BUILD_CORES`.
    pub cores: u32,
    /// Fixed-output derivations get `impureEnvVars` from the daemon's environment.
    pub fixed_output: bool,
    /// Each output's path.
    pub outputs: &'a BTreeMap<String, String>,
    /// `impure-env`: values for `impureEnvVars` that win over the daemon's environment.
    pub impure_env: &'a BTreeMap<String, String>,
    /// More rewrites after the placeholders' (`--check`'s scratch paths).
    pub rewrites: &'a BTreeMap<Vec<u8>, Vec<u8>>,
    /// More structured attributes, merged in (with structured attributes only).
    pub structured_extra: &'a BTreeMap<String, serde_json::Value>,
}

/// `'…'` quoting for the shell, as Nix's `shellEscape`.
fn shell_escape(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn is_shell_name(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn simple_shell_value(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) => Some(shell_escape(s)),
        Value::Number(n) => {
            let f = n.as_f64()?;
            (f.ceil() == f).then(|| format!("{}", f as i64))
        }
        Value::Null => Some("''".to_owned()),
        Value::Bool(b) => Some(if *b { "1" } else { "" }.to_owned()),
        _ => None,
    }
}

/// The `.attrs.sh` rendering of structured attributes (Nix's `writeStructuredAttrsShell`):
/// strings, integers, nulls and Booleans, and arrays and objects of those, as `declare`s.
pub fn structured_attrs_shell(json: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut out = String::new();
    for (key, value) in json {
        if !is_shell_name(key) {
            continue;
        }
        if let Some(s) = simple_shell_value(value) {
            out.push_str(&format!("declare {key}={s}\n"));
        } else if let serde_json::Value::Array(items) = value {
            let parts: Option<Vec<String>> = items.iter().map(simple_shell_value).collect();
            if let Some(parts) = parts {
                let joined: String = parts.iter().map(|p| format!("{p} ")).collect();
                out.push_str(&format!("declare -a {key}=({joined})\n"));
            }
        } else if let serde_json::Value::Object(map) = value {
            let parts: Option<Vec<String>> = map
                .iter()
                .map(|(k, v)| simple_shell_value(v).map(|s| format!("[{}]={s} ", shell_escape(k))))
                .collect();
            if let Some(parts) = parts {
                out.push_str(&format!("declare -A {key}=({})\n", parts.concat()));
            }
        }
    }
    out
}

/// An error in a derivation's structured attributes.
#[derive(Debug, thiserror::Error)]
#[error("invalid structured attributes (__json): {0}")]
pub struct StructuredAttrsError(String);

/// Builds the environment of `drv`.
pub fn build_env(drv: &Derivation, p: &EnvParams<'_>) -> Result<BuildEnv, StructuredAttrsError> {
    let mut env = BuildEnv::default();
    let set = |env: &mut BuildEnv, k: &str, v: &str| {
        env.vars.insert(k.as_bytes().to_vec(), v.as_bytes().to_vec());
    };
    set(&mut env, "PATH", "/path-not-set");
    set(&mut env, "HOME", "/homeless-shelter");
    set(&mut env, "NIX_STORE", p.store_dir);
    set(&mut env, "NIX_BUILD_CORES", &p.cores.to_string());

    let structured = drv.env.get(&b"__json"[..]);
    match structured {
        None => {
            let pass_as_file: Vec<&[u8]> = drv
                .env
                .get(&b"passAsFile"[..])
                .map(|v| v.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()).collect())
                .unwrap_or_default();
            for (name, value) in &drv.env {
                if !pass_as_file.contains(&name.as_slice()) {
                    env.vars.insert(name.clone(), value.clone());
                    continue;
                }
                let file = format!(".attr-{}", Hash::of(Algorithm::Sha256, name).to_nix32());
                let mut var = name.clone();
                var.extend_from_slice(b"Path");
                env.vars.insert(var, format!("{}/{file}", p.build_dir).into_bytes());
                env.files.push((file, value.clone()));
            }
        }
        Some(json) => {
            let mut value: serde_json::Value =
                serde_json::from_slice(json).map_err(|e| StructuredAttrsError(e.to_string()))?;
            let Some(map) = value.as_object_mut() else {
                return Err(StructuredAttrsError("not a JSON object".into()));
            };
            let outputs: serde_json::Map<String, serde_json::Value> =
                p.outputs.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
            map.insert("outputs".into(), serde_json::Value::Object(outputs));
            for (k, v) in p.structured_extra {
                map.insert(k.clone(), v.clone());
            }
            env.files.push((".attrs.sh".into(), structured_attrs_shell(map).into_bytes()));
            env.files.push((".attrs.json".into(), value.to_string().into_bytes()));
            set(&mut env, "NIX_ATTRS_SH_FILE", &format!("{}/.attrs.sh", p.build_dir));
            set(&mut env, "NIX_ATTRS_JSON_FILE", &format!("{}/.attrs.json", p.build_dir));
        }
    }
    for var in ["NIX_BUILD_TOP", "TMPDIR", "TEMPDIR", "TMP", "TEMP", "PWD"] {
        set(&mut env, var, p.build_dir);
    }
    if p.fixed_output {
        set(&mut env, "NIX_OUTPUT_CHECKED", "1");
        let impure = drv_strings_attr(drv, "impureEnvVars");
        for name in impure {
            let value = match p.impure_env.get(&name) {
                Some(v) => v.clone().into_bytes(),
                None => std::env::var_os(&name).unwrap_or_default().into_encoded_bytes(),
            };
            env.vars.insert(name.into_bytes(), value);
        }
    }
    set(&mut env, "NIX_LOG_FD", "2");
    set(&mut env, "TERM", "xterm-256color");
    // Output placeholders (`builtins.placeholder`) become the outputs' paths in the
    // environment, the files and the arguments, as Nix's `inputRewrites`.
    let rewrites: BTreeMap<Vec<u8>, Vec<u8>> = p
        .outputs
        .iter()
        .map(|(name, path)| (hash_placeholder(name).into_bytes(), path.clone().into_bytes()))
        .collect();
    let both = |v: &[u8]| rewrite(&rewrite(v, &rewrites), p.rewrites);
    env.vars = env.vars.into_iter().map(|(k, v)| (k, both(&v))).collect();
    for (_, contents) in &mut env.files {
        *contents = both(contents);
    }
    env.args = drv.args.iter().map(|a| both(a)).collect();
    Ok(env)
}

/// A list attribute of the derivation: from `__json` when structured, else the
/// whitespace-separated environment variable.
pub fn drv_strings_attr(drv: &Derivation, name: &str) -> Vec<String> {
    if let Some(json) = drv.env.get(&b"__json"[..]) {
        let value: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
        return value
            .get(name)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
    }
    drv.env
        .get(name.as_bytes())
        .map(|v| String::from_utf8_lossy(v).split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drv(env: &[(&str, &str)]) -> Derivation {
        Derivation {
            name: "t".into(),
            outputs: Default::default(),
            input_drvs: Default::default(),
            input_srcs: Default::default(),
            system: b"x86_64-linux".to_vec(),
            builder: b"/bin/sh".to_vec(),
            args: vec![],
            env: env.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect(),
        }
    }

    fn get<'a>(env: &'a BuildEnv, k: &str) -> Option<&'a str> {
        env.vars.get(k.as_bytes()).map(|v| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn plain_environment_matches_nix() {
        let outputs = BTreeMap::from([("out".to_owned(), "/nix/store/x-t".to_owned())]);
        let p = EnvParams { store_dir: "/nix/store", build_dir: "/build", cores: 4, fixed_output: false, outputs: &outputs, impure_env: &BTreeMap::new(), rewrites: &BTreeMap::new(), structured_extra: &BTreeMap::new() };
        let env = build_env(&drv(&[("out", "/nix/store/x-t"), ("big", "data"), ("passAsFile", "big")]), &p).unwrap();
        assert_eq!(get(&env, "PATH"), Some("/path-not-set"));
        assert_eq!(get(&env, "HOME"), Some("/homeless-shelter"));
        assert_eq!(get(&env, "NIX_BUILD_CORES"), Some("4"));
        assert_eq!(get(&env, "TMPDIR"), Some("/build"));
        assert_eq!(get(&env, "out"), Some("/nix/store/x-t"));
        assert_eq!(get(&env, "big"), None);
        let file = format!(".attr-{}", Hash::of(Algorithm::Sha256, b"big").to_nix32());
        assert_eq!(get(&env, "bigPath"), Some(format!("/build/{file}").as_str()));
        assert_eq!(env.files, vec![(file, b"data".to_vec())]);
        assert_eq!(get(&env, "NIX_OUTPUT_CHECKED"), None);
    }

    #[test]
    fn placeholders_become_output_paths() {
        let outputs = BTreeMap::from([("out".to_owned(), "/nix/store/x-t".to_owned())]);
        let p = EnvParams { store_dir: "/nix/store", build_dir: "/b", cores: 1, fixed_output: false, outputs: &outputs, impure_env: &BTreeMap::new(), rewrites: &BTreeMap::new(), structured_extra: &BTreeMap::new() };
        let ph = hash_placeholder("out");
        let mut d = drv(&[("x", &format!("{ph}/bin")), ("y", "keep")]);
        d.args = vec![format!("-c {ph}").into_bytes()];
        let env = build_env(&d, &p).unwrap();
        assert_eq!(get(&env, "x"), Some("/nix/store/x-t/bin"));
        assert_eq!(get(&env, "y"), Some("keep"));
        assert_eq!(env.args, vec![b"-c /nix/store/x-t".to_vec()]);
        assert_eq!(rewrite(b"aXbX", &BTreeMap::from([(b"X".to_vec(), b"YY".to_vec())])), b"aYYbYY");
    }

    #[test]
    fn structured_attrs_files() {
        let outputs = BTreeMap::from([("out".to_owned(), "/nix/store/x-t".to_owned())]);
        let p = EnvParams { store_dir: "/nix/store", build_dir: "/b", cores: 1, fixed_output: false, outputs: &outputs, impure_env: &BTreeMap::new(), rewrites: &BTreeMap::new(), structured_extra: &BTreeMap::new() };
        let json = r#"{"a":"it's","n":3,"f":1.5,"t":true,"l":["x",1],"m":{"k":"v"},"bad-name":1,"nested":[[1]]}"#;
        let env = build_env(&drv(&[("__json", json), ("out", "/nix/store/x-t")]), &p).unwrap();
        assert_eq!(get(&env, "out"), None);
        assert_eq!(get(&env, "NIX_ATTRS_JSON_FILE"), Some("/b/.attrs.json"));
        let sh = String::from_utf8(env.files[0].1.clone()).unwrap();
        assert!(sh.contains("declare a='it'\\''s'\n"), "{sh}");
        assert!(sh.contains("declare n=3\n") && sh.contains("declare t=1\n"), "{sh}");
        assert!(sh.contains("declare -a l=('x' 1 )\n"), "{sh}");
        assert!(sh.contains("declare -A m=(['k']='v' )\n"), "{sh}");
        assert!(sh.contains("declare -A outputs=(['out']='/nix/store/x-t' )\n"), "{sh}");
        assert!(!sh.contains("bad-name") && !sh.contains("nested") && !sh.contains("declare f"), "{sh}");
        let json: serde_json::Value = serde_json::from_slice(&env.files[1].1).unwrap();
        assert_eq!(json["outputs"]["out"], "/nix/store/x-t");
    }
}
