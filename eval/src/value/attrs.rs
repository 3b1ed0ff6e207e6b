//! Attribute sets: attributes sorted by name in one shared allocation ([`SharedSlice`]).
//! Sets are built once and never changed; `//` and the builtins that make sets build new ones.

use super::shared_slice::SharedSlice;
use super::Value;
use crate::source::Pos;
use crate::symbol::Symbol;

/// One attribute.
#[derive(Debug, Clone)]
pub struct Attr {
    /// Its name.
    pub name: Symbol,
    /// Its value.
    pub value: Value,
    /// Where it was defined, if known.
    pub pos: Option<Pos>,
}

// An attribute is a name, a position and a value in three words.
const _: () = assert!(std::mem::size_of::<Attr>() == 24);

/// An attribute set: attributes sorted by name, shared (cloning increments a 4-byte count).
#[derive(Clone, Debug)]
pub struct Attrs(SharedSlice<Attr>);

impl Attrs {
    /// The empty set.
    pub fn new() -> Attrs {
        Attrs::from_iter_sorted(0, std::iter::empty())
    }

    /// Builds a set from attributes in any order; a later duplicate replaces an earlier one.
    pub fn from_unsorted(mut entries: Vec<Attr>) -> Attrs {
        entries.sort_by_key(|a| a.name);
        entries.dedup_by(|later, earlier| {
            if later.name == earlier.name {
                std::mem::swap(later, earlier);
                true
            } else {
                false
            }
        });
        Attrs::from_sorted(entries)
    }

    /// Builds a set from attributes already sorted by name without duplicates.
    pub fn from_sorted(entries: Vec<Attr>) -> Attrs {
        debug_assert!(entries.windows(2).all(|w| w[0].name < w[1].name));
        Attrs(SharedSlice::from_vec(entries))
    }

    /// Builds a set from at most `len` attributes sorted by name without duplicates (an
    /// iterator that yields fewer gives a smaller set).
    fn from_iter_sorted(len: usize, entries: impl IntoIterator<Item = Attr>) -> Attrs {
        Attrs(SharedSlice::from_iter_len(len, entries))
    }

    /// The attributes in name order, as a slice.
    #[inline(always)]
    pub fn as_slice(&self) -> &[Attr] {
        &self.0
    }

    /// Looks up an attribute.
    pub fn get(&self, name: Symbol) -> Option<&Value> {
        self.get_attr(name).map(|a| &a.value)
    }

    /// Looks up an attribute with its position.
    pub fn get_attr(&self, name: Symbol) -> Option<&Attr> {
        let entries = self.as_slice();
        // Small sets: comparing interned names by address beats comparing texts (a binary
        // search compares texts at every probe).
        if entries.len() <= 16 {
            return entries.iter().find(|a| a.name == name);
        }
        entries.binary_search_by(|a| a.name.cmp(&name)).ok().and_then(|i| entries.get(i))
    }

    /// Looks up an attribute by text.
    pub fn get_str(&self, name: &str) -> Option<&Value> {
        self.get(Symbol::new(name))
    }

    /// The attributes in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Attr> {
        self.as_slice().iter()
    }

    /// How many attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `self // other`: both sorted, so a merge (counted first, so that the result is
    /// allocated at its size).
    pub fn update(&self, other: &Attrs) -> Attrs {
        let (a, b) = (self.as_slice(), other.as_slice());
        let len = Merge::new(a, b).count();
        Attrs::from_iter_sorted(len, Merge::new(a, b).cloned())
    }

    /// Consumes the set into its attributes (moved out when this was the only handle).
    pub fn into_entries(self) -> Vec<Attr> {
        self.0.into_vec()
    }

    /// The set's address, which identifies it while it lives.
    pub fn addr(&self) -> usize {
        self.0.addr()
    }

    /// How many handles name this set.
    pub fn strong_count(this: &Attrs) -> usize {
        SharedSlice::strong_count(&this.0)
    }

    /// Whether two handles name the same set.
    #[inline]
    pub fn ptr_eq(a: &Attrs, b: &Attrs) -> bool {
        SharedSlice::ptr_eq(&a.0, &b.0)
    }
}

/// The attributes of `a // b` in name order (`b`'s where both have one).
struct Merge<'a> {
    a: &'a [Attr],
    b: &'a [Attr],
}

