//! Heaps bound to regions: allocation from a heap other than the global one.
//!
//! Only the owner of a heap (through its handle) uses the calling thread's
//! cache of that heap. The global entry points (`free`, `realloc` of a
//! pointer found through the pagemap) never touch those caches: they go to
//! the heap's central lists under its locks. So once nothing holds a handle
//! to a heap, no thread can be inside one of its caches, and retiring the
//! heap may drain them all.

use crate::heap::HeapCore;
use crate::size_class;

/// Allocates from heap `h` without its caches (for the global entry points).
pub(crate) fn alloc_in(h: &'static HeapCore, size: usize, align: usize) -> *mut u8 {
    match size_class::class_for(size, align) {
        0 => h.alloc_large(size, align).0,
        c => h.alloc_uncached(c),
    }
}

/// Frees small object `p` of class `c` of heap `h` without its caches (for
/// the global entry points).
///
/// # Safety
/// `p` is a live object of class `c` of `h`.
pub(crate) unsafe fn free_small(h: &'static HeapCore, p: *mut u8, c: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { h.free_uncached(p, c) }
}
