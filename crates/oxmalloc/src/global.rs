//! The front door: `OxMalloc`, the global heap as Rust's
//! `#[global_allocator]`, and the pointer-only entry points the C library
//! builds on (`raw`). Allocation goes size → class → the calling thread's
//! cache; freeing goes pointer → pagemap → class (or span) → the owning
//! heap, so any pointer finds its owner from any thread.
//!
//! One-time set-up (settings from the environment, fork handlers) runs on the
//! first slow path.

use crate::heap::{self, global, HeapCore};
use crate::os;
use crate::pagemap::{ObjectPage, PAGEMAP};
use crate::size_class::{self, class_size, MAX_SMALL_SIZE, PAGE_SHIFT, PAGE_SIZE};
use crate::span::{Span, SpanState};
use crate::thread_cache;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use core::sync::atomic::{AtomicU8, Ordering};

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
        alloc(layout.size(), layout.align())
    }

    /// Finds the class through the pagemap rather than the layout (the same
    /// cost), so that objects of heaps bound to regions, which may be freed
    /// here too, go back to their own heap.
    #[inline(always)]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        crate::hardened::check_size("dealloc", p, layout.size(), layout.align(), true);
        // SAFETY: a live allocation of oxmalloc's (caller).
        unsafe { free(p) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        alloc_zeroed(layout.size(), layout.align())
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `p` is live with this layout (caller).
        unsafe { raw::realloc_aligned(p, layout.align(), new_size, false) }
    }
}

// SAFETY: as for `GlobalAlloc`: blocks satisfy their layouts and are unique
// until freed.
unsafe impl allocator_api2::alloc::Allocator for OxMalloc {
    #[inline]
    fn allocate(
        &self,
        layout: Layout,
    ) -> Result<ptr::NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        ptr::NonNull::new(alloc(layout.size(), layout.align()))
            .map(|p| ptr::NonNull::slice_from_raw_parts(p, layout.size()))
            .ok_or(allocator_api2::alloc::AllocError)
    }

    #[inline]
    unsafe fn deallocate(&self, p: ptr::NonNull<u8>, layout: Layout) {
        crate::hardened::check_size(
            "deallocate",
            p.as_ptr(),
            layout.size(),
            layout.align(),
            true,
        );
        // SAFETY: a live allocation of oxmalloc's (caller).
        unsafe { free(p.as_ptr()) }
    }

    unsafe fn grow(
        &self,
        p: ptr::NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<ptr::NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.resize(p, old, new) }
    }

    unsafe fn shrink(
        &self,
        p: ptr::NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<ptr::NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.resize(p, old, new) }
    }
}

impl OxMalloc {
    /// `Allocator::grow` and `shrink`: a realloc when the alignment stays,
    /// else a move.
    ///
    /// # Safety
    /// As for `Allocator::grow`.
    unsafe fn resize(
        &self,
        p: ptr::NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<ptr::NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        let q = if new.align() <= old.align() {
            // SAFETY: live with `old` (caller).
            unsafe { raw::realloc_aligned(p.as_ptr(), old.align(), new.size(), false) }
        } else {
            let q = alloc(new.size(), new.align());
            if !q.is_null() {
                // SAFETY: distinct live blocks; then the old one is freed.
                unsafe {
                    ptr::copy_nonoverlapping(p.as_ptr(), q, old.size().min(new.size()));
                    free(p.as_ptr());
                }
            }
            q
        };
        ptr::NonNull::new(q)
            .map(|q| ptr::NonNull::slice_from_raw_parts(q, new.size()))
            .ok_or(allocator_api2::alloc::AllocError)
    }
}

static INIT: AtomicU8 = AtomicU8::new(0);

/// One-time set-up: settings from the environment, fork handlers. Cheap
/// after the first call.
#[inline]
pub(crate) fn init() {
    if INIT.load(Ordering::Acquire) != 2 {
        init_slow();
    }
}

/// Runs once. A call that finds initialisation under way (another thread's,
/// or its own re-entered through a libc call that allocates) goes on without
/// waiting: settings only tune behaviour.
#[cold]
fn init_slow() {
    if INIT
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    crate::fork::register();
    let env = crate::config::read_environment();
    let g = global();
    if let Some(v) = env.release_rate_milli {
        g.settings.set_release_rate_milli(v);
    }
    if let Some(v) = env.max_total_thread_cache {
        g.set_max_total_thread_cache(v);
    }
    if let Some(v) = env.heap_limit {
        g.settings.set_limit(v);
    }
    if let Some(v) = env.aggressive {
        g.settings.set_aggressive(v);
    }
    INIT.store(2, Ordering::Release);
}

