//! gperftools' C interface to `MallocExtension` (`gperftools/malloc_extension_c.h`,
//! every function of gperftools 2.10's), the C forms of the C++ methods that
//! header lacks (`MallocExtension_SetMemoryReleaseRate`,
//! `MallocExtension_GetMemoryReleaseRate`, `MallocExtension_GetFreeListSizes`),
//! and `nallocx`, over the engine's extension functions. The property names
//! are gperftools' (`generic.current_allocated_bytes`,
//! `tcmalloc.pageheap_free_bytes`, …) plus `oxmalloc.*` ones; see the
//! engine's `numeric_property`. The C++ object of
//! `MallocExtension::instance()` ([`crate::malloc_extension_cxx`]) calls the
//! same functions.
//!
//! Where gperftools' tcmalloc has nothing to check (`VerifyAllMemory`), the
//! answer is its own: success.

use crate::alias::exports;
use crate::slice_writer::SliceWriter;
use core::ffi::{c_char, c_int, c_void, CStr};
use engine::size_class::{allocation_size, NUM_CLASSES, PAGE_SHIFT};
use engine::{Ownership, RangeState};

/// gperftools' `MallocExtension_Ownership` values.
const OWNERSHIP_OWNED: c_int = 1;
const OWNERSHIP_NOT_OWNED: c_int = 2;

/// A property name as `&str`; `None` for null or non-UTF-8 names.
///
/// # Safety
/// `name` is null or NUL-terminated.
unsafe fn name_str<'a>(name: *const c_char) -> Option<&'a str> {
    if name.is_null() {
        return None;
    }
    // SAFETY: NUL-terminated (caller).
    unsafe { CStr::from_ptr(name) }.to_str().ok()
}

/// Stores the value of property `name` in `*value`. Returns 1, or 0 for an
/// unknown name (then `*value` is untouched).
///
/// # Safety
/// `name` is null or NUL-terminated; `value` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn MallocExtension_GetNumericProperty(
    name: *const c_char,
    value: *mut usize,
) -> c_int {
    // SAFETY: null or NUL-terminated (caller).
    let Some(v) = unsafe { name_str(name) }.and_then(engine::numeric_property) else {
        return 0;
    };
    // SAFETY: null or writable (caller).
    match unsafe { value.as_mut() } {
        Some(out) => {
            *out = v;
            1
        }
        None => 0,
    }
}

/// Sets a writable property. Returns 1, or 0 for an unknown or read-only
/// name.
///
/// # Safety
/// `name` is null or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn MallocExtension_SetNumericProperty(
    name: *const c_char,
    value: usize,
) -> c_int {
    // SAFETY: null or NUL-terminated (caller).
    match unsafe { name_str(name) } {
        Some(n) => engine::set_numeric_property(n, value) as c_int,
        None => 0,
    }
}

/// Writes the detailed report (level 2) into `buf`, NUL-terminated and cut
/// to `len` bytes.
///
/// # Safety
/// `buf` is null or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn MallocExtension_GetStats(buf: *mut c_char, len: c_int) {
    let Ok(n) = usize::try_from(len) else { return };
    if buf.is_null() || n == 0 {
        return;
    }
    // SAFETY: writable for `len` bytes (caller).
    let bytes = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), n) };
    let mut w = SliceWriter::new(bytes);
    let _ = engine::write_report(&mut w, 2);
    w.finish();
}

/// Gives every free page back to the OS, as each region's policy allows.
#[no_mangle]
pub extern "C" fn MallocExtension_ReleaseFreeMemory() {
    engine::release_free_memory();
}

/// Gives at least `bytes` of free pages back to the OS, if there are that
/// many.
#[no_mangle]
pub extern "C" fn MallocExtension_ReleaseToSystem(bytes: usize) {
    engine::release_to_system(bytes);
}

exports! {
    /// Returns the calling thread's cached objects to the central lists (its
    /// empty cache stays ready for the thread's next allocation).
    extern "C" [MallocExtension_MarkThreadIdle, MallocExtension_MarkThreadTemporarilyIdle] fn() {
        engine::mark_thread_idle();
    }
}

/// Makes sure the calling thread has a cache (gperftools: after
/// `MarkThreadIdle`).
#[no_mangle]
pub extern "C" fn MallocExtension_MarkThreadBusy() {
    // SAFETY: freeing the block just allocated.
    unsafe { engine::raw::free(engine::raw::malloc(0)) };
}

/// Free bytes in the calling thread's cache (0 when it has none).
#[no_mangle]
pub extern "C" fn MallocExtension_GetThreadCacheSize() -> usize {
    engine::thread_cache_size()
}

