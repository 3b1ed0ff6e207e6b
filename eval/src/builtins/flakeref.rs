//! Flake references: `parseFlakeRef` (a flake reference string to its attribute form) and
//! `flakeRefToString` (back), for the input types Nix 2.26 knows: `indirect` (flake ids and
//! `flake:`), `path`, `git` (`git+file`, `git+https`, ...), `github`/`gitlab`/`sourcehut`,
//! `tarball` and `file`. Nix offers them with the `flakes` experimental feature; casnix
//! always does. Nothing is fetched: these only translate between the two forms.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use super::{make_attrs, PrimOpDef};
use crate::error::{EvalError, EvalResult};
use crate::machine::Evaluator;
use crate::value::Value;

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "parseFlakeRef", arity: 1, fun: parse_flake_ref },
    PrimOpDef { name: "flakeRefToString", arity: 1, fun: flake_ref_to_string },
];

/// An attribute of a fetcher input.
#[derive(Debug, Clone, PartialEq)]
enum Attr {
    Str(String),
    Int(u64),
    Bool(bool),
}

type Attrs = BTreeMap<String, Attr>;

/// A URL split as Nix's `parseURL` splits it (path, query and fragment percent-decoded).
#[derive(Debug, Clone, Default)]
struct Url {
    scheme: String,
    authority: Option<String>,
    path: String,
    query: BTreeMap<String, String>,
    fragment: String,
}

const REF: &str = r"[a-zA-Z0-9@][a-zA-Z0-9_./@+-]*";
const REV: &str = "[0-9a-fA-F]{40}";
/// RFC 3986 pieces, as Nix's URL grammar has them.
const PCT: &str = "(?:%[0-9a-fA-F][0-9a-fA-F])";
const UNRESERVED: &str = "(?:[a-zA-Z0-9._~-])";
const SUBDELIMS: &str = r#"(?:[!$&'"()*+,;=])"#;

fn full(pattern: &str) -> Regex {
    // The patterns are constants of this module, checked by its tests.
    Regex::new(&format!("^(?:{pattern})$")).unwrap_or_else(|e| panic!("flake ref pattern: {e}"))
}

static REF_RE: LazyLock<Regex> = LazyLock::new(|| full(REF));
static REV_RE: LazyLock<Regex> = LazyLock::new(|| full(REV));
static FLAKE_ID_RE: LazyLock<Regex> = LazyLock::new(|| full("[a-zA-Z][a-zA-Z0-9_-]*"));
static HOST_RE: LazyLock<Regex> = LazyLock::new(|| full("[a-zA-Z0-9.-]*"));

fn pchar() -> String {
    format!("(?:{UNRESERVED}|{PCT}|{SUBDELIMS}|[:@])")
}