/// The class and span of a pointer oxmalloc handed out: `(class, span)` with
/// class non-zero for an object of the global heap's caches, else the span
/// (a large allocation, or a small object of a heap bound to regions). `None`
/// when the pointer is not the start of a live allocation of oxmalloc's: an
/// interior or misaligned pointer into a small object is refused too.
#[inline]
pub(crate) fn lookup(p: *const u8) -> Option<(usize, *mut Span)> {
    let addr = p as usize;
    lookup_entry(PAGEMAP.object_page(addr >> PAGE_SHIFT), addr)
}

/// [`lookup`] of `addr`, whose page's pagemap word `e` was already read.
#[inline]
fn lookup_entry(e: ObjectPage, addr: usize) -> Option<(usize, *mut Span)> {
    let c = e.class();
    if c != 0 {
        // SAFETY: a class recorded in the pagemap is below NUM_CLASSES.
        return unsafe { size_class::is_object_offset(c, e.offset_of(addr)) }
            .then_some((c, ptr::null_mut()));
    }
    lookup_span(addr)
}

/// [`lookup`] for a pointer that is not an object of the global heap's
/// small-object spans.
#[inline(never)]
fn lookup_span(addr: usize) -> Option<(usize, *mut Span)> {
    let page = addr >> PAGE_SHIFT;
    let s = PAGEMAP.get(page);
    if s.is_null() {
        return None;
    }
    // SAFETY: pagemap entries point at span records, which are never unmapped.
    let sp = unsafe { &*s };
    if sp.state != SpanState::InUse || page < sp.start || page >= sp.end_page() {
        return None;
    }
    let ok = if sp.class != 0 {
        // SAFETY: a span's class is below NUM_CLASSES.
        unsafe { size_class::is_object_offset(sp.class as usize, addr - sp.addr()) }
    } else {
        sp.addr() == addr
    };
    ok.then_some((0, s))
}

/// Stops the program: `op` of a pointer oxmalloc did not hand out.
#[cold]
#[inline(never)]
fn not_owned(op: &'static str, addr: usize) -> ! {
    os::fatal(format_args!(
        "{op} of a pointer oxmalloc does not own (address {addr:#x})"
    ))
}

/// [`lookup`] for a pointer the caller promises is live: stops the program
/// with a message naming `op` and the address when oxmalloc did not hand it
/// out.
#[inline]
pub(crate) fn owned(p: *const u8, op: &'static str) -> (usize, *mut Span) {
    match lookup(p) {
        Some(found) => found,
        None => not_owned(op, p as usize),
    }
}

/// Allocates `size` bytes aligned to `align` (a power of two) from the global
/// heap; null when memory ran out.
#[inline(always)]
pub(crate) fn alloc(size: usize, align: usize) -> *mut u8 {
    alloc_or(size, align, null_on_fail)
}

/// What an allocation calls when memory ran out, with the request's size and
/// alignment; its result is the allocation's.
pub type OnFail = extern "C" fn(usize, usize) -> *mut u8;

/// Fails: null.
extern "C" fn null_on_fail(_size: usize, _align: usize) -> *mut u8 {
    ptr::null_mut()
}

/// [`alloc`], calling `on_fail(size, align)` (the C library's new-mode
/// retry) when memory ran out. The fast path passes everything the slow path
/// needs in registers and keeps nothing on the stack.
#[inline(always)]
pub(crate) fn alloc_or(size: usize, align: usize, on_fail: OnFail) -> *mut u8 {
    let c = size_class::class_for(size, align);
    if c != 0 {
        // SAFETY: the calling thread's own cache (or the sentinel); `c` is a
        // valid class.
        let p = unsafe { (*thread_cache::global_cache()).pop(c) };
        if !p.is_null() {
            return p;
        }
        return alloc_small_slow(c, size, align, on_fail);
    }
    alloc_large_or_fail(size, align, on_fail)
}

#[cold]
#[inline(never)]
extern "C" fn alloc_small_slow(c: usize, size: usize, align: usize, on_fail: OnFail) -> *mut u8 {
    init();
    let p = thread_cache::alloc_slow(c, global());
    if p.is_null() {
        return on_fail(size, align);
    }
    p
}

#[inline(never)]
extern "C" fn alloc_large_or_fail(size: usize, align: usize, on_fail: OnFail) -> *mut u8 {
    init();
    let p = global().alloc_large(size, align).0;
    if p.is_null() {
        return on_fail(size, align);
    }
    p
}

