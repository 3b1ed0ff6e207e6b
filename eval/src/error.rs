//! Evaluation errors: a message, where it happened, and the trace of what was being evaluated.

use std::collections::HashSet;
use std::fmt;

use crate::source::Pos;

/// What kind of error; decides whether `builtins.tryEval` catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `throw` (caught by `tryEval`).
    Throw,
    /// A failed `assert` (caught by `tryEval`).
    Assert,
    /// `abort`.
    Abort,
    /// A value of the wrong type.
    Type,
    /// A syntax error.
    Parse,
    /// A variable or attribute that does not exist.
    Missing,
    /// A thunk that needs its own value.
    InfiniteRecursion,
    /// Too deep a recursion.
    StackOverflow,
    /// Reading a file or directory failed.
    Io,
    /// Anything else (overflow, division by zero, bad arguments...).
    Other,
}

/// The most trace frames an error keeps (deep recursion keeps the innermost ones).
const MAX_FRAMES: usize = 10_000;

/// One frame of an error's trace (`… while evaluating ...`).
#[derive(Debug, Clone)]
pub struct TraceFrame {
    /// Where.
    pub pos: Option<Pos>,
    /// What was being done.
    pub message: String,
    /// Shown even past the frames shown without `--show-trace` (`builtins.addErrorContext`).
    pub always: bool,
}

/// An evaluation error. Boxed: every evaluation step returns a `Result`, and a one-word error
/// keeps `EvalResult<Value>` at two words (a 100-byte error made every call and `?` move more).
#[derive(Debug, Clone)]
pub struct EvalError(Box<ErrorData>);

/// What an [`EvalError`] holds (reached through it by `Deref`).
#[derive(Debug, Clone)]
pub struct ErrorData {
    /// The kind.
    pub kind: ErrorKind,
    /// The message (`undefined variable 'x'`).
    pub message: String,
    /// Where it happened, if known.
    pub pos: Option<Pos>,
    /// What was being evaluated, innermost first.
    pub trace: Vec<TraceFrame>,
    /// Names the user may have meant (`Did you mean ...?`).
    pub suggestions: Vec<String>,
}

impl std::ops::Deref for EvalError {
    type Target = ErrorData;

    fn deref(&self) -> &ErrorData {
        &self.0
    }
}

impl std::ops::DerefMut for EvalError {
    fn deref_mut(&mut self) -> &mut ErrorData {
        &mut self.0
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EvalError {}

impl EvalError {
    /// A new error without position.
    #[cold]
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> EvalError {
        EvalError(Box::new(ErrorData { kind, message: message.into(), pos: None, trace: Vec::new(), suggestions: Vec::new() }))
    }

    /// A new error of kind [`ErrorKind::Other`].
    pub fn other(message: impl Into<String>) -> EvalError {
        EvalError::new(ErrorKind::Other, message)
    }

    /// A new type error.
    pub fn type_error(message: impl Into<String>) -> EvalError {
        EvalError::new(ErrorKind::Type, message)
    }

    /// Sets the position if none is set yet.
    pub fn at(mut self, pos: &Pos) -> EvalError {
        if self.pos.is_none() {
            self.pos = Some(*pos);
        }
        self
    }

    /// Adds a trace frame.
    pub fn with_frame(mut self, pos: Option<&Pos>, message: impl Into<String>) -> EvalError {
        if self.trace.len() < MAX_FRAMES {
            self.trace.push(TraceFrame { pos: pos.cloned(), message: message.into(), always: false });
        }
        self
    }

    /// Adds a frame shown even when the others are cut short (`builtins.addErrorContext`).
    pub fn with_context(mut self, message: impl Into<String>) -> EvalError {
        if self.trace.len() < MAX_FRAMES {
            self.trace.push(TraceFrame { pos: None, message: message.into(), always: true });
        }
        self
    }

    /// Sets the suggestions (`Did you mean ...?`).
    pub fn with_suggestions(mut self, suggestions: Vec<String>) -> EvalError {
        self.suggestions = suggestions;
        self
    }

    /// Whether `builtins.tryEval` catches this error.
    pub fn is_catchable(&self) -> bool {
        matches!(self.kind, ErrorKind::Throw | ErrorKind::Assert)
    }

    /// Renders the error as Nix 2.26's `showErrorInfo`: `error:`, the trace frames outermost
    /// first (frames seen before are skipped, a run of more than 5 of them summarised as
    /// `(N duplicate frames omitted)`; without `show_trace` only the first two with a position,
    /// then `(stack trace truncated; ...)`), the message, its position with the code frame and
    /// the suggestions, every line after the first indented by 7 and without trailing blanks.
    pub fn render(&self, show_trace: bool) -> String {
        let mut oss = String::new();
        if self.trace.iter().any(|f| !f.message.is_empty()) {
            let mut seen: HashSet<(Option<(String, u32)>, &str)> = HashSet::new();
            let mut skipped: Vec<&TraceFrame> = Vec::new();
            let mut count = 0usize;
            let mut truncate = false;
            for frame in self.trace.iter().rev() {
                if frame.message.is_empty() {
                    continue;
                }
                if !show_trace && count > 3 {
                    truncate = true;
                }
                if truncate && !frame.always {
                    continue;
                }
                let key = (
                    frame.pos.as_ref().map(|p| {
                        let (source, offset) = p.source_and_offset();
                        (source.name(), offset)
                    }),
                    frame.message.as_str(),
                );
                if seen.contains(&key) {
                    skipped.push(frame);
                    continue;
                }
                seen.insert(key);
                push_skipped(&mut oss, &mut count, &mut skipped, &mut seen);
                count += 1;
                push_trace(&mut oss, &mut count, frame);
            }
            push_skipped(&mut oss, &mut count, &mut skipped, &mut seen);
            if truncate {
                oss.push_str("\n(stack trace truncated; use '--show-trace' to show the full, detailed trace)\n");
            }
            oss.push_str("\nerror: ");
        }
        oss.push_str(&self.message);
        oss.push('\n');
        if let Some(pos) = &self.pos {
            push_position(&mut oss, "", pos);
        }
        if !self.suggestions.is_empty() {
            let _ = fmt::Write::write_fmt(&mut oss, format_args!("Did you mean {}?\n", show_suggestions(&self.suggestions)));
        }
        indent("error: ", oss.trim_end_matches([' ', '\n', '\r', '\t']))
    }
}

/// A frame: `… what`, and where with its code frame; a frame with a position counts twice
/// towards the limit of frames shown without `--show-trace`, as in Nix.
fn push_trace(oss: &mut String, count: &mut usize, frame: &TraceFrame) {
    oss.push_str("\n… ");
    oss.push_str(&frame.message);
    oss.push('\n');
    if let Some(pos) = &frame.pos {
        push_position(oss, "  ", pos);
        *count += 1;
    }
}

/// Frames skipped as seen before: shown when they are few, else counted.
fn push_skipped<'a>(
    oss: &mut String,
    count: &mut usize,
    skipped: &mut Vec<&'a TraceFrame>,
    seen: &mut HashSet<(Option<(String, u32)>, &'a str)>,
) {
    if skipped.is_empty() {
        return;
    }
    if skipped.len() <= 5 {
        for frame in skipped.iter() {
            push_trace(oss, count, frame);
        }
    } else {
        let _ = fmt::Write::write_fmt(oss, format_args!("\n({} duplicate frames omitted)\n", skipped.len()));
        seen.clear();
    }
    skipped.clear();
}

/// Nix's `indent`: `first` before the first line, as many blanks before the others, trailing
/// blanks removed from each.
fn indent(first: &str, text: &str) -> String {
    let rest = " ".repeat(first.len());
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let prefix = if i == 0 { first } else { rest.as_str() };
        out.push_str(format!("{prefix}{line}").trim_end_matches([' ', '\t', '\r']));
    }
    out
}

/// `a`, or `one of a, b or c`.
fn show_suggestions(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("one of {} or {last}", init.join(", ")),
    }
}