/// `id(/ref)?(/rev)?` or `id/rev`, with an optional `#fragment`.
static FLAKE_ID_REF_RE: LazyLock<Regex> = LazyLock::new(|| {
    let fragment = format!(r#"(?:{}|[/? "^])*"#, pchar());
    full(&format!(
        "((?:[a-zA-Z][a-zA-Z0-9_-]*)(?:/(?:(?:{REV})|(?:(?:{REF})(?:/(?:{REV}))?)))?)(?:#({fragment}))?"
    ))
});

static URL_RE: LazyLock<Regex> = LazyLock::new(|| {
    let pchar = pchar();
    let segment = format!("(?:{pchar}*)");
    let host = format!(r"(?:\[[0-9a-fA-F:]+(?:%\w+)?\]|[0-9a-fA-F:]+(?:%\w+)?|(?:{UNRESERVED}|{PCT}|{SUBDELIMS})*)");
    let user = format!("(?:(?:{UNRESERVED}|{PCT}|{SUBDELIMS}|:)*)");
    let authority = format!("(?:{user}@)?{host}(?::[0-9]+)?");
    let abs_path = format!("(?:(?:/{segment})*/?)");
    let rel_path = format!("(?:{segment}(?:/{segment})*/?)");
    let query = format!(r#"(?:{pchar}|[/? "])*"#);
    let fragment = format!(r#"(?:{pchar}|[/? "^])*"#);
    full(&format!(
        "([a-z][a-z0-9+.-]*):(?://({authority})({abs_path})|(/?{rel_path}))(?:\\?({query}))?(?:#({fragment}))?"
    ))
});

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).filter(|h| h.len() == 2 && i + 2 < bytes.len());
            let byte = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("invalid URI parameter '{s}'"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn percent_encode(s: &str, keep: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.as_bytes().contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode_query(query: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        // Nix warns about a parameter without `=` and ignores it.
        if let Some((name, value)) = pair.split_once('=') {
            out.entry(name.to_string()).or_insert(percent_decode(value)?);
        }
    }
    Ok(out)
}

impl Url {
    fn parse(text: &str) -> Result<Url, String> {
        let caps = URL_RE.captures(text).ok_or_else(|| format!("'{text}' is not a valid URL"))?;
        let scheme = caps[1].to_string();
        let authority = caps.get(2).map(|m| m.as_str().to_string());
        let mut path = caps.get(3).or(caps.get(4)).map_or("", |m| m.as_str()).to_string();
        let transport_is_file = scheme.rsplit('+').next() == Some("file");
        if transport_is_file {
            if authority.as_deref().is_some_and(|a| !a.is_empty()) {
                return Err(format!(
                    "file:// URL '{text}' has unexpected authority '{}'",
                    authority.unwrap_or_default()
                ));
            }
            if path.is_empty() {
                path = "/".into();
            }
        }
        Ok(Url {
            scheme,
            authority,
            path: percent_decode(&path)?,
            query: decode_query(caps.get(5).map_or("", |m| m.as_str()))?,
            fragment: percent_decode(caps.get(6).map_or("", |m| m.as_str()))?,
        })
    }

    fn render(&self) -> String {
        let mut out = format!("{}:", self.scheme);
        if let Some(authority) = &self.authority {
            out.push_str("//");
            out.push_str(authority);
        }
        out.push_str(&percent_encode(&self.path, ":@/"));
        if !self.query.is_empty() {
            let pairs: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", percent_encode(k, ":@/?"), percent_encode(v, ":@/?")))
                .collect();
            out.push('?');
            out.push_str(&pairs.join("&"));
        }
        if !self.fragment.is_empty() {
            out.push('#');
            out.push_str(&percent_encode(&self.fragment, ""));
        }
        out
    }
}

fn str_attr(attrs: &Attrs, name: &str) -> Result<Option<String>, String> {
    match attrs.get(name) {
        None => Ok(None),
        Some(Attr::Str(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("input attribute '{name}' is not a string")),
    }
}

fn required_str(attrs: &Attrs, name: &str) -> Result<String, String> {
    str_attr(attrs, name)?.ok_or_else(|| format!("input attribute '{name}' is missing"))
}

fn bool_attr(attrs: &Attrs, name: &str) -> Result<bool, String> {
    match attrs.get(name) {
        None => Ok(false),
        Some(Attr::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("input attribute '{name}' is not a Boolean")),
    }
}

/// A 40-digit commit hash, lower-cased as Nix prints it.
fn git_rev(text: &str) -> Result<String, String> {
    if REV_RE.is_match(text) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!("hash '{text}' is not a valid SHA-1 commit hash"))
    }
}

/// The attributes an input type accepts (besides `type`).
fn allowed_attrs(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "indirect" => &["id", "ref", "rev", "narHash"],
        "path" => &["path", "rev", "revCount", "lastModified", "narHash"],
        "github" | "gitlab" | "sourcehut" => &["owner", "repo", "ref", "rev", "narHash", "lastModified", "host", "treeHash"],
        "git" => &[
            "url", "ref", "rev", "shallow", "submodules", "exportIgnore", "lastModified", "revCount", "narHash",
            "allRefs", "name", "dirtyRev", "dirtyShortRev", "verifyCommit", "keytype", "publicKey", "publicKeys",
        ],
        "tarball" | "file" => &["url", "narHash", "name", "unpack", "rev", "revCount", "lastModified"],
        _ => return None,
    })
}

fn has_tarball_extension(path: &str) -> bool {
    [".zip", ".tar", ".tgz", ".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst"].iter().any(|e| path.ends_with(e))
}