/// Heap consistency is not checked: 1 (tcmalloc's answer).
#[no_mangle]
pub extern "C" fn MallocExtension_VerifyAllMemory() -> c_int {
    1
}

exports! {
    /// 1 when `p` is null or lies in a live allocation of oxmalloc's, else 0.
    extern "C" [
        MallocExtension_VerifyNewMemory,
        MallocExtension_VerifyArrayNewMemory,
        MallocExtension_VerifyMallocMemory,
    ] fn(p: *const c_void) -> c_int {
        (p.is_null() || matches!(engine::ownership(p.cast()), Ownership::Owned(_))) as c_int
    }
}

/// gperftools' `kMallocExtensionHistogramSize`.
pub(crate) const HISTOGRAM_SIZE: usize = 64;

/// The blocks handed out, by span: objects carved out of small-object spans
/// and not returned to them (those in caches included), and large
/// allocations. `histogram[i]` counts blocks of `2^i` to `2^(i+1) - 1`
/// bytes.
pub(crate) fn memory_stats() -> (usize, usize, [usize; HISTOGRAM_SIZE]) {
    let (mut blocks, mut total, mut histogram) = (0, 0, [0; HISTOGRAM_SIZE]);
    engine::for_each_span(|r| {
        if r.state != RangeState::InUse {
            return;
        }
        let (count, size) = match engine::size_class::CLASSES.get(r.class) {
            Some(c) if r.class != 0 => (r.objects, c.size),
            _ => (1, r.length),
        };
        blocks += count;
        total += count * size;
        if let Some(h) = histogram.get_mut(size.checked_ilog2().unwrap_or(0) as usize) {
            *h += count;
        }
    });
    (blocks, total, histogram)
}

/// Stores the number and bytes of blocks handed out, and their sizes by
/// power of two, as [`memory_stats`] counts them (`int`s saturate). Returns 1.
///
/// # Safety
/// Each pointer is null or writable (`histogram` for 64 `int`s).
#[no_mangle]
pub unsafe extern "C" fn MallocExtension_MallocMemoryStats(
    blocks: *mut c_int,
    total: *mut usize,
    histogram: *mut c_int,
) -> c_int {
    let (b, t, h) = memory_stats();
    let int = |v: usize| c_int::try_from(v).unwrap_or(c_int::MAX);
    // SAFETY: null or writable (caller).
    unsafe {
        if let Some(out) = blocks.as_mut() {
            *out = int(b);
        }
        if let Some(out) = total.as_mut() {
            *out = t;
        }
        if !histogram.is_null() {
            for (i, &v) in h.iter().enumerate() {
                *histogram.add(i) = int(v);
            }
        }
    }
    1
}

/// Sets the release rate (gperftools' `TCMALLOC_RELEASE_RATE`: 0 releases
/// only on request; 1.0 is the default). Negative or NaN rates count as 0.
#[no_mangle]
pub extern "C" fn MallocExtension_SetMemoryReleaseRate(rate: f64) {
    // `as` saturates: NaN and negatives become 0, huge rates usize::MAX.
    engine::set_numeric_property("oxmalloc.release_rate_milli", (rate * 1000.0) as usize);
}

/// The release rate (see [`MallocExtension_SetMemoryReleaseRate`]).
#[no_mangle]
pub extern "C" fn MallocExtension_GetMemoryReleaseRate() -> f64 {
    engine::numeric_property("oxmalloc.release_rate_milli").unwrap_or(0) as f64 / 1000.0
}

/// One free list, as gperftools' `MallocExtension::FreeListInfo` (and the
/// header's `MallocExtension_FreeListInfo`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FreeListInfo {
    /// Smallest object (or run of pages, in bytes) the list holds.
    pub min_object_size: usize,
    /// Largest one.
    pub max_object_size: usize,
    /// Free bytes in the list.
    pub total_bytes_free: usize,
    /// `tcmalloc.central`, `tcmalloc.transfer`, `tcmalloc.thread`,
    /// `tcmalloc.page`, `tcmalloc.page_unmapped`, `tcmalloc.large` or
    /// `tcmalloc.large_unmapped` (static strings).
    pub kind: *const c_char,
}

/// Free runs of pages up to this length are listed by length (gperftools'
/// `kMaxPages`); longer ones together.
const PAGE_LISTS: usize = 128;

/// How many lists [`for_each_free_list`] reports: central and transfer lists
/// of every class, the thread caches, free and released runs by length, and
/// longer ones.
pub(crate) const FREE_LISTS: usize = 2 * (NUM_CLASSES - 1) + 1 + 2 * PAGE_LISTS + 2;

