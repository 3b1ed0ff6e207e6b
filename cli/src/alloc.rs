//! The global allocator: mimalloc, called through its plain entry points.
//!
//! The evaluator allocates and frees millions of small objects (environments, thunks,
//! closures); glibc's malloc and free took about a quarter of its instructions. The `mimalloc`
//! crate's allocator calls `mi_malloc_aligned` for every allocation, whose alignment checks cost
//! about 4% of an evaluation; almost every Rust allocation needs no more than the 8-byte alignment
//! every mimalloc block has, and those go to `mi_malloc` directly.
#![allow(unsafe_code)] // A `GlobalAlloc` cannot be implemented without it; each call only forwards.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// Every mimalloc block is aligned to 8 bytes (its size classes are multiples of the word).
const PLAIN_ALIGN: usize = 8;

/// mimalloc as the global allocator.
pub struct MiMalloc;

// SAFETY: each function forwards to the mimalloc function with the same contract; a layout
// whose alignment exceeds what a plain block guarantees goes to the aligned variant.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            mi::mi_malloc(layout.size()) as *mut u8
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            mi::mi_zalloc(layout.size()) as *mut u8
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr as *mut c_void)
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" {
        /// The size mimalloc gave a block (in the static library; the `-sys` crate exposes it
        /// only with its `extended` feature).
        fn mi_usable_size(p: *const c_void) -> usize;
    }

    #[test]
    fn small_blocks_come_in_word_steps() {
        // `.cargo/config.toml` builds mimalloc with `MI_MAX_ALIGN_SIZE=8`; without it a 24-byte
        // block (a thunk) would take 32.
        for size in [8, 24, 40, 56] {
            // SAFETY: a block is allocated, measured and freed; nothing else touches it.
            let usable = unsafe {
                let p = mi::mi_malloc(size);
                assert!(!p.is_null());
                let usable = mi_usable_size(p);
                mi::mi_free(p);
                usable
            };
            assert_eq!(usable, size, "a {size}-byte block: mimalloc was built without -DMI_MAX_ALIGN_SIZE=8 (.cargo/config.toml; a CFLAGS set in the environment replaces it)");
        }
    }

    #[test]
    fn larger_alignments_are_honoured() {
        let layout = Layout::from_size_align(24, 16).expect("a valid layout");
        // SAFETY: allocated and freed with the same layout.
        unsafe {
            let p = MiMalloc.alloc(layout);
            assert!(!p.is_null() && p as usize % 16 == 0);
            MiMalloc.dealloc(p, layout);
        }
    }
}