fn git_archive_from_url(url: &Url) -> Result<Attrs, String> {
    let shown = url.render();
    let path: Vec<&str> = url.path.split('/').filter(|p| !p.is_empty()).collect();
    let (mut rev, mut reference, mut host) = (None, None, None);
    match path.len() {
        0 | 1 => return Err(format!("URL '{shown}' is invalid")),
        2 => {}
        3 if REV_RE.is_match(path[2]) => rev = Some(git_rev(path[2])?),
        3 if REF_RE.is_match(path[2]) => reference = Some(path[2].to_string()),
        3 => return Err(format!("in URL '{shown}', '{}' is not a commit hash or branch/tag name", path[2])),
        _ => {
            let rest = path[2..].join("/");
            if !REF_RE.is_match(&rest) {
                return Err(format!("in URL '{shown}', '{rest}' is not a branch/tag name"));
            }
            reference = Some(rest);
        }
    }
    for (name, value) in &url.query {
        match name.as_str() {
            "rev" if rev.is_some() => return Err(format!("URL '{shown}' contains multiple commit hashes")),
            "rev" => rev = Some(git_rev(value)?),
            "ref" if !REF_RE.is_match(value) => return Err(format!("URL '{shown}' contains an invalid branch/tag name")),
            "ref" if reference.is_some() => return Err(format!("URL '{shown}' contains multiple branch/tag names")),
            "ref" => reference = Some(value.clone()),
            "host" if !HOST_RE.is_match(value) => return Err(format!("URL '{shown}' contains an invalid instance host")),
            "host" => host = Some(value.clone()),
            _ => {}
        }
    }
    if let (Some(r), Some(h)) = (&reference, &rev) {
        return Err(format!("URL '{shown}' contains both a commit hash and a branch/tag name {r} {h}"));
    }
    let mut attrs = Attrs::new();
    attrs.insert("type".into(), Attr::Str(url.scheme.clone()));
    attrs.insert("owner".into(), Attr::Str(path[0].to_string()));
    attrs.insert("repo".into(), Attr::Str(path[1].to_string()));
    for (name, value) in [("rev", rev), ("ref", reference), ("host", host), ("narHash", url.query.get("narHash").cloned())] {
        if let Some(value) = value {
            attrs.insert(name.into(), Attr::Str(value));
        }
    }
    Ok(attrs)
}

fn indirect_from_url(url: &Url) -> Result<Attrs, String> {
    let shown = url.render();
    let path: Vec<&str> = url.path.split('/').filter(|p| !p.is_empty()).collect();
    let (mut rev, mut reference) = (None, None);
    match path.len() {
        1 => {}
        2 if REV_RE.is_match(path[1]) => rev = Some(git_rev(path[1])?),
        2 if REF_RE.is_match(path[1]) => reference = Some(path[1].to_string()),
        2 => return Err(format!("in flake URL '{shown}', '{}' is not a commit hash or branch/tag name", path[1])),
        3 => {
            if !REF_RE.is_match(path[1]) {
                return Err(format!("in flake URL '{shown}', '{}' is not a branch/tag name", path[1]));
            }
            reference = Some(path[1].to_string());
            if !REV_RE.is_match(path[2]) {
                return Err(format!("in flake URL '{shown}', '{}' is not a commit hash", path[2]));
            }
            rev = Some(git_rev(path[2])?);
        }
        _ => return Err(format!("GitHub URL '{shown}' is invalid")),
    }
    if !FLAKE_ID_RE.is_match(path[0]) {
        return Err(format!("'{}' is not a valid flake ID", path[0]));
    }
    let mut attrs = Attrs::new();
    attrs.insert("type".into(), Attr::Str("indirect".into()));
    attrs.insert("id".into(), Attr::Str(path[0].to_string()));
    for (name, value) in [("rev", rev), ("ref", reference)] {
        if let Some(value) = value {
            attrs.insert(name.into(), Attr::Str(value));
        }
    }
    Ok(attrs)
}

