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
    /// Where its offset 0 lies in this thread's space of positions (what a [`Pos`] counts in).
    base: u32,
}

thread_local! {
    /// Every source made on this thread, in the order made, with ascending bases. The sources
    /// lie one after another in one space of positions (each with one spare position past its
    /// end), so that a position is one integer: copied without reference counting, and an
    /// attribute with its name, value and position takes 24 bytes. Sources live as long as the
    /// thread (an evaluation keeps the sources of its imports for its lifetime anyway).
    static SOURCES: RefCell<Vec<Rc<Source>>> = const { RefCell::new(Vec::new()) };
    /// The base the next source gets (position 0 is not used: a position is never zero).
    static NEXT_BASE: std::cell::Cell<u32> = const { std::cell::Cell::new(1) };
    /// What a position outside every source of this thread names: an empty text, made once.
    static UNKNOWN: Rc<Source> = Rc::new(Source::unregistered_empty());
}

/// The base of a source with no range of positions (sources beyond 4 GiB of text in all on
/// one thread, or made while the thread ends; nothing evaluates that much): its positions are
/// all `u32::MAX`, which names no source.
const OVERFLOW_BASE: u32 = 0;

/// The source positions outside every source name (an empty one).
fn unknown_source() -> Rc<Source> {
    UNKNOWN.try_with(Rc::clone).unwrap_or_else(|_| Rc::new(Source::unregistered_empty()))
}

impl Source {
    /// An empty text with no range of positions, entered in no table.
    fn unregistered_empty() -> Source {
        Source { origin: Origin::String, text: String::new(), line_starts: vec![0], base: OVERFLOW_BASE }
    }

    /// Wraps a text (and enters it in this thread's table of sources).
    pub fn new(origin: Origin, text: String) -> Rc<Source> {
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i as u32 + 1);
            }
        }
        // Its positions are `base ..= base + len`. When the space is spent (4 GiB of source on
        // one thread) or the thread ends, the source gets no range: its positions are printed
        // as the start of an empty string.
        let len = u32::try_from(text.len()).ok();
        let base = NEXT_BASE
            .try_with(|next| {
                let base = next.get();
                let end = len.and_then(|l| base.checked_add(l)).and_then(|e| e.checked_add(1));
                // `u32::MAX` stays unused: it stands for "no source".
                let end = end.filter(|e| *e < u32::MAX)?;
                next.set(end);
                Some(base)
            })
            .ok()
            .flatten()
            .unwrap_or(OVERFLOW_BASE);
        let source = Rc::new(Source { origin, text, line_starts, base });
        if base != OVERFLOW_BASE {
            // Cannot fail: the base was just taken from this thread's table.
            let _ = SOURCES.try_with(|table| table.borrow_mut().push(source.clone()));
        }
        source
    }

    /// The position at byte `offset` of this source (offsets past the end count as the end).
    pub fn pos(&self, offset: u32) -> Pos {
        let offset = offset.min(self.text.len() as u32);
        let global = if self.base == OVERFLOW_BASE { None } else { NonZeroU32::new(self.base + offset) };
        Pos { global: global.unwrap_or(NonZeroU32::MAX), not_send: PhantomData }
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

/// A position: a point in the space where this thread's sources lie one after another (a
/// position is not sent to other threads), so one integer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    global: NonZeroU32,
    not_send: PhantomData<*const ()>,
}

impl Pos {
    /// The source and the byte offset into it (an empty source if the position is not in any
    /// source of this thread, which cannot happen for positions made by this thread's sources
    /// within the space's 4 GiB).
    pub fn source_and_offset(&self) -> (Rc<Source>, u32) {
        let global = self.global.get();
        let found = SOURCES.try_with(|table| {
            if global == u32::MAX {
                return None;
            }
            let table = table.borrow();
            let i = table.partition_point(|s| s.base <= global).checked_sub(1)?;
            let source = table.get(i)?;
            let offset = global - source.base;
            (offset as usize <= source.text.len()).then(|| (source.clone(), offset))
        });
        found.ok().flatten().unwrap_or_else(|| (unknown_source(), 0))
    }

    /// The source.
    pub fn source(&self) -> Rc<Source> {
        self.source_and_offset().0
    }

    /// The byte offset into the source.
    pub fn offset(&self) -> u32 {
        self.source_and_offset().1
    }

    /// Line and column, 1-based.
    pub fn line_col(&self) -> (u32, u32) {
        let (source, offset) = self.source_and_offset();
        source.line_col(offset)
    }
}

// An optional position takes no more room than a position.
const _: () = assert!(std::mem::size_of::<Option<Pos>>() == 4);

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (source, offset) = self.source_and_offset();
        let (l, c) = source.line_col(offset);
        write!(f, "{}:{}:{}", source.name(), l, c)
    }
}

impl fmt::Debug for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_find_their_source_and_offset() {
        let a = Source::new(Origin::File("/a.nix".into()), "let\n  x = 1;\nin x".into());
        let b = Source::new(Origin::String, "{ }".into());
        let in_a = a.pos(8);
        let (source, offset) = in_a.source_and_offset();
        assert!(Rc::ptr_eq(&source, &a) && offset == 8);
        assert_eq!(in_a.line_col(), (2, 5));
        assert_eq!(in_a.to_string(), "/a.nix:2:5");
        // The end of a source is a position of it, not the start of the next.
        let end_of_a = a.pos(a.text.len() as u32);
        assert!(Rc::ptr_eq(&end_of_a.source(), &a));
        assert!(Rc::ptr_eq(&b.pos(0).source(), &b) && b.pos(0).offset() == 0);
        // Offsets past the end count as the end.
        assert!(a.pos(1000) == end_of_a);
        assert!(a.pos(3) != b.pos(3));
    }
}
