//! JSON and TOML: `toJSON`, `fromJSON`, `fromTOML`, and `--json` output.

use super::PrimOpDef;
use crate::error::{EvalError, EvalResult};
use crate::machine::{with_stack, Evaluator};
use crate::symbol::Symbol;
use crate::value::{Attr, Attrs, Context, Value};

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "toJSON", arity: 1, fun: to_json },
    PrimOpDef { name: "fromJSON", arity: 1, fun: from_json },
    PrimOpDef { name: "fromTOML", arity: 1, fun: from_toml },
];

/// Formats a float as nlohmann::json does (shortest round-trip digits; fixed notation for
/// decimal exponents in (-4, 15], else `1e+20`-style).
pub fn json_float(x: f64) -> String {
    if !x.is_finite() {
        return "null".into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let k = digits.len() as i32;
    let n = exp + 1; // position of the decimal point relative to the digits
    let sign = if x < 0.0 { "-" } else { "" };
    let body = if k <= n && n <= 15 {
        format!("{digits}{}.0", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 15 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -4 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let m = if k == 1 { digits.clone() } else { format!("{}.{}", &digits[..1], &digits[1..]) };
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    };
    format!("{sign}{body}")
}

/// Appends a JSON string literal as nlohmann::json writes it.
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Evaluator {
    /// Serialises a value as JSON (Nix's `printValueAsJSON`): paths are copied to the store, sets
    /// with `__toString` or `outPath` become strings.
    pub fn to_json(&mut self, v: &Value, strict: bool, ctx: &mut Context, out: &mut String) -> EvalResult<()> {
        if !strict {
            if let Value::Thunk(t) = v {
                if !matches!(t.view(), crate::value::ThunkView::Done(_)) {
                    return Err(EvalError::type_error("cannot convert a thunk to JSON"));
                }
            }
        }
        let v = self.force(v)?;
        with_stack(|| match &v {
            Value::Null => {
                out.push_str("null");
                Ok(())
            }
            Value::Bool(b) => {
                out.push_str(if *b { "true" } else { "false" });
                Ok(())
            }
            Value::Int(i) => {
                out.push_str(&i.to_string());
                Ok(())
            }
            Value::Float(f) => {
                out.push_str(&json_float(*f));
                Ok(())
            }
            Value::String(s) => {
                ctx.extend(s.context.iter().cloned());
                json_string(out, &s.text);
                Ok(())
            }
            Value::Path(p) => {
                let sp = self.copy_path_to_store(p)?;
                ctx.insert(sp.clone());
                json_string(out, &sp);
                Ok(())
            }
            Value::Attrs(a) => {
                if a.get(Symbol::new("__toString")).is_some() {
                    let s = self.coerce_to_string(&v, ctx, false, false)?;
                    json_string(out, &s);
                    return Ok(());
                }
                if let Some(o) = a.get(Symbol::new("outPath")).cloned() {
                    return self.to_json(&o, strict, ctx, out);
                }
                out.push('{');
                for (i, attr) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(out, attr.name.as_str());
                    out.push(':');
                    self.to_json(&attr.value, strict, ctx, out).map_err(|e| {
                        let e = match &attr.pos {
                            Some(p) => e.at(p),
                            None => e,
                        };
                        e.with_frame(attr.pos.as_ref(), format!("while evaluating attribute '{}'", attr.name))
                    })?;
                }
                out.push('}');
                Ok(())
            }
            Value::List(l) => {
                out.push('[');
                for (i, item) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.to_json(item, strict, ctx, out)?;
                }
                out.push(']');
                Ok(())
            }
            other => Err(EvalError::type_error(format!("cannot convert {} to JSON", other.describe()))),
        })
    }
}

fn to_json(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let mut out = String::new();
    ev.to_json(&args[0], true, &mut ctx, &mut out)?;
    Ok(Value::string_with_context(out, ctx))
}

/// Nix strings cannot hold NUL bytes.
pub fn check_no_nul(s: &str) -> EvalResult<()> {
    if s.contains('\0') {
        return Err(EvalError::other(format!(
            "input string '{}' cannot be represented as Nix string because it contains null bytes",
            s.replace('\0', "\u{2400}")
        )));
    }
    Ok(())
}

fn json_to_value(j: serde_json::Value) -> EvalResult<Value> {
    Ok(match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None if n.is_u64() => {
                return Err(EvalError::other(format!("unsigned json number {n} outside of Nix integer range")))
            }
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => {
            check_no_nul(&s)?;
            Value::string(s)
        }
        serde_json::Value::Array(items) => Value::list(items.into_iter().map(json_to_value).collect::<EvalResult<_>>()?),
        serde_json::Value::Object(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (k, v) in map {
                check_no_nul(&k)?;
                entries.push(Attr { name: Symbol::new(&k), value: json_to_value(v)?, pos: None });
            }
            Value::attrs(Attrs::from_unsorted(entries))
        }
    })
}

fn from_json(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let s = ev.force_str(&args[0])?;
    let mut de = serde_json::Deserializer::from_str(&s);
    de.disable_recursion_limit();
    let parsed = with_stack(|| serde::Deserialize::deserialize(&mut de));
    let j: serde_json::Value = parsed.map_err(|e| EvalError::other(format!("while decoding a JSON string: {e}")))?;
    de.end().map_err(|e| EvalError::other(format!("while decoding a JSON string: {e}")))?;
    with_stack(|| json_to_value(j))
}

fn toml_error(e: EvalError) -> EvalError {
    EvalError::other(format!("while parsing TOML: error: {}", e.message))
}

fn toml_to_value(t: toml::Value, timestamps: bool) -> EvalResult<Value> {
    Ok(match t {
        toml::Value::String(s) => {
            check_no_nul(&s).map_err(toml_error)?;
            Value::string(s)
        }
        toml::Value::Integer(i) => Value::Int(i),
        toml::Value::Float(f) => Value::Float(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => {
            if !timestamps {
                return Err(EvalError::other("while parsing TOML: Dates and times are not supported"));
            }
            let text = d.to_string().replacen(' ', "T", 1);
            super::make_attrs(vec![("_type", Value::string("timestamp")), ("value", Value::string(text))])
        }
        toml::Value::Array(items) => {
            Value::list(items.into_iter().map(|v| toml_to_value(v, timestamps)).collect::<EvalResult<_>>()?)
        }
        toml::Value::Table(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (k, v) in map {
                check_no_nul(&k).map_err(toml_error)?;
                entries.push(Attr { name: Symbol::new(&k), value: toml_to_value(v, timestamps)?, pos: None });
            }
            Value::attrs(Attrs::from_unsorted(entries))
        }
    })
}

fn from_toml(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let s = ev.force_str(&args[0])?;
    let t: toml::Table = s.parse().map_err(|e: toml::de::Error| EvalError::other(format!("while parsing TOML: {e}")))?;
    let timestamps = ev.options.toml_timestamps;
    toml_to_value(toml::Value::Table(t), timestamps)
}

#[cfg(test)]
mod tests {
    use super::json_float;

    #[test]
    fn floats_like_nlohmann() {
        assert_eq!(json_float(1.5), "1.5");
        assert_eq!(json_float(3.0), "3.0");
        assert_eq!(json_float(1e20), "1e+20");
        assert_eq!(json_float(0.001), "0.001");
        assert_eq!(json_float(1e-5), "1e-05");
        assert_eq!(json_float(123.456), "123.456");
    }
}