fn path_from_url(url: &Url) -> Result<Attrs, String> {
    let shown = url.render();
    if url.authority.as_deref().is_some_and(|a| !a.is_empty()) {
        return Err(format!(
            "path URL '{shown}' should not have an authority ('{}')",
            url.authority.as_deref().unwrap_or_default()
        ));
    }
    let mut attrs = Attrs::new();
    attrs.insert("type".into(), Attr::Str("path".into()));
    attrs.insert("path".into(), Attr::Str(url.path.clone()));
    for (name, value) in &url.query {
        match name.as_str() {
            "rev" | "narHash" => {
                attrs.insert(name.clone(), Attr::Str(value.clone()));
            }
            "revCount" | "lastModified" => {
                let n = value.parse().map_err(|_| format!("path URL '{shown}' has invalid parameter '{name}'"))?;
                attrs.insert(name.clone(), Attr::Int(n));
            }
            _ => return Err(format!("path URL '{shown}' has unsupported parameter '{name}'")),
        }
    }
    Ok(attrs)
}

fn git_from_url(url: &Url) -> Attrs {
    let mut plain = url.clone();
    if let Some(rest) = plain.scheme.strip_prefix("git+") {
        plain.scheme = rest.to_string();
    }
    plain.query.clear();
    let mut attrs = Attrs::new();
    attrs.insert("type".into(), Attr::Str("git".into()));
    for (name, value) in &url.query {
        match name.as_str() {
            "rev" | "ref" | "keytype" | "publicKey" | "publicKeys" => {
                attrs.insert(name.clone(), Attr::Str(value.clone()));
            }
            "shallow" | "submodules" | "exportIgnore" | "allRefs" | "verifyCommit" => {
                attrs.insert(name.clone(), Attr::Bool(value == "1"));
            }
            _ => {
                plain.query.insert(name.clone(), value.clone());
            }
        }
    }
    attrs.insert("url".into(), Attr::Str(plain.render()));
    attrs
}

/// `tarball` or `file` (`kind`), from an http(s)/file URL.
fn curl_from_url(url: &Url, kind: &str) -> Attrs {
    let mut plain = url.clone();
    plain.scheme = url.scheme.rsplit('+').next().unwrap_or_default().to_string();
    let mut attrs = Attrs::new();
    if let Some(v) = url.query.get("narHash") {
        attrs.insert("narHash".into(), Attr::Str(v.clone()));
    }
    if let Some(v) = url.query.get("rev") {
        attrs.insert("rev".into(), Attr::Str(v.clone()));
    }
    for name in ["revCount", "lastModified"] {
        if let Some(n) = url.query.get(name).and_then(|v| v.parse().ok()) {
            attrs.insert(name.into(), Attr::Int(n));
        }
    }
    for name in allowed_attrs(kind).unwrap_or_default().iter().chain(&["type"]) {
        plain.query.remove(*name);
    }
    attrs.insert("type".into(), Attr::Str(kind.into()));
    attrs.insert("url".into(), Attr::Str(plain.render()));
    attrs
}

/// Which input a URL is, trying the input types in Nix's (alphabetical) order.
fn input_from_url(url: &Url, require_tree: bool) -> Result<Attrs, String> {
    let (application, transport) = match url.scheme.split_once('+') {
        Some((a, t)) => (Some(a), t),
        None => (None, url.scheme.as_str()),
    };
    let curl = matches!(transport, "file" | "http" | "https");
    if curl && application.map_or(!require_tree && !has_tarball_extension(&url.path), |a| a == "file") {
        return Ok(curl_from_url(url, "file"));
    }
    match url.scheme.as_str() {
        "git" | "git+http" | "git+https" | "git+ssh" | "git+file" => return Ok(git_from_url(url)),
        "github" | "gitlab" | "sourcehut" => return git_archive_from_url(url),
        "flake" => return indirect_from_url(url),
        "path" => return path_from_url(url),
        _ => {}
    }
    if curl && application.map_or(require_tree || has_tarball_extension(&url.path), |a| a == "tarball") {
        return Ok(curl_from_url(url, "tarball"));
    }
    Err(format!("input '{}' is unsupported", url.render()))
}

/// A flake reference string to its attributes (with `dir`), as Nix's `parseFlakeRef`.
fn parse(text: &str) -> Result<Attrs, String> {
    if let Some(caps) = FLAKE_ID_REF_RE.captures(text) {
        let url = Url { scheme: "flake".into(), path: caps[1].to_string(), ..Url::default() };
        return input_from_url(&url, true);
    }
    let mut url = match Url::parse(text) {
        Ok(url) => url,
        Err(_) => {
            let (rest, _fragment) = text.split_once('#').unwrap_or((text, ""));
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            if !path.starts_with('/') {
                return Err(format!("flake reference '{text}' is not an absolute path"));
            }
            Url { scheme: "path".into(), authority: Some(String::new()), path: path.into(), query: decode_query(query)?, ..Url::default() }
        }
    };
    let dir = url.query.remove("dir").unwrap_or_default();
    let mut attrs = input_from_url(&url, true)?;
    if !dir.is_empty() {
        attrs.insert("dir".into(), Attr::Str(dir));
    }
    Ok(attrs)
}

