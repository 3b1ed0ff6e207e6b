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
