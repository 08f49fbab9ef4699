//! Heaps bound to regions, in C (`oxmalloc_heap_*` of `include/oxmalloc.h`).
//!
//! A `struct oxmalloc_heap *` is the engine's heap handle as an opaque
//! pointer. Objects of a heap are freed with plain `free()` (or its alias
//! `oxmalloc_heap_free`), which uses the calling thread's cache of the heap.
//! Errors follow C: null with `errno` for the allocating functions, an
//! `errno` value for the others.

use core::ffi::{c_int, c_uint, c_void};
use core::ptr;
use engine::os::set_errno;
use engine::{Heap, HeapError, RegionId};

/// `struct oxmalloc_heap_stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CHeapStats {
    /// Bytes in objects the program holds.
    pub in_use_bytes: usize,
    /// Free bytes of the page heap, backed by memory.
    pub free_bytes: usize,
    /// Free objects in the heap's central lists and transfer caches.
    pub central_bytes: usize,
    /// Free objects in threads' caches of this heap.
    pub cached_bytes: usize,
    /// Free bytes whose backing was released.
    pub released_bytes: usize,
    /// Bytes carved from the heap's regions.
    pub carved_bytes: usize,
    /// Threads with a cache of this heap.
    pub thread_caches: usize,
    /// Regions bound to the heap.
    pub regions: usize,
}

/// `struct oxmalloc_range`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CRange {
    /// First byte.
    pub start: *mut c_void,
    /// Length in bytes.
    pub len: usize,
}

/// The `errno` value of a heap error.
fn errno_of(e: HeapError) -> c_int {
    match e {
        HeapError::UnknownRegion | HeapError::RetiredRegion => libc::ENOENT,
        HeapError::NotExclusive => libc::EINVAL,
        HeapError::AlreadyBound => libc::EBUSY,
        HeapError::TooManyRegions | HeapError::TooManyHeaps | HeapError::NoMemory => libc::ENOMEM,
    }
}

/// The region with number `id`, or `ENOENT`.
fn region(id: c_uint) -> Result<RegionId, c_int> {
    RegionId::from_index(id as usize).ok_or(libc::ENOENT)
}

/// The handle of a C heap pointer (never dropped).
///
/// # Safety
/// `h` came from `oxmalloc_heap_new_in` and was not retired.
unsafe fn heap(h: *mut c_void) -> core::mem::ManuallyDrop<Heap> {
    // SAFETY: forwarded from the caller.
    unsafe { Heap::borrow_raw(h) }
}

/// Returns `p`, setting `errno = ENOMEM` when it is null.
fn or_enomem(p: *mut u8) -> *mut c_void {
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p.cast()
}

/// A heap bound to exclusive region `id`; null with `errno` = `ENOENT` (no
/// such region, or retired), `EINVAL` (not exclusive), `EBUSY` (another
/// heap is bound to it) or `ENOMEM` (too many heaps).
#[no_mangle]
pub extern "C" fn oxmalloc_heap_new_in(id: c_uint) -> *mut c_void {
    match region(id).and_then(|r| Heap::new_in(r).map_err(errno_of)) {
        Ok(h) => h.into_raw(),
        Err(e) => {
            set_errno(e);
            ptr::null_mut()
        }
    }
}

/// Gives heap `h` another exclusive region. Returns 0 or an `errno` value
/// as `oxmalloc_heap_new_in` sets.
///
/// # Safety
/// `h` is a live heap.
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_heap_add_region(h: *mut c_void, id: c_uint) -> c_int {
    // SAFETY: a live heap (caller).
    match region(id).and_then(|r| unsafe { heap(h) }.add_region(r).map_err(errno_of)) {
        Ok(()) => 0,
        Err(e) => e,
    }
}

/// `size` bytes from heap `h`; null with `ENOMEM` when its regions are full.
///
/// # Safety
/// `h` is a live heap.
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_heap_malloc(h: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: a live heap (caller).
    or_enomem(unsafe { heap(h) }.alloc_raw(size, 1))
}

/// `n * size` zero bytes from heap `h`; null with `ENOMEM` on overflow or
/// when its regions are full.
///
/// # Safety
/// `h` is a live heap.
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_heap_calloc(
    h: *mut c_void,
    n: usize,
    size: usize,
) -> *mut c_void {
    let Some(total) = n.checked_mul(size) else {
        set_errno(libc::ENOMEM);
        return ptr::null_mut();
    };
    // SAFETY: a live heap (caller).
    or_enomem(unsafe { heap(h) }.alloc_zeroed_raw(total, 1))
}