/// A flake reference's attributes back to its URL form, as Nix's `flakeRefToString`.
fn render(mut attrs: Attrs) -> Result<String, String> {
    let dir = match attrs.remove("dir") {
        Some(Attr::Str(d)) => d,
        Some(_) => return Err("input attribute 'dir' is not a string".into()),
        None => String::new(),
    };
    let kind = str_attr(&attrs, "type")?
        .ok_or("'type' attribute to specify input scheme is required but not provided")?;
    let allowed = allowed_attrs(&kind).ok_or_else(|| format!("cannot show unsupported input of type '{kind}'"))?;
    if let Some(name) = attrs.keys().find(|n| *n != "type" && *n != "__final" && !allowed.contains(&n.as_str())) {
        return Err(format!("input attribute '{name}' not supported by scheme '{kind}'"));
    }
    if let Some(r) = str_attr(&attrs, "ref")? {
        if !REF_RE.is_match(&r) {
            return Err(format!("invalid Git branch/tag name '{r}'"));
        }
    }
    let rev = str_attr(&attrs, "rev")?.map(|r| git_rev(&r)).transpose()?;
    let mut url = match kind.as_str() {
        "indirect" => {
            let id = required_str(&attrs, "id")?;
            if !FLAKE_ID_RE.is_match(&id) {
                return Err(format!("'{id}' is not a valid flake ID"));
            }
            let mut path = id;
            for part in [str_attr(&attrs, "ref")?, rev].into_iter().flatten() {
                path.push('/');
                path.push_str(&part);
            }
            Url { scheme: "flake".into(), path, ..Url::default() }
        }
        "path" => {
            let path = required_str(&attrs, "path")?;
            let mut query = BTreeMap::new();
            for (name, value) in &attrs {
                let text = match value {
                    Attr::Str(s) => s.clone(),
                    Attr::Int(n) => n.to_string(),
                    Attr::Bool(b) => if *b { "1" } else { "0" }.to_string(),
                };
                if !matches!(name.as_str(), "path" | "type" | "__final") {
                    query.insert(name.clone(), text);
                }
            }
            Url { scheme: "path".into(), path, query, ..Url::default() }
        }
        "github" | "gitlab" | "sourcehut" => {
            let mut path = format!("{}/{}", required_str(&attrs, "owner")?, required_str(&attrs, "repo")?);
            let reference = str_attr(&attrs, "ref")?;
            if reference.is_some() && rev.is_some() {
                return Err(format!("input of type '{kind}' has both a branch/tag name and a commit hash"));
            }
            for part in [reference, rev].into_iter().flatten() {
                path.push('/');
                path.push_str(&part);
            }
            let mut url = Url { scheme: kind.clone(), path, ..Url::default() };
            if let Some(nar_hash) = str_attr(&attrs, "narHash")? {
                url.query.insert("narHash".into(), nar_hash);
            }
            url
        }
        "git" => {
            let mut url = Url::parse(&required_str(&attrs, "url")?)?;
            if url.scheme != "git" {
                url.scheme = format!("git+{}", url.scheme);
            }
            if let Some(rev) = rev {
                url.query.insert("rev".into(), rev);
            }
            if let Some(r) = str_attr(&attrs, "ref")? {
                url.query.insert("ref".into(), r);
            }
            for flag in ["shallow", "submodules", "exportIgnore", "verifyCommit"] {
                if bool_attr(&attrs, flag)? {
                    url.query.insert(flag.into(), "1".into());
                }
            }
            if let Some(key) = str_attr(&attrs, "publicKey")? {
                url.query.insert("keytype".into(), str_attr(&attrs, "keytype")?.unwrap_or_else(|| "ssh-ed25519".into()));
                url.query.insert("publicKey".into(), key);
            }
            url
        }
        _ => {
            let mut url = Url::parse(&required_str(&attrs, "url")?)?;
            if let Some(nar_hash) = str_attr(&attrs, "narHash")? {
                url.query.insert("narHash".into(), nar_hash);
            }
            url
        }
    };
    if !dir.is_empty() {
        url.query.entry("dir".into()).or_insert(dir);
    }
    Ok(url.render())
}

