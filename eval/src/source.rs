//! Source files and positions in them, printed as Nix prints them (`FILE:LINE:COL`).

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroU32;
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
    /// Its number in this thread's table of sources (what a [`Pos`] holds).
    id: NonZeroU32,
}

thread_local! {
    /// Every source made on this thread, by number (from 1). Positions name their source by
    /// number, so that they are two integers: copied without reference counting, and an
    /// attribute with its position takes 32 bytes, not 40. Sources live as long as the thread
    /// (an evaluation keeps the sources of its imports for its lifetime anyway).
    static SOURCES: RefCell<Vec<Rc<Source>>> = const { RefCell::new(Vec::new()) };
}

impl Source {
    /// Wraps a text (and enters it in this thread's table of sources).
    pub fn new(origin: Origin, text: String) -> Rc<Source> {
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i as u32 + 1);
            }
        }
        // More than 4 billion sources on one thread: the last number is reused (positions in
        // the newest sources would name the wrong one; nothing evaluates that much). While the
        // thread ends (its table is gone), a source gets that number too.
        let next = SOURCES.try_with(|table| table.borrow().len() + 1).unwrap_or(usize::MAX);
        let id = u32::try_from(next).ok().and_then(NonZeroU32::new).unwrap_or(NonZeroU32::MAX);
        let source = Rc::new(Source { origin, text, line_starts, id });
        // Fails only while the thread ends (the number is then already the last one).
        let _ = SOURCES.try_with(|table| table.borrow_mut().push(source.clone()));
        source
    }

    /// The position at byte `offset` of this source.
    pub fn pos(&self, offset: u32) -> Pos {
        Pos { source_id: self.id, offset, not_send: PhantomData }
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

/// A position: a byte offset into a source, which is named by its number on this thread (a
/// position is not sent to other threads).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    source_id: NonZeroU32,
    /// The byte offset.
    pub offset: u32,
    not_send: PhantomData<*const ()>,
}

impl Pos {
    /// The source (an empty one if the number is unknown on this thread, which cannot happen
    /// for positions made by this thread's sources).
    pub fn source(&self) -> Rc<Source> {
        let found = SOURCES.try_with(|table| table.borrow().get(self.source_id.get() as usize - 1).cloned());
        found.ok().flatten().unwrap_or_else(|| Source::new(Origin::String, String::new()))
    }

    /// Line and column, 1-based.
    pub fn line_col(&self) -> (u32, u32) {
        self.source().line_col(self.offset)
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = self.source();
        let (l, c) = source.line_col(self.offset);
        write!(f, "{}:{}:{}", source.name(), l, c)
    }
}

impl fmt::Debug for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