/// `size` bytes aligned to `align` (rounded up to a power of two) from heap
/// `h`; null with `EINVAL` for an alignment that cannot be rounded, `ENOMEM`
/// when the regions are full.
///
/// # Safety
/// `h` is a live heap.
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_heap_memalign(
    h: *mut c_void,
    align: usize,
    size: usize,
) -> *mut c_void {
    let Some(a) = align.checked_next_power_of_two() else {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    };
    // SAFETY: a live heap (caller).
    or_enomem(unsafe { heap(h) }.alloc_raw(size, a.max(1)))
}

/// `realloc` within heap `h`: null `p` allocates; size 0 frees and returns
/// null; else the block, resized in place or moved to a new block of `h`
/// (null with `ENOMEM`, `p` untouched, when the regions are full).
///
/// # Safety
/// `h` is a live heap; `p` is null or a live allocation of oxmalloc's.
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_heap_realloc(
    h: *mut c_void,
    p: *mut c_void,
    size: usize,
) -> *mut c_void {
    // SAFETY: a live heap (caller).
    let hp = unsafe { heap(h) };
    if p.is_null() {
        return or_enomem(hp.alloc_raw(size, 1));
    }
    if size == 0 {
        // SAFETY: a live allocation (caller).
        unsafe { engine::raw::free(p.cast()) };
        return ptr::null_mut();
    }
    // SAFETY: a live allocation (caller).
    or_enomem(unsafe { hp.realloc_unsized(p.cast(), size) })
}

/// Frees `p` (null: nothing): the same as `free(p)`, which finds the heap
/// through the pagemap (and uses the calling thread's cache of it).
///
/// # Safety
/// `p` is null or a live allocation of oxmalloc's.
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_heap_free(_h: *mut c_void, p: *mut c_void) {
    // SAFETY: forwarded from the caller.
    unsafe { engine::raw::free(p.cast()) }
}

/// Fills `*out` with heap `h`'s figures (one consistent snapshot). Returns 0,
/// or `EINVAL` when `out` is null.
///
/// # Safety
/// `h` is a live heap; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_heap_stats(h: *mut c_void, out: *mut CHeapStats) -> c_int {
    if out.is_null() {
        return libc::EINVAL;
    }
    // SAFETY: a live heap (caller).
    let s = unsafe { heap(h) }.stats();
    let c = CHeapStats {
        in_use_bytes: s.in_use_bytes,
        free_bytes: s.free_bytes,
        central_bytes: s.central_bytes,
        cached_bytes: s.cached_bytes,
        released_bytes: s.released_bytes,
        carved_bytes: s.carved_bytes,
        thread_caches: s.thread_caches,
        regions: s.regions().count(),
    };
    // SAFETY: writable (caller).
    unsafe { out.write(c) };
    0
}

/// Retires heap `h`: when nothing in it is live, its regions leave oxmalloc
/// and their ranges are written to `ranges` (up to `cap` of them; `*count`,
/// when not null, gets how many there were), and `h` is gone. Returns 0, or
/// `EBUSY` when objects are live: then `*count` gets the live bytes and `h`
/// stays usable.
///
/// # Safety
/// `h` is a live heap that no other thread uses meanwhile; `ranges` is
/// writable for `cap` entries (or null with `cap` 0); `count` is null or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_heap_retire(
    h: *mut c_void,
    ranges: *mut CRange,
    cap: usize,
    count: *mut usize,
) -> c_int {
    // SAFETY: a live heap, used by nobody else (caller).
    let heap = unsafe { Heap::from_raw(h) };
    let (result, n) = match heap.retire() {
        Ok(r) => {
            let mut n = 0;
            for (i, range) in r.iter().enumerate() {
                if i < cap && !ranges.is_null() {
                    // SAFETY: writable for `cap` entries (caller).
                    unsafe {
                        ranges.add(i).write(CRange {
                            start: range.start.cast(),
                            len: range.len,
                        })
                    };
                }
                n += 1;
            }
            (0, n)
        }
        Err((back, e)) => {
            let _ = back.into_raw();
            (libc::EBUSY, e.live_bytes())
        }
    };
    // SAFETY: null or writable (caller).
    if let Some(out) = unsafe { count.as_mut() } {
        *out = n;
    }
    result
}

/// Frees every object of heap `h` at once (arena style); the heap stays
/// usable.
///
/// # Safety
/// `h` is a live heap that no other thread uses meanwhile; none of its
/// objects is used afterwards.
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_heap_destroy(h: *mut c_void) {
    // SAFETY: a live heap, used by nobody else (caller).
    let mut heap = unsafe { Heap::from_raw(h) };
    heap.destroy();
    let _ = heap.into_raw();
}