/// Frees an object of class `c` (non-zero) of the global heap into the
/// calling thread's cache.
///
/// # Safety
/// `p` is a live object of class `c` of the global heap.
#[inline(always)]
pub(crate) unsafe fn dealloc_small(p: *mut u8, c: usize) {
    crate::hardened::taken_back(p, c);
    // SAFETY: forwarded from the caller; the calling thread's own cache (or
    // the sentinel, which refuses).
    if !unsafe { (*thread_cache::global_cache()).push(p, c) } {
        // SAFETY: forwarded from the caller.
        unsafe { dealloc_small_slow(p, c) };
    }
}

/// # Safety
/// As for [`dealloc_small`].
#[cold]
#[inline(never)]
unsafe fn dealloc_small_slow(p: *mut u8, c: usize) {
    init();
    // SAFETY: forwarded from the caller.
    unsafe { thread_cache::dealloc_slow(p, c, global()) };
}

/// The heap span `s` belongs to.
pub(crate) fn heap_of(s: &Span) -> &'static HeapCore {
    let slot = crate::region::heap_slot(s.region);
    match heap::by_slot(slot) {
        Some(h) => h,
        None => os::fatal(format_args!(
            "span {:#x} belongs to no heap (region {})",
            s.addr(),
            s.region
        )),
    }
}

/// Frees `p`, of class `c` of the global heap (or, for `c == 0`, the
/// allocation of span `s`: a large one, or a small object of a heap bound to
/// regions).
///
/// # Safety
/// `p` is a live allocation with that class or span.
#[inline(always)]
unsafe fn free_known(p: *mut u8, c: usize, s: *mut Span) {
    if c != 0 {
        // SAFETY: a live object of class `c` of the global heap (caller).
        return unsafe { dealloc_small(p, c) };
    }
    // SAFETY: `s` is a valid span record (caller).
    let sp = unsafe { &*s };
    let h = heap_of(sp);
    if sp.class != 0 {
        // SAFETY: a live small object of `h` (caller).
        unsafe { crate::bound_heap::free_small(h, p, sp.class as usize) }
    } else {
        // SAFETY: the in-use large span of `p` (caller).
        unsafe { h.free_large(s) }
    }
}

/// Frees any pointer of oxmalloc's, found through the pagemap. The fast path
/// is an object of the global heap's small-object spans whose offset in its
/// span is a multiple of its class's size (interior and misaligned pointers
/// are refused): into the calling thread's cache.
///
/// # Safety
/// `p` is a live allocation of oxmalloc's (or null).
#[inline(always)]
pub(crate) unsafe fn free(p: *mut u8) {
    let addr = p as usize;
    let e = PAGEMAP.object_page(addr >> PAGE_SHIFT);
    let c = e.class();
    // SAFETY: a class recorded in the pagemap is below NUM_CLASSES.
    if c != 0 && unsafe { size_class::is_object_offset(c, e.offset_of(addr)) } {
        // SAFETY: live (caller), an object of class `c` of the global heap.
        return unsafe { dealloc_small(p, c) };
    }
    // SAFETY: forwarded from the caller.
    unsafe { free_slow(p) }
}

/// [`free`] of null, of a large allocation, of an object of a heap bound to
/// regions; or of a pointer oxmalloc does not own, which stops the program.
/// It reads the page's pagemap word again rather than take it from [`free`]:
/// passing it costs the fast path two instructions.
///
/// # Safety
/// As for [`free`].
#[inline(never)]
unsafe extern "C" fn free_slow(p: *mut u8) {
    if p.is_null() {
        return;
    }
    // An object of a bound heap whose slot the pagemap word names: into the
    // calling thread's cache of that heap, without reading the span.
    let addr = p as usize;
    let e = PAGEMAP.object_page(addr >> PAGE_SHIFT);
    if let Some((slot, c)) = e.bound() {
        // SAFETY: a class recorded in the pagemap is below NUM_CLASSES.
        if unsafe { size_class::is_object_offset(c, e.offset_of(addr)) } {
            if let Some(h) = heap::by_slot(slot) {
                // SAFETY: live (caller), an object of class `c` of `h`.
                return unsafe { crate::bound_heap::free_small(h, p, c) };
            }
        }
    }
    let Some((c, s)) = lookup_entry(e, addr) else {
        not_owned("free", addr)
    };
    // SAFETY: live (caller), with the class or span the pagemap gives.
    unsafe { free_known(p, c, s) }
}

