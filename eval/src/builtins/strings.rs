//! Strings: `stringLength`, `substring`, `concatStringsSep`, `replaceStrings`, `baseNameOf`,
//! `dirOf`, `stringToCharacters`-like helpers.

use super::PrimOpDef;
use crate::error::{EvalError, EvalResult};
use crate::machine::Evaluator;
use crate::value::{Context, Value, ValueRc};

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "stringLength", arity: 1, fun: string_length },
    PrimOpDef { name: "substring", arity: 3, fun: substring },
    PrimOpDef { name: "concatStringsSep", arity: 2, fun: concat_strings_sep },
    PrimOpDef { name: "replaceStrings", arity: 3, fun: replace_strings },
    PrimOpDef { name: "baseNameOf", arity: 1, fun: base_name_of },
    PrimOpDef { name: "dirOf", arity: 1, fun: dir_of },
];

fn string_length(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let s = ev.coerce_to_string(&args[0], &mut ctx, false, true)?;
    Ok(Value::Int(s.len() as i64))
}

/// The byte range `[start, start+len)` of `s`, clamped, on character boundaries where possible.
fn byte_slice(s: &str, start: usize, len: usize) -> String {
    let bytes = s.as_bytes();
    if start >= bytes.len() {
        return String::new();
    }
    let end = start.saturating_add(len).min(bytes.len());
    String::from_utf8_lossy(&bytes[start..end]).into_owned()
}

fn substring(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let start = ev.force_int(&args[0])?;
    let len = ev.force_int(&args[1])?;
    let mut ctx = Context::new();
    let s = ev.coerce_to_string(&args[2], &mut ctx, false, true)?;
    if start < 0 {
        return Err(EvalError::other("negative start position in 'substring'"));
    }
    let len = if len < 0 { usize::MAX } else { len as usize };
    Ok(Value::string_with_context(byte_slice(&s, start as usize, len), ctx))
}

fn concat_strings_sep(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let sep = ev.force_string(&args[0])?;
    ctx.extend(sep.context.iter().cloned());
    let list = ev.force_list(&args[1])?;
    let mut out = String::new();
    for (i, item) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(&sep.text);
        }
        out.push_str(&ev.coerce_to_string(item, &mut ctx, false, true)?);
    }
    Ok(Value::string_with_context(out, ctx))
}

fn replace_strings(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let from_list = ev.force_list(&args[0])?;
    let to_list = ev.force_list(&args[1])?;
    if from_list.len() != to_list.len() {
        return Err(EvalError::other("'from' and 'to' arguments passed to builtins.replaceStrings have different lengths"));
    }
    let mut from = Vec::new();
    for f in from_list.iter() {
        from.push(ev.force_str(f)?);
    }
    let mut to_cache: Vec<Option<(String, Context)>> = vec![None; to_list.len()];
    let s = ev.force_string(&args[2])?;
    let mut ctx = s.context.clone();
    let text = &s.text;
    let mut out = String::new();
    let mut i = 0;
    let bytes = text.as_bytes();
    while i <= bytes.len() {
        let mut matched = false;
        for (k, pat) in from.iter().enumerate() {
            if bytes[i..].starts_with(pat.as_bytes()) {
                if to_cache[k].is_none() {
                    let t = ev.force_string(&to_list[k])?;
                    to_cache[k] = Some((t.text.clone(), t.context.clone()));
                }
                if let Some((t, c)) = &to_cache[k] {
                    out.push_str(t);
                    ctx.extend(c.iter().cloned());
                }
                if pat.is_empty() {
                    if let Some(c) = text[i..].chars().next() {
                        out.push(c);
                        i += c.len_utf8();
                    } else {
                        i += 1;
                    }
                } else {
                    i += pat.len();
                }
                matched = true;
                break;
            }
        }
        if !matched {
            match text.get(i..).and_then(|r| r.chars().next()) {
                Some(c) => {
                    out.push(c);
                    i += c.len_utf8();
                }
                None => i += 1,
            }
        }
    }
    Ok(Value::string_with_context(out, ctx))
}

fn base_name_of(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let v = ev.force(&args[0])?;
    let s = ev.coerce_to_string(&v, &mut ctx, false, false)?;
    Ok(Value::string_with_context(crate::path::base_name(&s).to_string(), ctx))
}

fn dir_of(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let v = ev.force(&args[0])?;
    match &v {
        Value::Path(p) => Ok(Value::Path(ValueRc::new(crate::path::dir_of(p).to_owned()))),
        _ => {
            let mut ctx = Context::new();
            let s = ev.coerce_to_string(&v, &mut ctx, false, false)?;
            Ok(Value::string_with_context(crate::path::dir_of(&s).to_string(), ctx))
        }
    }
}