impl<'a> Merge<'a> {
    fn new(a: &'a [Attr], b: &'a [Attr]) -> Merge<'a> {
        Merge { a, b }
    }
}

impl<'a> Iterator for Merge<'a> {
    type Item = &'a Attr;

    fn next(&mut self) -> Option<&'a Attr> {
        match (self.a.split_first(), self.b.split_first()) {
            (Some((x, a_rest)), Some((y, b_rest))) => match x.name.cmp(&y.name) {
                std::cmp::Ordering::Less => {
                    self.a = a_rest;
                    Some(x)
                }
                std::cmp::Ordering::Greater => {
                    self.b = b_rest;
                    Some(y)
                }
                std::cmp::Ordering::Equal => {
                    self.a = a_rest;
                    self.b = b_rest;
                    Some(y)
                }
            },
            (Some((x, a_rest)), None) => {
                self.a = a_rest;
                Some(x)
            }
            (None, Some((y, b_rest))) => {
                self.b = b_rest;
                Some(y)
            }
            (None, None) => None,
        }
    }
}

impl Default for Attrs {
    fn default() -> Attrs {
        Attrs::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{NixString, ValueRc};

    fn attr(name: &str, i: i64) -> Attr {
        Attr { name: Symbol::new(name), value: Value::Int(i), pos: None }
    }

    fn summary(a: &Attrs) -> Vec<(String, i64)> {
        a.iter()
            .map(|x| match x.value {
                Value::Int(i) => (x.name.to_string(), i),
                _ => (x.name.to_string(), -1),
            })
            .collect()
    }

    #[test]
    fn sets_are_sorted_and_later_duplicates_win() {
        let a = Attrs::from_unsorted(vec![attr("b", 1), attr("a", 2), attr("b", 3)]);
        assert_eq!(summary(&a), [("a".into(), 2), ("b".into(), 3)]);
        assert!(matches!(a.get(Symbol::new("b")), Some(Value::Int(3))));
        assert!(a.get_str("c").is_none());
        assert!(Attrs::new().is_empty() && Attrs::default().len() == 0);
    }

    #[test]
    fn update_merges_with_the_right_side_winning() {
        let a = Attrs::from_unsorted(vec![attr("a", 1), attr("c", 1), attr("e", 1)]);
        let b = Attrs::from_unsorted(vec![attr("b", 2), attr("c", 2), attr("f", 2)]);
        let m = a.update(&b);
        assert_eq!(
            summary(&m),
            [("a".into(), 1), ("b".into(), 2), ("c".into(), 2), ("e".into(), 1), ("f".into(), 2)]
        );
        assert_eq!(a.update(&Attrs::new()).len(), 3);
        assert_eq!(Attrs::new().update(&b).len(), 3);
        // Large sets are searched by bisection.
        let big = Attrs::from_unsorted((0..40).map(|i| attr(&format!("k{i:02}"), i)).collect());
        assert!(matches!(big.get_str("k33"), Some(Value::Int(33))));
        assert!(big.get_str("k40").is_none());
    }

    #[test]
    fn handles_share_and_the_last_one_drops_the_values() {
        let s = ValueRc::new(NixString::plain("w"));
        let a = Attrs::from_sorted(vec![Attr { name: Symbol::new("s"), value: Value::String(s.clone()), pos: None }]);
        let b = a.clone();
        assert!(Attrs::ptr_eq(&a, &b) && a.addr() == b.addr());
        // Shared: the entries are copied out.
        let copied = b.into_entries();
        assert_eq!(ValueRc::strong_count(&s), 3);
        drop(copied);
        // Only handle: moved out, nothing copied or dropped twice.
        let moved = a.into_entries();
        assert_eq!(ValueRc::strong_count(&s), 2);
        drop(moved);
        assert_eq!(ValueRc::strong_count(&s), 1);
        let c = Attrs::from_sorted(vec![Attr { name: Symbol::new("s"), value: Value::String(s.clone()), pos: None }]);
        drop(c);
        assert_eq!(ValueRc::strong_count(&s), 1);
    }

    #[test]
    fn a_short_iterator_gives_a_smaller_set() {
        let a = Attrs::from_iter_sorted(5, vec![attr("a", 1), attr("b", 2)]);
        assert_eq!(a.len(), 2);
        assert!(matches!(a.get_str("b"), Some(Value::Int(2))));
    }
}
