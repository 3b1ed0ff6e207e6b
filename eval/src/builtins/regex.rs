//! Regular expressions: `match` and `split` (POSIX extended syntax, run with the `regex` crate).

use super::PrimOpDef;
use crate::error::{EvalError, EvalResult};
use crate::machine::Evaluator;
use crate::value::Value;

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "match", arity: 2, fun: match_ },
    PrimOpDef { name: "split", arity: 2, fun: split },
];

/// The most compiled regular expressions kept per evaluation.
const CACHE_LIMIT: usize = 4096;

impl Evaluator {
    /// Compiles (or reuses) a regular expression; `anchored` wraps it in `^(?:...)$`.
    fn regex(&mut self, re: &str, anchored: bool) -> EvalResult<regex::Regex> {
        let key = format!("{}{re}", if anchored { 'A' } else { 'U' });
        if let Some(r) = self.regex_cache.get(&key) {
            return Ok(r.clone());
        }
        let pattern = if anchored { format!("^(?:{re})$") } else { re.to_string() };
        let compiled = regex::RegexBuilder::new(&pattern)
            .size_limit(16 << 20)
            // POSIX: `.` matches any character, newlines included.
            .dot_matches_new_line(true)
            .build()
            .map_err(|_| EvalError::other(format!("invalid regular expression '{re}'")))?;
        if self.regex_cache.len() >= CACHE_LIMIT {
            self.regex_cache.clear();
        }
        self.regex_cache.insert(key, compiled.clone());
        Ok(compiled)
    }
}

fn groups(caps: &regex::Captures<'_>) -> Vec<Value> {
    (1..caps.len())
        .map(|i| match caps.get(i) {
            Some(m) => Value::string(m.as_str()),
            None => Value::Null,
        })
        .collect()
}

fn match_(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let re = ev.force_str(&args[0])?;
    let s = ev.force_string(&args[1])?;
    let r = ev.regex(&re, true)?;
    Ok(match r.captures(&s.text) {
        Some(caps) => Value::list(groups(&caps)),
        None => Value::Null,
    })
}

fn split(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let re = ev.force_str(&args[0])?;
    let s = ev.force_string(&args[1])?;
    let r = ev.regex(&re, false)?;
    let mut out = Vec::new();
    let mut last = 0;
    for caps in r.captures_iter(&s.text) {
        let whole = match caps.get(0) {
            Some(m) => m,
            None => continue,
        };
        out.push(Value::string(&s.text[last..whole.start()]));
        out.push(Value::list(groups(&caps)));
        last = whole.end();
    }
    out.push(Value::string(&s.text[last..]));
    Ok(Value::list(out))
}
