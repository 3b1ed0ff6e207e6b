//! [`ValueRc`]: the shared box of strings, paths, closures and builtin applications (and of
//! expression nodes' constants): a 4-byte reference count and no weak count.
//!
//! Written here rather than taken from a crate so that releasing the last reference is an
//! out-of-line call: the common cases of cloning and dropping (a count up or down) stay small
//! enough to be inlined into `Value`'s own clone and drop, which most of the evaluator calls.

use std::alloc::{dealloc, Layout};
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

/// The allocation: the count, then the value.
#[repr(C)]
struct Inner<T> {
    count: Cell<u32>,
    value: T,
}

/// A shared, immutable value with a 4-byte reference count (one pointer).
pub struct ValueRc<T> {
    ptr: NonNull<Inner<T>>,
    /// Owns a `T`; neither `Send` nor `Sync` (the count is a plain cell).
    _owns: PhantomData<Inner<T>>,
}

impl<T> ValueRc<T> {
    /// Shares `value`.
    pub fn new(value: T) -> ValueRc<T> {
        let boxed = Box::new(Inner { count: Cell::new(1), value });
        ValueRc { ptr: NonNull::from(Box::leak(boxed)), _owns: PhantomData }
    }

    #[inline(always)]
    fn inner(&self) -> &Inner<T> {
        // SAFETY: a handle keeps its allocation alive.
        #[allow(unsafe_code)]
        unsafe {
            self.ptr.as_ref()
        }
    }

    /// Whether two handles name the same value.
    #[inline]
    pub fn ptr_eq(a: &ValueRc<T>, b: &ValueRc<T>) -> bool {
        a.ptr == b.ptr
    }

    /// How many handles name this value.
    pub fn strong_count(this: &ValueRc<T>) -> usize {
        this.inner().count.get() as usize
    }
}

impl<T> Deref for ValueRc<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

/// Adds one to a 4-byte reference count (of any of the evaluator's counted handles: values,
/// thunks, sets, lists, environments); a count that would wrap aborts, as `std::rc::Rc` does
/// (it would take 2^32 handles, 32 GiB of them).
#[inline(always)]
pub(crate) fn increment_count(count: &Cell<u32>) {
    let n = count.get().wrapping_add(1);
    if n == 0 {
        std::process::abort();
    }
    count.set(n);
}

impl<T> Clone for ValueRc<T> {
    #[inline(always)]
    fn clone(&self) -> ValueRc<T> {
        increment_count(&self.inner().count);
        ValueRc { ptr: self.ptr, _owns: PhantomData }
    }
}

impl<T> Drop for ValueRc<T> {
    #[inline(always)]
    fn drop(&mut self) {
        let count = &self.inner().count;
        let n = count.get();
        if n == 1 {
            release(self.ptr);
        } else {
            count.set(n - 1);
        }
    }
}

/// Drops the value whose last handle went, and frees it.
#[inline(never)]
#[allow(unsafe_code)]
fn release<T>(ptr: NonNull<Inner<T>>) {
    // SAFETY: the allocation was made by `Box::new` in `ValueRc::new` and no handle is left:
    // the value is dropped once, then the memory freed with the box's layout.
    unsafe {
        std::ptr::drop_in_place(std::ptr::addr_of_mut!((*ptr.as_ptr()).value));
        dealloc(ptr.as_ptr().cast(), Layout::new::<Inner<T>>());
    }
}

impl<T> From<T> for ValueRc<T> {
    fn from(value: T) -> ValueRc<T> {
        ValueRc::new(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for ValueRc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for ValueRc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: PartialEq> PartialEq for ValueRc<T> {
    fn eq(&self, other: &ValueRc<T>) -> bool {
        **self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn shares_and_drops_once() {
        let w = Rc::new(());
        let a = ValueRc::new(w.clone());
        let b = a.clone();
        assert!(ValueRc::ptr_eq(&a, &b) && ValueRc::strong_count(&a) == 2);
        assert_eq!(Rc::strong_count(&w), 2);
        drop(a);
        assert_eq!((ValueRc::strong_count(&b), Rc::strong_count(&w)), (1, 2));
        drop(b);
        assert_eq!(Rc::strong_count(&w), 1);
        assert_eq!(ValueRc::new(3).to_string(), "3");
        assert!(ValueRc::new("x") == ValueRc::new("x"));
    }

    #[test]
    fn a_box_is_the_value_and_four_bytes_rounded_to_its_alignment() {
        assert_eq!(std::mem::size_of::<Inner<u64>>(), 16);
        assert_eq!(std::mem::size_of::<Inner<u32>>(), 8);
        assert_eq!(std::mem::size_of::<ValueRc<String>>(), 8);
    }
}