fn to_value(attrs: &Attrs) -> Value {
    make_attrs(
        attrs
            .iter()
            .map(|(name, value)| {
                let v = match value {
                    Attr::Str(s) => Value::string(s.as_str()),
                    Attr::Int(n) => Value::Int(i64::try_from(*n).unwrap_or(i64::MAX)),
                    Attr::Bool(b) => Value::Bool(*b),
                };
                (name.as_str(), v)
            })
            .collect(),
    )
}

/// `v` itself, or what it evaluated to if it is a thunk already evaluated.
fn evaluated(v: &Value) -> Value {
    if let Value::Thunk(thunk) = v {
        if let crate::value::ThunkView::Done(inner) = thunk.view() {
            return evaluated(&inner);
        }
    }
    v.clone()
}

fn parse_flake_ref(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let text = ev.force_str(&args[0])?;
    parse(&text).map(|attrs| to_value(&attrs)).map_err(EvalError::other)
}

fn flake_ref_to_string(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let set = ev.force_attrs(&args[0])?;
    let mut attrs = Attrs::new();
    for attr in set.iter() {
        let name = attr.name.as_str().to_string();
        // As Nix, the values are looked at as they are: one not yet evaluated is "a thunk".
        let value = match evaluated(&attr.value) {
            Value::Int(n) if n < 0 => {
                return Err(EvalError::other(format!("negative value given for flake ref attr {name}: {n}")))
            }
            Value::Int(n) => Attr::Int(n as u64),
            Value::Bool(b) => Attr::Bool(b),
            v @ Value::String(_) => Attr::Str(ev.force_str(&v)?),
            other => {
                return Err(EvalError::other(format!(
                    "flake reference attribute sets may only contain integers, Booleans, and strings, but attribute '{name}' is {}",
                    other.describe()
                )))
            }
        };
        attrs.insert(name, value);
    }
    render(attrs).map(Value::string).map_err(EvalError::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(attrs: &Attrs, name: &str) -> String {
        str_attr(attrs, name).unwrap().unwrap_or_default()
    }

    #[test]
    fn github_round_trip() {
        let attrs = parse("github:NixOS/nixpkgs/23.05?dir=lib").unwrap();
        assert_eq!((s(&attrs, "type"), s(&attrs, "owner"), s(&attrs, "ref"), s(&attrs, "dir")), ("github".into(), "NixOS".into(), "23.05".into(), "lib".into()));
        assert_eq!(render(attrs).unwrap(), "github:NixOS/nixpkgs/23.05?dir=lib");
    }

    #[test]
    fn flake_ids_are_indirect() {
        let rev = "a".repeat(40);
        let attrs = parse(&format!("nixpkgs/nixos-23.05/{rev}")).unwrap();
        assert_eq!((s(&attrs, "type"), s(&attrs, "id"), s(&attrs, "ref"), s(&attrs, "rev")), ("indirect".into(), "nixpkgs".into(), "nixos-23.05".into(), rev.clone()));
        assert_eq!(render(attrs).unwrap(), format!("flake:nixpkgs/nixos-23.05/{rev}"));
    }

    #[test]
    fn paths_git_and_tarballs() {
        assert_eq!(s(&parse("/src/flake").unwrap(), "path"), "/src/flake");
        assert!(parse("relative/dir/x?y").is_err());
        let git = parse("git+https://example.org/repo.git?ref=main&shallow=1").unwrap();
        assert_eq!((s(&git, "url"), git.get("shallow")), ("https://example.org/repo.git".into(), Some(&Attr::Bool(true))));
        assert_eq!(render(git).unwrap(), "git+https://example.org/repo.git?ref=main&shallow=1");
        assert_eq!(s(&parse("https://example.org/x.tar.gz").unwrap(), "type"), "tarball");
        assert_eq!(s(&parse("file+https://example.org/x").unwrap(), "type"), "file");
        assert!(parse("github:NixOS").is_err());
    }
}