/// Bytes usable at `p` (the class size, or the span length).
pub(crate) fn usable_size(p: *const u8) -> Option<usize> {
    match lookup(p)? {
        // SAFETY: `lookup` returns valid span records (never unmapped).
        (0, s) => Some(unsafe { usable_of(0, s) }),
        (c, _) => Some(size_class::usable_size(c)),
    }
}

/// The usable size of the allocation with class `c` / span `s`.
///
/// # Safety
/// `s` is a valid span record when `c == 0`.
pub(crate) unsafe fn usable_of(c: usize, s: *mut Span) -> usize {
    if c != 0 {
        return size_class::usable_size(c);
    }
    // SAFETY: valid (caller).
    let sp = unsafe { &*s };
    if sp.class != 0 {
        size_class::usable_size(sp.class as usize)
    } else {
        sp.bytes()
    }
}

/// Allocates zero-filled memory from the global heap; spans known to be
/// zero (fresh from the OS, or released with a zeroing policy) are not
/// cleared again.
pub(crate) fn alloc_zeroed(size: usize, align: usize) -> *mut u8 {
    zeroed_in(global(), size, align, alloc)
}

/// Zero-filled memory of heap `h`: a large allocation is cleared only when
/// its span is not known to be zero; a small one comes from `small` (the
/// heap's cached path) and is cleared.
pub(crate) fn zeroed_in(
    h: &'static HeapCore,
    size: usize,
    align: usize,
    small: impl FnOnce(usize, usize) -> *mut u8,
) -> *mut u8 {
    if size_class::class_for(size, align) == 0 {
        init();
        let (p, zeroed) = h.alloc_large(size, align);
        if !p.is_null() && !zeroed {
            // SAFETY: a fresh allocation of at least `size` bytes.
            unsafe { ptr::write_bytes(p, 0, size) };
        }
        return p;
    }
    let p = small(size, align);
    if !p.is_null() {
        // SAFETY: a fresh allocation of at least `size` bytes.
        unsafe { ptr::write_bytes(p, 0, size) };
    }
    p
}

/// Resizes `p` (class `c` of the global heap, or the allocation of span `s`;
/// allocated with alignment `align`) to `new_size` in heap `h`: in place
/// when `p` is `h`'s and fits (a growing large block also into the free
/// pages after it, or moved by [`HeapCore::grow_large`]), else moved to a
/// new block of `h` (the contents copied, `p` freed). Null, with `p`
/// untouched, when memory ran out.
///
/// With `headroom`, a block that grows and must move gets a quarter more
/// room than it had (a block that grew tends to grow again: a string grown
/// a few bytes at a time then moves a logarithmic number of times, not at
/// every size class). Only for callers that free without a size (C's
/// `realloc`): a Rust caller frees with the layout it asked for, whose class
/// must be the block's.
///
/// # Safety
/// `p` is a live allocation with that class or span.
pub(crate) unsafe fn realloc_in(
    h: &'static HeapCore,
    p: *mut u8,
    c: usize,
    s: *mut Span,
    new_size: usize,
    align: usize,
    headroom: bool,
) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    let old = unsafe { usable_of(c, s) };
    // SAFETY: valid (caller) when `c` is 0.
    let mine = if c != 0 {
        h.is_global()
    } else {
        ptr::eq(heap_of(unsafe { &*s }), h)
    };
    if mine {
        // SAFETY: forwarded from the caller.
        if unsafe { resize_in_place(c, s, new_size, align, headroom) } {
            return p;
        }
        // SAFETY: valid (caller) when `c` is 0.
        if c == 0 && unsafe { (*s).class } == 0 && new_size > old {
            // SAFETY: a live large allocation of `h`, at its span's start.
            return unsafe { h.grow_large(s, new_size, align) };
        }
    }
    let want = if headroom && new_size > old {
        new_size.max(old + old / 4)
    } else {
        new_size
    };
    let q = if h.is_global() {
        alloc(want, align)
    } else {
        crate::bound_heap::alloc_in(h, want, align)
    };
    if !q.is_null() {
        // SAFETY: distinct live blocks; copy what both hold, then free `p`
        // (live, with class `c` / span `s`).
        unsafe {
            ptr::copy_nonoverlapping(p, q, old.min(new_size));
            free_known(p, c, s);
        }
    }
    q
}

