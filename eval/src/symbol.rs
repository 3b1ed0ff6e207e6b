//! Interned identifiers: attribute names and variable names compare by number.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;

/// An interned name: one pointer (attribute entries and variable references hold many).
/// Equality is by address (each text is interned once); ordering is by the name's text (Nix
/// sorts attribute sets by name).
#[derive(Clone, Copy)]
pub struct Symbol(&'static String);

#[derive(Default)]
struct Interner {
    names: HashMap<&'static str, &'static String, BuildHasherDefault<FxHasher>>,
}

/// A hash map keyed by symbols (hashing their addresses with FxHash: lowering resolves every
/// variable through such maps).
pub type SymbolMap<V> = HashMap<Symbol, V, BuildHasherDefault<FxHasher>>;

impl PartialEq for Symbol {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Symbol {}

impl std::hash::Hash for Symbol {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.0 as *const String as usize).hash(state)
    }
}

thread_local! {
    static INTERNER: RefCell<Interner> = RefCell::new(Interner::default());
}

impl Symbol {
    /// Interns `name`. Names live for the rest of the process, as in Nix's symbol table.
    pub fn new(name: &str) -> Symbol {
        INTERNER.with(|i| {
            let mut i = i.borrow_mut();
            if let Some(text) = i.names.get(name) {
                return Symbol(text);
            }
            let leaked: &'static String = Box::leak(Box::new(name.to_owned()));
            i.names.insert(&**leaked, leaked);
            Symbol(leaked)
        })
    }

    /// The name's text.
    #[inline]
    pub fn as_str(self) -> &'static str {
        self.0
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
