//! gperftools' C interface to `MallocExtension` (`gperftools/malloc_extension_c.h`)
//! and `nallocx`, over the engine's extension functions. The property names
//! are gperftools' (`generic.current_allocated_bytes`,
//! `tcmalloc.pageheap_free_bytes`, …) plus `oxmalloc.*` ones; see the
//! engine's `numeric_property`.

use crate::slice_writer::SliceWriter;
use core::ffi::{c_char, c_int, c_void, CStr};
use engine::size_class::allocation_size;
use engine::Ownership;

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

/// Returns the calling thread's cached objects to the central lists.
#[no_mangle]
pub extern "C" fn MallocExtension_MarkThreadIdle() {
    engine::mark_thread_idle();
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
