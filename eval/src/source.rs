//! Source files and positions in them, printed as Nix prints them (`FILE:LINE:COL`).

use std::fmt;
use std::rc::Rc;

/// Where a piece of source came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file on disk.
    File(String),
    /// `--expr` or a string given to the evaluator (`«string»`).
    String,
    /// Standard input (`«stdin»`).
    Stdin,
}

/// One parsed source text with its line starts.
#[derive(Debug)]
pub struct Source {
    /// Where it came from.
    pub origin: Origin,
    /// The text.
    pub text: String,
    line_starts: Vec<u32>,
}

impl Source {
    /// Wraps a text.
    pub fn new(origin: Origin, text: String) -> Rc<Source> {
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i as u32 + 1);
            }
        }
        Rc::new(Source { origin, text, line_starts })
    }

    /// The 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: u32) -> (u32, u32) {
        let line = match self.line_starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let col = self
            .text
            .get(start as usize..offset as usize)
            .map(|s| s.chars().count() as u32)
            .unwrap_or(offset - start);
        (line as u32 + 1, col + 1)
    }

    /// The text of a 1-based line, without its newline.
    pub fn line_text(&self, line: u32) -> Option<&str> {
        let start = *self.line_starts.get(line.checked_sub(1)? as usize)? as usize;
        let rest = self.text.get(start..)?;
        Some(rest.split('\n').next().unwrap_or(""))
    }

    /// The name Nix prints for this source.
    pub fn name(&self) -> String {
        match &self.origin {
            Origin::File(p) => p.clone(),
            Origin::String => "«string»".into(),
            Origin::Stdin => "«stdin»".into(),
        }
    }
}

/// A position: a byte offset into a source.
#[derive(Clone)]
pub struct Pos {
    /// The source.
    pub source: Rc<Source>,
    /// The byte offset.
    pub offset: u32,
}

impl Pos {
    /// Line and column, 1-based.
    pub fn line_col(&self) -> (u32, u32) {
        self.source.line_col(self.offset)
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (l, c) = self.line_col();
        write!(f, "{}:{}:{}", self.source.name(), l, c)
    }
}

impl fmt::Debug for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
