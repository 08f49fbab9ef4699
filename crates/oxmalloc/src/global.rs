//! `OxMalloc`: the global heap as Rust's `#[global_allocator]`, and the
//! pointer-only entry points the C library builds on.

use crate::heap::{self, global};
use crate::size_class::{self, class_size};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

/// The oxmalloc global allocator.
///
/// ```
/// #[global_allocator]
/// static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;
///
/// let v: Vec<u64> = (0..1000).collect();
/// assert_eq!(v.iter().sum::<u64>(), 499_500);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct OxMalloc;

// SAFETY: every pointer returned satisfies its layout and is unique until
// freed; `dealloc` recomputes the same class from the same layout.
unsafe impl GlobalAlloc for OxMalloc {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        heap::alloc(layout.size(), layout.align())
    }

    #[inline(always)]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        let c = size_class::class_for(layout.size(), layout.align());
        if c != 0 {
            // SAFETY: `p` was allocated with this layout, so it is an object of
            // class `c` (realloc keeps the class when it resizes in place).
            unsafe { heap::dealloc_small(p, c) };
        } else {
            // SAFETY: a live large allocation (caller).
            unsafe { heap::free(p) };
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        alloc_zeroed(layout.size(), layout.align())
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        // The layout gives a small object's class; a large one's span is in
        // the pagemap.
        let (c, s) = match size_class::class_for(layout.size(), align) {
            0 => heap::owned(p, "realloc"),
            c => (c, ptr::null_mut()),
        };
        // SAFETY: `p` is live with this layout (caller), so with class `c`
        // or span `s`.
        unsafe { heap::realloc(p, c, s, layout.size(), new_size, align) }
    }
}

/// Allocates zero-filled memory; spans known to be zero (fresh from the OS,
/// or released with a zeroing policy) are not cleared again.
pub fn alloc_zeroed(size: usize, align: usize) -> *mut u8 {
    if size_class::class_for(size, align) == 0 {
        let (p, zeroed) = global().alloc_large(size, align);
        if !p.is_null() && !zeroed {
            // SAFETY: a fresh allocation of at least `size` bytes.
            unsafe { ptr::write_bytes(p, 0, size) };
        }
        return p;
    }
    let p = heap::alloc(size, align);
    if !p.is_null() {
        // SAFETY: a fresh allocation of at least `size` bytes.
        unsafe { ptr::write_bytes(p, 0, size) };
    }
    p
}

/// The untyped interface the C library is built on: pointers without layouts,
/// found through the pagemap.
pub mod raw {
    use super::*;

    /// `malloc`: at least `size` bytes, 16-aligned from 16 bytes up; null when
    /// memory ran out. `malloc(0)` returns a unique pointer.
    #[inline(always)]
    pub fn malloc(size: usize) -> *mut u8 {
        heap::alloc(size, 1)
    }

    /// At least `size` bytes aligned to `align` (a power of two).
    #[inline]
    pub fn aligned(size: usize, align: usize) -> *mut u8 {
        heap::alloc(size, align.max(1))
    }

    /// Zero-filled memory (calloc without the overflow check).
    pub fn zeroed(size: usize, align: usize) -> *mut u8 {
        alloc_zeroed(size, align.max(1))
    }

    /// `free`: any pointer oxmalloc returned, or null. `errno` is kept. A
    /// pointer oxmalloc does not own stops the program with a message naming
    /// it.
    ///
    /// # Safety
    /// `p` is null or a live allocation of oxmalloc's.
    #[inline(always)]
    pub unsafe fn free(p: *mut u8) {
        // SAFETY: forwarded.
        unsafe { heap::free(p) }
    }

    /// Bytes usable at `p`, or `None` if oxmalloc did not hand out `p`.
    pub fn usable_size(p: *const u8) -> Option<usize> {
        heap::usable_size(p)
    }

    /// `realloc` for a non-null `p` and non-zero `new_size`: in place when the
    /// class or span still fits, else moved. Null (with `p` untouched) when
    /// memory ran out.
    ///
    /// # Safety
    /// `p` is a live allocation of oxmalloc's.
    pub unsafe fn realloc(p: *mut u8, new_size: usize) -> *mut u8 {
        let (c, s) = heap::owned(p, "realloc");
        let old = if c != 0 {
            class_size(c)
        } else {
            // SAFETY: `owned` returns valid span records.
            unsafe { (*s).bytes() }
        };
        // SAFETY: `p` is live (caller) with class `c` / span `s`; malloc-style
        // calls allocate with alignment 1, which picks the same classes.
        unsafe { heap::realloc(p, c, s, old, new_size, 1) }
    }
}
