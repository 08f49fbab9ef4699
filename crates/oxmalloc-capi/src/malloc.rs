//! The C and POSIX allocation functions, with glibc's behaviour at the edges
//! (measured on glibc 2.36):
//!
//! - `malloc(0)` returns a unique pointer; `realloc(NULL, n)` is `malloc(n)`;
//!   `realloc(p, 0)` frees `p` and returns null.
//! - Failure returns null with `errno = ENOMEM`; so does a `calloc` or
//!   `reallocarray` whose size overflows, and a `pvalloc` whose rounding does.
//! - `posix_memalign` returns `EINVAL` for an alignment that is not a power of
//!   two or is smaller than `sizeof(void *)` (leaving `errno` alone), and
//!   `ENOMEM` when memory ran out, setting `errno` to `ENOMEM` too (glibc's
//!   `tst-malloc-thread-fail` checks it); success leaves `errno` alone.
//! - `aligned_alloc` and `memalign` round a non-power-of-two alignment up to
//!   the next power of two; an alignment too large to round fails with
//!   `EINVAL`. The size need not be a multiple of the alignment.
//! - `valloc` and `pvalloc` align to the OS page size; `pvalloc` rounds the
//!   size up to whole OS pages.
//! - `free` (and every function that only frees) preserves `errno`.
//! - `malloc_usable_size(NULL)` is 0.
//!
//! Objects of 16 bytes or more are 16-aligned (`max_align_t`).
//!
//! Each function is also exported under gperftools' `tc_*` name
//! (`tc_malloc`, `tc_free`, …, `tc_malloc_size` for `malloc_usable_size`).
//! In gperftools' new mode (`tc_set_new_mode(1)`, see [`crate::tc`]) the
//! functions that allocate call the installed `std::new_handler` on failure
//! and try again, as `operator new` does. The handler must free memory or
//! stop the program: one that throws stops it, as it would with gperftools
//! (glibc's and gperftools' headers declare these functions `noexcept`).

use crate::alias::exports;
use core::ffi::{c_int, c_void};
use core::ptr;
use engine::os::{errno, page_size, set_errno};
use engine::raw;

/// Returns `p`, setting `errno = ENOMEM` when it is null.
#[inline(always)]
fn or_enomem(p: *mut u8) -> *mut c_void {
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p.cast()
}

/// Null with `errno` set to `e`.
#[cold]
fn fail(e: c_int) -> *mut c_void {
    set_errno(e);
    ptr::null_mut()
}

/// `malloc`: at least `size` bytes, or null with `ENOMEM` (one attempt,
/// whatever the new mode).
#[inline(always)]
pub(crate) fn alloc(size: usize) -> *mut c_void {
    or_enomem(raw::malloc(size))
}

/// The result of `attempt`, retried in new mode: see [`retry`]. The closure
/// is moved into the cold path only (the fast path keeps nothing on the
/// stack for it).
#[inline(always)]
fn attempt<F: Fn() -> *mut u8>(attempt: F) -> *mut c_void {
    let p = attempt();
    if p.is_null() {
        return retry(attempt);
    }
    p.cast()
}

/// `malloc`'s slow end: a failed attempt, retried in new mode.
#[cold]
#[inline(never)]
extern "C" fn malloc_failed(size: usize, _align: usize) -> *mut u8 {
    retry(|| raw::malloc(size)).cast()
}

/// After a failed attempt: in new mode, calls the `std::new_handler` and
/// tries again until the attempt succeeds or no handler is left; otherwise
/// (or then) null with `ENOMEM`.
#[cold]
#[inline(never)]
fn retry<F: Fn() -> *mut u8>(attempt: F) -> *mut c_void {
    while crate::tc::new_mode() {
        let Some(handler) = crate::cxx::new_handler() else {
            break;
        };
        // SAFETY: the program's handler; it frees memory, throws or aborts,
        // as the standard asks of it.
        unsafe { handler() };
        let p = attempt();
        if !p.is_null() {
            return p.cast();
        }
    }
    fail(libc::ENOMEM)
}

/// `memalign`'s rule for `align`: `get(align rounded up to a power of two)`,
/// or null with `EINVAL` when it cannot be rounded.
#[inline(always)]
fn with_memalign_alignment(align: usize, get: impl FnOnce(usize) -> *mut c_void) -> *mut c_void {
    match align.checked_next_power_of_two() {
        Some(a) => get(a),
        None => fail(libc::EINVAL),
    }
}

/// `memalign`: at least `size` bytes aligned to `align` rounded up to a power
/// of two; null with `EINVAL` when it cannot be rounded, `ENOMEM` when memory
/// ran out (one attempt, whatever the new mode).
pub(crate) fn alloc_aligned(align: usize, size: usize) -> *mut c_void {
    with_memalign_alignment(align, |a| or_enomem(raw::aligned(size, a)))
}

/// `free`. The engine's free paths keep `errno` as it was.
///
/// # Safety
/// `p` is null or a live allocation of oxmalloc's.
#[inline(always)]
pub(crate) unsafe fn release(p: *mut c_void) {
    // SAFETY: null or a live allocation of oxmalloc's (caller).
    unsafe { raw::free(p.cast()) }
}

/// `realloc` with glibc's edges.
///
/// # Safety
/// `p` is null or a live allocation of oxmalloc's.
unsafe fn resize(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        return attempt(|| raw::malloc(size));
    }
    if size == 0 {
        // SAFETY: forwarded from the caller.
        unsafe { release(p) };
        return ptr::null_mut();
    }
    // SAFETY: `p` is non-null and live (caller); `size` is non-zero; a failed
    // attempt leaves it untouched, so it may be repeated.
    attempt(|| unsafe { raw::realloc(p.cast(), size) })
}

