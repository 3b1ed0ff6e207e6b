//! Regular expressions: `match` and `split`, with the semantics of Nix's (libstdc++'s POSIX
//! extended `std::regex`), run with `regex-automata`:
//! - bytes, not characters: `.` or `[^a]` match one byte, a non-ASCII literal is its UTF-8
//!   bytes (so `é+` repeats its last byte, as in Nix);
//! - `split` finds leftmost-longest matches (`a|ab` on "ab" matches "ab"); the groups are those
//!   of the highest-priority way to match exactly that span;
//! - `split` allows an empty match right after a non-empty one, as `std::regex_iterator` does.

use regex_automata::meta::{self, Regex};
use regex_automata::util::captures::Captures;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind};

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

/// Size limit of one compiled expression (hostile patterns get an error, not the memory).
const SIZE_LIMIT: usize = 16 << 20;

/// A compiled regular expression.
#[derive(Clone)]
pub struct Compiled {
    /// `(?:RE)$`, searched anchored: the groups of a match of a known span.
    whole: Regex,
    /// For `split`: RE unanchored (where the next match starts) and RE with "all" semantics
    /// (how far the longest match from a start reaches).
    search: Option<(Regex, Regex)>,
}

/// The characters a backslash makes literal in a POSIX extended expression (libstdc++ rejects
/// any other escape: `\]`, `\}`, Perl's `\d`, `\w`, `\b`, `\n` and back-references included).
const ERE_ESCAPABLE: &[u8] = b".[{()\\*+?^$|";

/// Pushes byte `b` to a pattern of the `regex-automata` syntax as a literal (`\xHH`).
fn push_byte(out: &mut String, b: u8) {
    out.push_str(&format!("\\x{b:02X}"));
}