/// Resizes in place when possible: same class (with `headroom`, as for
/// [`realloc_in`], a larger class down to half its size), or a large span
/// that still fits (shrunk when the new size needs fewer pages).
/// Returns true if `p` now holds `new_size` bytes.
///
/// # Safety
/// `p` is a live allocation of class `c` (0: of span `s`), allocated with
/// alignment `align`.
pub(crate) unsafe fn resize_in_place(
    c: usize,
    s: *mut Span,
    new_size: usize,
    align: usize,
    headroom: bool,
) -> bool {
    let nc = size_class::class_for(new_size, align);
    // SAFETY: `s` is the live span (caller) when `c` is 0.
    let c = if c != 0 {
        c
    } else {
        unsafe { (*s).class as usize }
    };
    if c != 0 {
        // A block with room left by `headroom` keeps serving sizes down to
        // half its own.
        return nc == c || (headroom && nc != 0 && nc < c && 2 * new_size > class_size(c));
    }
    // SAFETY: `s` is the live span (caller).
    let sp = unsafe { &*s };
    if nc != 0 || new_size <= MAX_SMALL_SIZE {
        return false;
    }
    let need = new_size.div_ceil(PAGE_SIZE);
    let have = sp.npages;
    if need > have {
        return false;
    }
    if need < have {
        let h = heap_of(sp);
        // SAFETY: the span is in use and `0 < need < have`.
        return unsafe { h.pages.lock().shrink(s, need, &h.settings) };
    }
    true
}

/// The untyped interface the C library is built on: pointers without layouts,
/// found through the pagemap.
pub mod raw {
    use super::*;

    /// `malloc`: at least `size` bytes, 16-aligned from 16 bytes up; null when
    /// memory ran out. `malloc(0)` returns a unique pointer.
    #[inline(always)]
    pub fn malloc(size: usize) -> *mut u8 {
        alloc(size, 1)
    }

    /// [`malloc`] that calls `on_fail(size, 1)` when memory ran out and
    /// returns what it returns (the C library's new-mode retry).
    #[inline(always)]
    pub fn malloc_or(size: usize, on_fail: OnFail) -> *mut u8 {
        alloc_or(size, 1, on_fail)
    }

    /// At least `size` bytes aligned to `align` (a power of two).
    #[inline]
    pub fn aligned(size: usize, align: usize) -> *mut u8 {
        alloc(size, align.max(1))
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
        unsafe { super::free(p) }
    }

    /// A sized free (`free_sized`, sized `operator delete`): `free(p)`;
    /// the hardened build first checks that `p` is a block that holds
    /// `size` bytes aligned to `align` (0 or 1: any), and stops the program
    /// naming `op` when it is not. (Not that its class is `size`'s: C's
    /// `realloc` leaves blocks room to grow.)
    ///
    /// # Safety
    /// As for [`free`].
    #[inline(always)]
    pub unsafe fn free_sized(op: &'static str, p: *mut u8, size: usize, align: usize) {
        if !p.is_null() {
            crate::hardened::check_size(op, p, size, align, false);
        }
        // SAFETY: forwarded.
        unsafe { super::free(p) }
    }

    /// Bytes usable at `p`, or `None` if oxmalloc did not hand out `p`.
    pub fn usable_size(p: *const u8) -> Option<usize> {
        super::usable_size(p)
    }

    /// `realloc` for a non-null `p` and non-zero `new_size`: in place when the
    /// class or span still fits, else moved. Null (with `p` untouched) when
    /// memory ran out.
    ///
    /// # Safety
    /// `p` is a live allocation of oxmalloc's.
    pub unsafe fn realloc(p: *mut u8, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded; malloc-style calls allocate with alignment 1,
        // and free without a size.
        unsafe { realloc_aligned(p, 1, new_size, true) }
    }

    /// `realloc` of a block allocated with alignment `align`; `headroom` as
    /// for `realloc_in`.
    ///
    /// # Safety
    /// `p` is a live allocation of oxmalloc's made with alignment `align`.
    pub(crate) unsafe fn realloc_aligned(
        p: *mut u8,
        align: usize,
        new_size: usize,
        headroom: bool,
    ) -> *mut u8 {
        let (c, s) = owned(p, "realloc");
        // Within the heap that owns it.
        let h = if c != 0 {
            global()
        } else {
            // SAFETY: `s` is a valid span record when `c` is 0.
            heap_of(unsafe { &*s })
        };
        // SAFETY: `p` is live (caller) with class `c` / span `s`.
        unsafe { realloc_in(h, p, c, s, new_size, align, headroom) }
    }
}
