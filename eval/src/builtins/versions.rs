//! Versions: `compareVersions`, `splitVersion`, `parseDrvName`.

use std::cmp::Ordering;

use super::{make_attrs, PrimOpDef};
use crate::error::EvalResult;
use crate::machine::Evaluator;
use crate::value::Value;

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "compareVersions", arity: 2, fun: compare_versions },
    PrimOpDef { name: "splitVersion", arity: 1, fun: split_version },
    PrimOpDef { name: "parseDrvName", arity: 1, fun: parse_drv_name },
];

/// The next version component of `s` after `*pos`: a run of digits or of other characters,
/// skipping `.` and `-` separators.
fn next_component<'a>(s: &'a str, pos: &mut usize) -> &'a str {
    let bytes = s.as_bytes();
    while *pos < bytes.len() && (bytes[*pos] == b'.' || bytes[*pos] == b'-') {
        *pos += 1;
    }
    let start = *pos;
    if *pos < bytes.len() && bytes[*pos].is_ascii_digit() {
        while *pos < bytes.len() && bytes[*pos].is_ascii_digit() {
            *pos += 1;
        }
    } else {
        while *pos < bytes.len() && !(bytes[*pos].is_ascii_digit() || bytes[*pos] == b'.' || bytes[*pos] == b'-') {
            *pos += 1;
        }
    }
    s.get(start..*pos).unwrap_or("")
}

fn component_less(a: &str, b: &str) -> bool {
    let na: Option<u64> = if !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) { a.parse().ok() } else { None };
    let nb: Option<u64> = if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) { b.parse().ok() } else { None };
    match (na, nb) {
        (Some(x), Some(y)) => x < y,
        _ if a.is_empty() && nb.is_some() => true,
        _ if a == "pre" && b != "pre" => true,
        _ if b == "pre" => false,
        (_, Some(_)) => true,
        (Some(_), _) => false,
        _ => a < b,
    }
}

/// Nix's version comparison.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut p, mut q) = (0, 0);
    while p < a.len() || q < b.len() {
        let c1 = next_component(a, &mut p);
        let c2 = next_component(b, &mut q);
        if component_less(c1, c2) {
            return Ordering::Less;
        }
        if component_less(c2, c1) {
            return Ordering::Greater;
        }
    }
    Ordering::Equal
}

fn compare_versions(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let a = ev.force_str(&args[0])?;
    let b = ev.force_str(&args[1])?;
    Ok(Value::Int(match compare(&a, &b) {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }))
}

fn split_version(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let s = ev.force_str(&args[0])?;
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < s.len() {
        let c = next_component(&s, &mut pos);
        if c.is_empty() {
            break;
        }
        out.push(Value::string(c));
    }
    Ok(Value::list(out))
}

fn parse_drv_name(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let s = ev.force_str(&args[0])?;
    let bytes = s.as_bytes();
    let mut name = s.clone();
    let mut version = String::new();
    for i in 0..bytes.len() {
        if bytes[i] == b'-' && i + 1 < bytes.len() && !bytes[i + 1].is_ascii_alphabetic() {
            name = s[..i].to_string();
            version = s[i + 1..].to_string();
            break;
        }
    }
    Ok(make_attrs(vec![("name", Value::string(name)), ("version", Value::string(version))]))
}