/// Calls `f` for every free list, in gperftools' order, after the figures
/// were copied out: no lock is held while `f` runs. The thread caches, whose
/// contents by class are not counted, are one list of all small sizes.
pub(crate) fn for_each_free_list(mut f: impl FnMut(FreeListInfo)) {
    let classes: [engine::ClassStats; NUM_CLASSES] = core::array::from_fn(|c| {
        if c == 0 {
            Default::default()
        } else {
            engine::class_stats(c)
        }
    });
    let thread_bytes = engine::stats().thread_cache_free_bytes;
    // Index n ≤ PAGE_LISTS: runs of n pages; PAGE_LISTS + 1: longer ones.
    let mut free = [0usize; PAGE_LISTS + 2];
    let mut released = [0usize; PAGE_LISTS + 2];
    engine::for_each_span(|r| {
        let pages = (r.length >> PAGE_SHIFT).min(PAGE_LISTS + 1);
        let list = match r.state {
            RangeState::Free => &mut free,
            RangeState::Released => &mut released,
            RangeState::InUse => return,
        };
        if let Some(b) = list.get_mut(pages) {
            *b += r.length;
        }
    });
    let info = |min, max, bytes, kind: &'static CStr| FreeListInfo {
        min_object_size: min,
        max_object_size: max,
        total_bytes_free: bytes,
        kind: kind.as_ptr(),
    };
    let mut prev = 0;
    for c in classes.iter().skip(1) {
        f(info(
            prev + 1,
            c.size,
            c.central_objects * c.size,
            c"tcmalloc.central",
        ));
        f(info(
            prev + 1,
            c.size,
            c.transfer_objects * c.size,
            c"tcmalloc.transfer",
        ));
        prev = c.size;
    }
    f(info(1, prev, thread_bytes, c"tcmalloc.thread"));
    let large = PAGE_LISTS + 1;
    let min_large = PAGE_LISTS << PAGE_SHIFT;
    f(info(min_large, usize::MAX, free[large], c"tcmalloc.large"));
    f(info(
        min_large,
        usize::MAX,
        released[large],
        c"tcmalloc.large_unmapped",
    ));
    for n in 1..=PAGE_LISTS {
        let (min, max) = ((n - 1) << PAGE_SHIFT, n << PAGE_SHIFT);
        f(info(min, max, free[n], c"tcmalloc.page"));
        f(info(min, max, released[n], c"tcmalloc.page_unmapped"));
    }
}

/// Stores up to `n` free-list records in `out` and returns how many there
/// are (a C form of `MallocExtension::GetFreeListSizes`; call it with `n` = 0
/// to size the array).
///
/// # Safety
/// `out` is null (with `n` = 0) or writable for `n` records.
#[no_mangle]
pub unsafe extern "C" fn MallocExtension_GetFreeListSizes(
    out: *mut FreeListInfo,
    n: usize,
) -> usize {
    let mut i = 0;
    for_each_free_list(|r| {
        if i < n {
            // SAFETY: `i < n` records are writable (caller).
            unsafe { out.add(i).write(r) };
        }
        i += 1;
    });
    i
}

/// Bytes usable at `p` (the start of a live allocation), else 0.
#[no_mangle]
pub extern "C" fn MallocExtension_GetAllocatedSize(p: *const c_void) -> usize {
    engine::allocated_size(p.cast()).unwrap_or(0)
}

/// Bytes a `malloc(size)` would really get.
#[no_mangle]
pub extern "C" fn MallocExtension_GetEstimatedAllocatedSize(size: usize) -> usize {
    engine::estimated_allocated_size(size)
}

/// gperftools' ownership: 1 when `p` lies in a live allocation of oxmalloc's,
/// 2 when it does not (0, "unknown", is never returned).
#[no_mangle]
pub extern "C" fn MallocExtension_GetOwnership(p: *const c_void) -> c_int {
    match engine::ownership(p.cast()) {
        Ownership::Owned(_) => OWNERSHIP_OWNED,
        Ownership::NotOwned => OWNERSHIP_NOT_OWNED,
    }
}

/// jemalloc's `nallocx`, as gperftools offers it: the usable size of an
/// allocation of `size` bytes aligned to `1 << (flags & 63)`; 0 when that
/// cannot be allocated.
#[no_mangle]
pub extern "C" fn nallocx(size: usize, flags: c_int) -> usize {
    let Some(align) = 1usize.checked_shl((flags & 63) as u32) else {
        return 0;
    };
    allocation_size(size, align).unwrap_or(0)
}
