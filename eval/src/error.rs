//! Evaluation errors: a message, where it happened, and the trace of what was being evaluated.

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

/// One frame of an error's trace (`… while evaluating ...`).
#[derive(Debug, Clone)]
pub struct TraceFrame {
    /// Where.
    pub pos: Option<Pos>,
    /// What was being done.
    pub message: String,
}

/// An evaluation error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    /// The kind.
    pub kind: ErrorKind,
    /// The message (`undefined variable 'x'`).
    pub message: String,
    /// Where it happened, if known.
    pub pos: Option<Pos>,
    /// What was being evaluated, innermost first.
    pub trace: Vec<TraceFrame>,
}

impl EvalError {
    /// A new error without position.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> EvalError {
        EvalError { kind, message: message.into(), pos: None, trace: Vec::new() }
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
            self.pos = Some(pos.clone());
        }
        self
    }

    /// Adds a trace frame.
    pub fn with_frame(mut self, pos: Option<&Pos>, message: impl Into<String>) -> EvalError {
        if self.trace.len() < 64 {
            self.trace.push(TraceFrame { pos: pos.cloned(), message: message.into() });
        }
        self
    }

    /// Whether `builtins.tryEval` catches this error.
    pub fn is_catchable(&self) -> bool {
        matches!(self.kind, ErrorKind::Throw | ErrorKind::Assert)
    }

    /// Renders the error as Nix prints it (`error: ...`, position and code frame) after its
    /// trace frames (outermost first). Which frames exist depends on `--show-trace`
    /// ([`crate::EvalOptions::show_trace`]), as in Nix.
    pub fn render(&self, show_trace: bool) -> String {
        chomp_lines(&self.render_unchomped(show_trace))
    }

    fn render_unchomped(&self, show_trace: bool) -> String {
        let mut out = String::from("error:");
        let _ = show_trace;
        let frames: Vec<&TraceFrame> = self.trace.iter().rev().collect();
        if frames.is_empty() {
            out.push(' ');
            out.push_str(&indent_message(&self.message));
            if let Some(pos) = &self.pos {
                out.push('\n');
                push_position(&mut out, pos);
            }
            return out;
        }
        for frame in frames {
            out.push_str("\n       … ");
            out.push_str(&frame.message);
            if let Some(pos) = &frame.pos {
                out.push('\n');
                out.push_str("  ");
                push_position(&mut out, pos);
            }
            out.push('\n');
        }
        out.push_str("\n       error: ");
        out.push_str(&indent_message(&self.message));
        if let Some(pos) = &self.pos {
            out.push('\n');
            push_position(&mut out, pos);
        }
        out
    }
}

fn indent_message(message: &str) -> String {
    message.replace('\n', "\n       ")
}

/// Appends `       at FILE:L:C:` and the code frame: as Nix's `printCodeLines`, the line before
/// the error's, its own with a caret under the column, and the one after, each numbered.
fn push_position(out: &mut String, pos: &Pos) {
    let (line, col) = pos.line_col();
    out.push_str(&format!("       at {pos}:"));
    let source = &pos.source;
    let Some(text) = code_line(source, line) else { return };
    if let Some(prev) = line.checked_sub(1).filter(|l| *l > 0).and_then(|l| code_line(source, l)) {
        let _ = fmt::Write::write_fmt(out, format_args!("\n{:>13}| {prev}", line - 1));
    }
    let _ = fmt::Write::write_fmt(out, format_args!("\n{line:>13}| {text}"));
    if col > 0 {
        let caret_pad: String = " ".repeat(col.saturating_sub(1) as usize);
        let _ = fmt::Write::write_fmt(out, format_args!("\n{:>13}| {caret_pad}^", ""));
    }
    if let Some(next) = code_line(source, line + 1) {
        let _ = fmt::Write::write_fmt(out, format_args!("\n{:>13}| {next}", line + 1));
    }
}

/// A line of source as Nix shows it in a code frame (without its line ending).
fn code_line(source: &crate::source::Source, line: u32) -> Option<&str> {
    source.line_text(line).map(|t| t.strip_suffix('\r').unwrap_or(t))
}

/// Nix indents every line of a message with `chomp`: trailing blanks go (an empty code line
/// is shown as `   N|`).
fn chomp_lines(text: &str) -> String {
    text.split('\n').map(|l| l.trim_end_matches([' ', '\t', '\r'])).collect::<Vec<_>>().join("\n")
}

/// Shorthand for results of evaluation.
pub type EvalResult<T> = Result<T, EvalError>;