/// Appends `at FILE:L:C:` (after `indent`) and the code frame, then a newline: as Nix's
/// `printCodeLines`, the line before the error's, its own with a caret under the column, and
/// the one after, each numbered.
fn push_position(out: &mut String, indent: &str, pos: &Pos) {
    let (line, col) = pos.line_col();
    let _ = fmt::Write::write_fmt(out, format_args!("{indent}at {pos}:"));
    let source = &*pos.source();
    let Some(text) = code_line(source, line) else { return };
    if let Some(prev) = line.checked_sub(1).filter(|l| *l > 0).and_then(|l| code_line(source, l)) {
        let _ = fmt::Write::write_fmt(out, format_args!("\n {:>5}| {prev}", line - 1));
    }
    let _ = fmt::Write::write_fmt(out, format_args!("\n {line:>5}| {text}"));
    if col > 0 {
        let caret_pad: String = " ".repeat(col as usize);
        let _ = fmt::Write::write_fmt(out, format_args!("\n      |{caret_pad}^"));
    }
    if let Some(next) = code_line(source, line + 1) {
        let _ = fmt::Write::write_fmt(out, format_args!("\n {:>5}| {next}", line + 1));
    }
    out.push('\n');
}

/// A line of source as Nix shows it in a code frame (without its line ending).
fn code_line(source: &crate::source::Source, line: u32) -> Option<&str> {
    source.line_text(line).map(|t| t.strip_suffix('\r').unwrap_or(t))
}

/// The names among `candidates` closest to `name` (Nix's `Suggestions::bestMatches` trimmed
/// to 5 within an edit distance of 2), best first.
pub fn suggestions<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = candidates.map(|c| (levenshtein(name.as_bytes(), c.as_bytes()), c)).collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().take_while(|(d, _)| *d <= 2).take(5).map(|(_, c)| c.to_string()).collect()
}

fn levenshtein(a: &[u8], b: &[u8]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = if ca == cb { prev[j] } else { prev[j] + 1 };
            cur[j + 1] = (prev[j + 1] + 1).min(cur[j] + 1).min(substitution);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Shorthand for results of evaluation.
pub type EvalResult<T> = Result<T, EvalError>;

// The error stays one word, so that the evaluator's results stay two.
const _: () = assert!(std::mem::size_of::<EvalResult<crate::value::Value>>() <= 16);