/// Translates a POSIX extended regular expression (as libstdc++ reads it for Nix) into the
/// syntax of `regex-automata` in byte mode: non-ASCII characters become their UTF-8 bytes (so
/// `é+` repeats its last byte, as in Nix), a backslash inside brackets is literal, `[` in
/// brackets is literal unless it opens a class like `[:digit:]`, and escapes other than of
/// special characters, or a group starting with `?`, are errors as in Nix. `None`: invalid.
fn translate(re: &str) -> Option<String> {
    let bytes = re.as_bytes();
    let mut out = String::with_capacity(re.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\\' => {
                let next = *bytes.get(i + 1)?;
                if !ERE_ESCAPABLE.contains(&next) {
                    return None;
                }
                push_byte(&mut out, next);
                i += 2;
            }
            b'(' if bytes.get(i + 1) == Some(&b'?') => return None,
            b'[' => {
                out.push('[');
                i += 1;
                if bytes.get(i) == Some(&b'^') {
                    out.push('^');
                    i += 1;
                }
                // A `]` right after the opening is a literal.
                if bytes.get(i) == Some(&b']') {
                    push_byte(&mut out, b']');
                    i += 1;
                }
                loop {
                    let c = *bytes.get(i)?;
                    match c {
                        b']' => {
                            out.push(']');
                            i += 1;
                            break;
                        }
                        b'[' if matches!(bytes.get(i + 1), Some(b':' | b'.' | b'=')) => {
                            // `[:name:]` (character classes); `[.x.]` and `[=x=]` are not supported.
                            if bytes[i + 1] != b':' {
                                return None;
                            }
                            let close = re[i + 2..].find(":]")? + i + 2;
                            out.push_str(&re[i..close + 2]);
                            i = close + 2;
                        }
                        c if c == b'-' || c.is_ascii_alphanumeric() => {
                            out.push(c as char);
                            i += 1;
                        }
                        c => {
                            push_byte(&mut out, c);
                            i += 1;
                        }
                    }
                }
            }
            b if b.is_ascii() => {
                out.push(b as char);
                i += 1;
            }
            b => {
                push_byte(&mut out, b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Compiles `pattern`; a prefilter (literal scanning) only for the unanchored search, where it
/// pays: building one costs more than an anchored search of a short span.
fn build(pattern: &str, kind: MatchKind, prefilter: bool) -> Result<Regex, Box<meta::BuildError>> {
    Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false).dot_matches_new_line(true))
        // No full DFA or one-pass DFA: building them costs more than most patterns are used for
        // (nixpkgs makes many small patterns); the lazy DFA and the NFA engines remain.
        .configure(Regex::config().match_kind(kind).utf8_empty(false).nfa_size_limit(Some(SIZE_LIMIT)).dfa(false).onepass(false).auto_prefilter(prefilter))
        .build(pattern)
        .map_err(Box::new)
}

impl Evaluator {
    /// Compiles (or reuses) a regular expression, for `split` when `searching`.
    fn regex(&mut self, re: &str, searching: bool) -> EvalResult<Compiled> {
        let key = format!("{}{re}", if searching { 'S' } else { 'M' });
        if let Some(r) = self.regex_cache.get(&key) {
            return Ok(r.clone());
        }
        let invalid = |_| EvalError::other(format!("invalid regular expression '{re}'"));
        let pattern = translate(re).ok_or_else(|| EvalError::other(format!("invalid regular expression '{re}'")))?;
        let whole = build(&format!("(?:{pattern})$"), MatchKind::LeftmostFirst, false).map_err(invalid)?;
        let search = if searching {
            Some((
                build(&pattern, MatchKind::LeftmostFirst, true).map_err(invalid)?,
                build(&pattern, MatchKind::All, false).map_err(invalid)?,
            ))
        } else {
            None
        };
        let compiled = Compiled { whole, search };
        if self.regex_cache.len() >= CACHE_LIMIT {
            self.regex_cache.clear();
        }
        self.regex_cache.insert(key, compiled.clone());
        Ok(compiled)
    }
}

/// The groups of `caps` (not the whole match) as Nix values: strings, or null when unset.
fn groups(caps: &Captures, hay: &[u8]) -> Vec<Value> {
    (1..caps.group_len())
        .map(|i| match caps.get_group(i) {
            Some(span) => Value::string(String::from_utf8_lossy(&hay[span.range()])),
            None => Value::Null,
        })
        .collect()
}

/// The groups of the highest-priority match of exactly `hay[start..end]`.
fn groups_of_span(whole: &Regex, hay: &[u8], start: usize, end: usize) -> Vec<Value> {
    let mut caps = whole.create_captures();
    let input = Input::new(&hay[..end]).range(start..end).anchored(Anchored::Yes);
    whole.search_captures(&input, &mut caps);
    groups(&caps, hay)
}

fn match_(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let re = ev.force_str(&args[0])?;
    let s = ev.force_string(&args[1])?;
    let r = ev.regex(&re, false)?;
    let hay = s.text.as_bytes();
    let mut caps = r.whole.create_captures();
    r.whole.search_captures(&Input::new(hay).anchored(Anchored::Yes), &mut caps);
    Ok(if caps.is_match() { Value::list(groups(&caps, hay)) } else { Value::Null })
}

fn split(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let re = ev.force_str(&args[0])?;
    let s = ev.force_string(&args[1])?;
    let r = ev.regex(&re, true)?;
    let Some((first, longest)) = &r.search else {
        return Err(EvalError::other(format!("invalid regular expression '{re}'")));
    };
    let hay = s.text.as_bytes();
    let piece = |range: std::ops::Range<usize>| Value::string(String::from_utf8_lossy(&hay[range]));
    let mut out = Vec::new();
    // `last`: where the text not yet matched starts; `from`: where the next search starts.
    let (mut last, mut from) = (0, 0);
    while from <= hay.len() {
        let Some(found) = first.search(&Input::new(hay).range(from..)) else { break };
        let start = found.start();
        let end = longest
            .search(&Input::new(hay).range(start..).anchored(Anchored::Yes))
            .map_or(found.end(), |m| m.end().max(found.end()));
        out.push(piece(last..start));
        out.push(Value::list(groups_of_span(&r.whole, hay, start, end)));
        last = end;
        // After an empty match the next one starts further on; after a non-empty one it may be
        // an empty match right there.
        from = if end == start { end + 1 } else { end };
    }
    out.push(piece(last..hay.len()));
    Ok(Value::list(out))
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn posix_syntax_becomes_byte_syntax() {
        assert_eq!(translate("é+").as_deref(), Some("\\xC3\\xA9+"));
        assert_eq!(translate("a\\.b[]\\d-]").as_deref(), Some("a\\x2Eb[\\x5D\\x5Cd-]"));
        assert_eq!(translate("[^[:digit:]x]").as_deref(), Some("[^[:digit:]x]"));
        for bad in ["\\d", "(?i)a", "a\\", "[ab", "(a)\\1"] {
            assert_eq!(translate(bad), None, "{bad}");
        }
    }
}
