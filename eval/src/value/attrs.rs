//! Attribute sets: one allocation holding a 4-byte reference count, the number of attributes and
//! the attributes themselves, sorted by name, behind a one-pointer handle.
//!
//! As `ValueRc<Vec<Attr>>` a set took two allocations: a 32-byte box (count, vector) and the
//! vector's buffer, often with room to spare. Sets are built once and never changed; `//` and
//! the builtins that make sets build new ones.

use std::alloc::{alloc, dealloc, handle_alloc_error, realloc, Layout};
use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::NonNull;

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

/// The header of a set; its attributes follow it in the same allocation.
#[repr(C)]
struct Header {
    count: Cell<u32>,
    len: u32,
}

// The attributes start right after the header, aligned for an `Attr`.
const _: () = assert!(std::mem::size_of::<Header>() % std::mem::align_of::<Attr>() == 0);

/// The layout of a set of `len` attributes.
fn layout(len: usize) -> Layout {
    // Cannot overflow: `len` fits in 32 bits, and 2^32 attributes of 32 bytes fit in `isize`.
    Layout::from_size_align(
        std::mem::size_of::<Header>() + len * std::mem::size_of::<Attr>(),
        std::mem::align_of::<Header>().max(std::mem::align_of::<Attr>()),
    )
    .expect("a set's layout is valid")
}

/// An attribute set: attributes sorted by name, shared (cloning increments a 4-byte count).
pub struct Attrs {
    ptr: NonNull<Header>,
    /// Owns a set; neither `Send` nor `Sync` (the count is a plain cell).
    _owns: PhantomData<Header>,
}

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
        Attrs::from_iter_sorted(entries.len(), entries)
    }

    /// Builds a set from at most `len` attributes sorted by name without duplicates (an
    /// iterator that yields fewer gives a smaller set).
    #[allow(unsafe_code)] // Writes the header and attributes into fresh memory of their layout.
    fn from_iter_sorted(len: usize, entries: impl IntoIterator<Item = Attr>) -> Attrs {
        if u32::try_from(len).is_err() {
            panic!("a set of {len} attributes");
        }
        let full = layout(len);
        // SAFETY: the layout is not zero-sized (the header); the header is written with the
        // number of attributes actually written, which are all initialised, before the pointer
        // escapes; a shorter run is shrunk to its size with the layout it was allocated with.
        unsafe {
            let mut raw = alloc(full).cast::<Header>();
            if raw.is_null() {
                handle_alloc_error(full);
            }
            let first = raw.add(1).cast::<Attr>();
            let mut written = 0;
            for attr in entries.into_iter().take(len) {
                first.add(written).write(attr);
                written += 1;
            }
            if written < len {
                let shrunk = layout(written);
                raw = realloc(raw.cast(), full, shrunk.size()).cast::<Header>();
                if raw.is_null() {
                    handle_alloc_error(shrunk);
                }
            }
            raw.write(Header { count: Cell::new(1), len: written as u32 });
            Attrs { ptr: NonNull::new_unchecked(raw), _owns: PhantomData }
        }
    }

    #[inline(always)]
    fn header(&self) -> &Header {
        // SAFETY: a handle keeps its set alive.
        #[allow(unsafe_code)]
        unsafe {
            self.ptr.as_ref()
        }
    }

    /// The attributes in name order, as a slice.
    #[inline(always)]
    #[allow(unsafe_code)]
    pub fn as_slice(&self) -> &[Attr] {
        // SAFETY: `len` initialised attributes follow the header, alive while a handle is.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(1).cast::<Attr>(), self.header().len as usize) }
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
        self.header().len as usize
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `self // other`: both sorted, so a merge (counted first, so that the result is
    /// allocated at its size).
    pub fn update(&self, other: &Attrs) -> Attrs {
        let (a, b) = (self.as_slice(), other.as_slice());
        let len = Merge::new(a, b).count();
        Attrs::from_iter_sorted(len, Merge::new(a, b).cloned())
    }

    /// Consumes the set into its attributes (moved out when this was the only handle).
    #[allow(unsafe_code)]
    pub fn into_entries(self) -> Vec<Attr> {
        if self.header().count.get() > 1 {
            return self.as_slice().to_vec();
        }
        let this = std::mem::ManuallyDrop::new(self);
        let len = this.len();
        // SAFETY: this is the only handle: the attributes are moved out once, and the memory
        // freed without dropping them again.
        unsafe {
            let first = this.ptr.as_ptr().add(1).cast::<Attr>();
            let out = (0..len).map(|i| first.add(i).read()).collect();
            dealloc(this.ptr.as_ptr().cast(), layout(len));
            out
        }
    }

    /// The set's address, which identifies it while it lives.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Whether two handles name the same set.
    #[inline]
    pub fn ptr_eq(a: &Attrs, b: &Attrs) -> bool {
        a.ptr == b.ptr
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

impl Clone for Attrs {
    #[inline(always)]
    fn clone(&self) -> Attrs {
        let count = &self.header().count;
        let n = count.get().wrapping_add(1);
        if n == 0 {
            // 2^32 handles of one set: 32 GiB of them first.
            std::process::abort();
        }
        count.set(n);
        Attrs { ptr: self.ptr, _owns: PhantomData }
    }
}

impl Drop for Attrs {
    #[inline]
    fn drop(&mut self) {
        let count = &self.header().count;
        let n = count.get() - 1;
        count.set(n);
        if n == 0 {
            release(self.ptr);
        }
    }
}

/// Drops the attributes of a set whose last handle went, and frees it.
#[inline(never)]
#[allow(unsafe_code)]
fn release(ptr: NonNull<Header>) {
    // SAFETY: no handle is left: each attribute is dropped once, then the memory freed.
    unsafe {
        let len = ptr.as_ref().len as usize;
        let first = ptr.as_ptr().add(1).cast::<Attr>();
        std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(first, len));
        dealloc(ptr.as_ptr().cast(), layout(len));
    }
}

impl std::fmt::Debug for Attrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
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
