//! Interned identifiers: attribute names and variable names compare by number.
//!
//! A symbol is a 32-bit number (an attribute is a name, a position and a value in 24 bytes).
//! Each thread interns its own names (texts to numbers); the texts themselves are kept in one
//! process-wide table that only grows, so a symbol's text can be read on any thread, without a
//! lock.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

use rustc_hash::FxHasher;

/// An interned name: a number. Equality is by number (each text is interned once per thread);
/// ordering is by the name's text (Nix sorts attribute sets by name).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Symbol(NonZeroU32);

// An optional symbol takes no more room than a symbol.
const _: () = assert!(std::mem::size_of::<Option<Symbol>>() == 4);

#[derive(Default)]
struct Interner {
    names: HashMap<&'static str, Symbol, BuildHasherDefault<FxHasher>>,
}

/// A hash map keyed by symbols (hashing their numbers with FxHash: lowering resolves every
/// variable through such maps).
pub type SymbolMap<V> = HashMap<Symbol, V, BuildHasherDefault<FxHasher>>;

thread_local! {
    static INTERNER: RefCell<Interner> = RefCell::new(Interner::default());
}

/// The smallest chunk of the text table holds `2^FIRST_CHUNK_BITS` texts; each next one twice
/// as many, so that chunks never move and `CHUNKS` of them hold every number below `u32::MAX`.
const FIRST_CHUNK_BITS: u32 = 5;
const CHUNKS: usize = 33 - FIRST_CHUNK_BITS as usize;

/// The process's symbol texts: chunk `k` holds texts `2^(k+5) - 32 .. 2^(k+6) - 32`; each entry
/// points to a leaked `String` once its symbol exists. Appended under `APPEND`, read without it.
static CHUNK_TABLE: [AtomicPtr<AtomicPtr<String>>; CHUNKS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];

/// How many texts the table holds (appends take this lock).
static APPEND: Mutex<u32> = Mutex::new(0);

/// Which chunk and which entry in it hold text number `index` (from 0).
#[inline(always)]
fn slot_of(index: u32) -> (usize, usize) {
    let v = index as u64 + (1 << FIRST_CHUNK_BITS);
    let top = 63 - v.leading_zeros();
    let chunk = (top - FIRST_CHUNK_BITS) as usize;
    (chunk, (v - (1 << top)) as usize)
}

/// Appends `text` to the table; its number (from 0).
#[allow(unsafe_code)] // Chunks are leaked arrays of atomics, written before they are published.
fn append(text: &'static String) -> u32 {
    // A poisoned lock means a panic between reading and bumping the count: the count is
    // still right (it is bumped last).
    let mut len = APPEND.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let index = *len;
    if index == u32::MAX {
        panic!("more than 4 billion distinct names");
    }
    let (chunk, entry) = slot_of(index);
    let mut entries = CHUNK_TABLE[chunk].load(Ordering::Acquire);
    if entries.is_null() {
        let size = 1usize << (chunk as u32 + FIRST_CHUNK_BITS);
        let fresh: Box<[AtomicPtr<String>]> = (0..size).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect();
        entries = Box::leak(fresh).as_mut_ptr();
        CHUNK_TABLE[chunk].store(entries, Ordering::Release);
    }
    // SAFETY: `entry` is within the chunk (`slot_of`), which lives for the rest of the process.
    unsafe { &*entries.add(entry) }.store(text as *const String as *mut String, Ordering::Release);
    *len = index + 1;
    index
}

impl Symbol {
    /// Interns `name`. Names live for the rest of the process, as in Nix's symbol table.
    pub fn new(name: &str) -> Symbol {
        INTERNER.with(|i| {
            let mut i = i.borrow_mut();
            if let Some(symbol) = i.names.get(name) {
                return *symbol;
            }
            let leaked: &'static String = Box::leak(Box::new(name.to_owned()));
            let index = append(leaked);
            // `index + 1` cannot wrap: `append` stops before `u32::MAX`.
            let symbol = Symbol(NonZeroU32::MIN.saturating_add(index));
            i.names.insert(leaked.as_str(), symbol);
            symbol
        })
    }

    /// The name's text.
    #[inline]
    #[allow(unsafe_code)]
    pub fn as_str(self) -> &'static str {
        let (chunk, entry) = slot_of(self.0.get() - 1);
        let entries = CHUNK_TABLE[chunk].load(Ordering::Acquire);
        // SAFETY: a symbol exists only after its text was stored in its entry (`Symbol::new`),
        // and moving the symbol to another thread orders that store before this load; chunks
        // and texts are never freed.
        unsafe { &*(*entries.add(entry)).load(Ordering::Acquire) }
    }
}

impl PartialOrd for Symbol {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Symbol {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self == other {
            return std::cmp::Ordering::Equal;
        }
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_tile_the_numbers() {
        assert_eq!(slot_of(0), (0, 0));
        assert_eq!(slot_of(31), (0, 31));
        assert_eq!(slot_of(32), (1, 0));
        assert_eq!(slot_of(95), (1, 63));
        assert_eq!(slot_of(96), (2, 0));
        assert_eq!(slot_of(u32::MAX - 1).0, CHUNKS - 1);
    }

    #[test]
    fn names_intern_once_and_read_back_on_any_thread() {
        let names: Vec<String> = (0..5000).map(|i| format!("name{i}")).collect();
        let symbols: Vec<Symbol> = names.iter().map(|n| Symbol::new(n)).collect();
        assert_eq!(Symbol::new("name42"), symbols[42]);
        assert!(symbols[1] < symbols[2] && Symbol::new("a") < Symbol::new("b"));
        let read = std::thread::spawn(move || symbols.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>());
        assert_eq!(read.join().expect("the reader ends"), names);
    }
}
