//! A shared, immutable slice in one allocation: a 4-byte reference count, a 4-byte length and
//! the elements, behind a one-pointer handle. Attribute sets and lists are built once and never
//! changed, so they need neither a vector's capacity nor a separate box for the count
//! (`ValueRc<Vec<T>>` took a 32-byte box plus the vector's buffer, often with room to spare).

use std::alloc::{alloc, dealloc, handle_alloc_error, realloc, Layout};
use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

/// The header; the elements follow it in the same allocation.
#[repr(C)]
struct Header {
    count: Cell<u32>,
    len: u32,
}

/// A shared slice of `T` (cloning increments a 4-byte count).
pub struct SharedSlice<T> {
    ptr: NonNull<Header>,
    /// Owns `T`s; neither `Send` nor `Sync` (the count is a plain cell).
    _owns: PhantomData<T>,
}

/// The layout of a slice of `len` elements, and the offset of its first element.
fn layout<T>(len: usize) -> (Layout, usize) {
    // Cannot fail for the sizes built here: `len` fits in 32 bits and the elements are small.
    Layout::new::<Header>()
        .extend(Layout::array::<T>(len).expect("a slice's layout is valid"))
        .expect("a slice's layout is valid")
}

impl<T> SharedSlice<T> {
    /// A slice of at most `len` elements taken from `items` (an iterator that yields fewer
    /// gives a shorter slice).
    #[allow(unsafe_code)] // Writes the header and elements into fresh memory of their layout.
    pub fn from_iter_len(len: usize, items: impl IntoIterator<Item = T>) -> SharedSlice<T> {
        if u32::try_from(len).is_err() {
            panic!("a slice of {len} elements");
        }
        let (full, offset) = layout::<T>(len);
        // SAFETY: the layout is not zero-sized (the header); the header records how many
        // elements were written, all initialised, before the pointer escapes; a shorter run is
        // shrunk to its size with the layout it was allocated with.
        unsafe {
            let mut raw = alloc(full);
            if raw.is_null() {
                handle_alloc_error(full);
            }
            let first = raw.add(offset).cast::<T>();
            let mut written = 0;
            for item in items.into_iter().take(len) {
                first.add(written).write(item);
                written += 1;
            }
            if written < len {
                let (shrunk, _) = layout::<T>(written);
                raw = realloc(raw, full, shrunk.size());
                if raw.is_null() {
                    handle_alloc_error(shrunk);
                }
            }
            let header = raw.cast::<Header>();
            header.write(Header { count: Cell::new(1), len: written as u32 });
            SharedSlice { ptr: NonNull::new_unchecked(header), _owns: PhantomData }
        }
    }

    /// The elements of `items`, moved.
    pub fn from_vec(items: Vec<T>) -> SharedSlice<T> {
        SharedSlice::from_iter_len(items.len(), items)
    }

    #[inline(always)]
    fn header(&self) -> &Header {
        // SAFETY: a handle keeps its allocation alive.
        #[allow(unsafe_code)]
        unsafe {
            self.ptr.as_ref()
        }
    }

    #[inline(always)]
    fn first(&self) -> *mut T {
        // SAFETY (of the arithmetic): the elements start `offset` bytes into the allocation.
        #[allow(unsafe_code)]
        unsafe {
            self.ptr.as_ptr().cast::<u8>().add(layout::<T>(0).1).cast::<T>()
        }
    }

    /// The elements as a vector: moved out when this is the only handle, cloned otherwise.
    #[allow(unsafe_code)]
    pub fn into_vec(self) -> Vec<T>
    where
        T: Clone,
    {
        if self.header().count.get() > 1 {
            return self.to_vec();
        }
        let this = std::mem::ManuallyDrop::new(self);
        let len = this.len();
        let first = this.first();
        // SAFETY: this is the only handle: the elements are moved out once, and the memory
        // freed without dropping them again.
        unsafe {
            let out = (0..len).map(|i| first.add(i).read()).collect();
            dealloc(this.ptr.as_ptr().cast(), layout::<T>(len).0);
            out
        }
    }

    /// Whether two handles name the same slice.
    #[inline]
    pub fn ptr_eq(a: &SharedSlice<T>, b: &SharedSlice<T>) -> bool {
        a.ptr == b.ptr
    }

    /// The slice's address, which identifies it while it lives.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// How many handles name this slice.
    pub fn strong_count(this: &SharedSlice<T>) -> usize {
        this.header().count.get() as usize
    }
}

impl<T> Deref for SharedSlice<T> {
    type Target = [T];
    #[inline(always)]
    #[allow(unsafe_code)]
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialised elements follow the header, alive while a handle is.
        unsafe { std::slice::from_raw_parts(self.first(), self.header().len as usize) }
    }
}

impl<T> Clone for SharedSlice<T> {
    #[inline(always)]
    fn clone(&self) -> SharedSlice<T> {
        super::rc::increment_count(&self.header().count);
        SharedSlice { ptr: self.ptr, _owns: PhantomData }
    }
}

impl<T> Drop for SharedSlice<T> {
    #[inline]
    fn drop(&mut self) {
        let count = &self.header().count;
        let n = count.get() - 1;
        count.set(n);
        if n == 0 {
            release::<T>(self.ptr);
        }
    }
}

/// Drops the elements of a slice whose last handle went, and frees it.
#[inline(never)]
#[allow(unsafe_code)]
fn release<T>(ptr: NonNull<Header>) {
    // SAFETY: no handle is left: each element is dropped once, then the memory freed.
    unsafe {
        let len = ptr.as_ref().len as usize;
        let (layout, offset) = layout::<T>(len);
        let first = ptr.as_ptr().cast::<u8>().add(offset).cast::<T>();
        std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(first, len));
        dealloc(ptr.as_ptr().cast(), layout);
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for SharedSlice<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn elements_are_shared_moved_and_dropped_once() {
        let w = Rc::new(());
        let s = SharedSlice::from_vec(vec![w.clone(), w.clone()]);
        assert_eq!((s.len(), Rc::strong_count(&w)), (2, 3));
        let t = s.clone();
        assert!(SharedSlice::ptr_eq(&s, &t) && s.addr() == t.addr());
        assert_eq!(SharedSlice::strong_count(&s), 2);
        let copied = t.into_vec();
        assert_eq!(Rc::strong_count(&w), 5);
        drop(copied);
        let moved = s.into_vec();
        assert_eq!(Rc::strong_count(&w), 3);
        drop(moved);
        assert_eq!(Rc::strong_count(&w), 1);
        drop(SharedSlice::from_vec(vec![w.clone()]));
        assert_eq!(Rc::strong_count(&w), 1);
    }

    #[test]
    fn empty_and_short_slices() {
        let e: SharedSlice<u64> = SharedSlice::from_vec(Vec::new());
        assert!(e.is_empty());
        let s = SharedSlice::from_iter_len(5, [1u64, 2]);
        assert_eq!(&*s, &[1, 2]);
    }
}