exports! {
    /// `malloc(size)`: at least `size` bytes (a unique pointer for 0), or null
    /// with `errno = ENOMEM`.
    extern "C" [malloc, __libc_malloc, tc_malloc] fn(size: usize) -> *mut c_void {
        raw::malloc_or(size, malloc_failed).cast()
    }
}

exports! {
    /// `free(p)`: frees `p` (nothing for null), keeping `errno`.
    ///
    /// # Safety
    /// `p` is null or a live allocation of oxmalloc's that is not used again.
    unsafe extern "C" [free, __libc_free, cfree, tc_free, tc_cfree] fn(p: *mut c_void) {
        // SAFETY: forwarded from the caller.
        unsafe { release(p) }
    }
}

exports! {
    /// C23 `free_sized(p, size)`: `free(p)` (the hardened build checks
    /// the size).
    ///
    /// # Safety
    /// As for `free`.
    unsafe extern "C" [free_sized, tc_free_sized] fn(p: *mut c_void, size: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { raw::free_sized("free_sized", p.cast(), size, 1) }
    }
}

exports! {
    /// C23 `free_aligned_sized(p, alignment, size)`: `free(p)` (the
    /// hardened build checks the size and alignment).
    ///
    /// # Safety
    /// As for `free`.
    unsafe extern "C" [free_aligned_sized] fn(p: *mut c_void, align: usize, size: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { raw::free_sized("free_aligned_sized", p.cast(), size, align) }
    }
}

exports! {
    /// `calloc(n, size)`: `n * size` zero bytes; null with `ENOMEM` when the
    /// product overflows or memory ran out.
    extern "C" [calloc, __libc_calloc, tc_calloc] fn(n: usize, size: usize) -> *mut c_void {
        match n.checked_mul(size) {
            Some(total) => attempt(|| raw::zeroed(total, 1)),
            None => fail(libc::ENOMEM),
        }
    }
}

exports! {
    /// `realloc(p, size)`: `malloc(size)` for null `p`; frees `p` and returns
    /// null for size 0; else the (possibly moved) block, or null with `ENOMEM`
    /// and `p` untouched.
    ///
    /// # Safety
    /// `p` is null or a live allocation of oxmalloc's.
    unsafe extern "C" [realloc, __libc_realloc, tc_realloc] fn(p: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: forwarded from the caller.
        unsafe { resize(p, size) }
    }
}

exports! {
    /// `reallocarray(p, n, size)`: `realloc(p, n * size)`, or null with
    /// `ENOMEM` (and `p` untouched) when the product overflows.
    ///
    /// # Safety
    /// As for `realloc`.
    unsafe extern "C" [reallocarray] fn(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
        match n.checked_mul(size) {
            // SAFETY: forwarded from the caller.
            Some(total) => unsafe { resize(p, total) },
            None => fail(libc::ENOMEM),
        }
    }
}

exports! {
    /// `posix_memalign(out, alignment, size)`: 0 and `*out` set, `EINVAL` for
    /// an alignment that is not a power of two or is below `sizeof(void *)`,
    /// `ENOMEM` (and `errno = ENOMEM`) when memory ran out.
    ///
    /// # Safety
    /// `out` is valid for writing a pointer.
    unsafe extern "C" [posix_memalign, tc_posix_memalign]
        fn(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
        if !align.is_power_of_two() || align < core::mem::size_of::<*mut c_void>() {
            return libc::EINVAL;
        }
        let e = errno();
        let p = attempt(|| raw::aligned(size, align));
        if p.is_null() {
            set_errno(libc::ENOMEM);
            return libc::ENOMEM;
        }
        set_errno(e);
        // SAFETY: `out` is writable (caller).
        unsafe { *out = p.cast() };
        0
    }
}

exports! {
    /// `aligned_alloc(alignment, size)` and `memalign(alignment, size)`: see
    /// the module docs for non-power-of-two alignments.
    extern "C" [aligned_alloc, memalign, __libc_memalign, tc_memalign]
        fn(align: usize, size: usize) -> *mut c_void {
        with_memalign_alignment(align, |a| attempt(|| raw::aligned(size, a)))
    }
}

exports! {
    /// `valloc(size)`: aligned to the OS page size.
    extern "C" [valloc, __libc_valloc, tc_valloc] fn(size: usize) -> *mut c_void {
        attempt(|| raw::aligned(size, page_size()))
    }
}

exports! {
    /// `pvalloc(size)`: `size` rounded up to whole OS pages, page-aligned; null
    /// with `ENOMEM` when the rounding overflows.
    extern "C" [pvalloc, __libc_pvalloc, tc_pvalloc] fn(size: usize) -> *mut c_void {
        let page = page_size();
        match size.checked_add(page - 1) {
            Some(s) => attempt(|| raw::aligned(s & !(page - 1), page)),
            None => fail(libc::ENOMEM),
        }
    }
}

exports! {
    /// `malloc_usable_size(p)`: the bytes usable at `p`; 0 for null or a
    /// pointer oxmalloc did not hand out.
    extern "C" [malloc_usable_size, tc_malloc_size] fn(p: *mut c_void) -> usize {
        raw::usable_size(p.cast()).unwrap_or(0)
    }
}
