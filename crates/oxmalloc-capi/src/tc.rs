//! gperftools' `tc_*` functions that are not another name of a malloc, C++
//! or glibc function (those are exported with their twin: `tc_malloc` in
//! [`crate::malloc`], `tc_new` in [`crate::cxx`], `tc_mallinfo` in
//! [`crate::mallinfo`]): the version, the new mode and `tc_malloc_stats`
//! (gperftools' report, where glibc's `malloc_stats` prints glibc's).
//!
//! In new mode (`tc_set_new_mode(1)`) the C allocation functions behave like
//! `operator new` on failure: they call the installed `std::new_handler` and
//! try again (see [`crate::malloc`]). `tc_malloc_skip_new_handler` never
//! does.

use crate::alias::exports;
use crate::malloc::alloc;
use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicI32, Ordering};
use engine::os::FdWriter;

/// The interface version this library implements: gperftools 2.10's
/// `TC_VERSION_MAJOR` and `TC_VERSION_MINOR`.
const VERSION: (c_int, c_int) = (2, 10);

/// What `tc_version` returns.
const VERSION_STRING: &core::ffi::CStr = match core::ffi::CStr::from_bytes_with_nul(
    concat!(
        "oxmalloc ",
        env!("CARGO_PKG_VERSION"),
        " (gperftools 2.10 interface)\0"
    )
    .as_bytes(),
) {
    Ok(s) => s,
    Err(_) => panic!("the version string has one NUL, at its end"),
};

/// gperftools' new mode: 0 (the default) or what `tc_set_new_mode` set.
static NEW_MODE: AtomicI32 = AtomicI32::new(0);

/// True in new mode.
#[inline]
pub(crate) fn new_mode() -> bool {
    NEW_MODE.load(Ordering::Relaxed) != 0
}

exports! {
    /// `tc_version(&major, &minor, &patch)`: stores 2, 10 and "" (the
    /// gperftools interface implemented; each pointer may be null) and returns
    /// a description naming oxmalloc.
    ///
    /// # Safety
    /// Each pointer is null or writable.
    unsafe extern "C" [tc_version]
        fn(major: *mut c_int, minor: *mut c_int, patch: *mut *const c_char) -> *const c_char {
        // SAFETY: null or writable (caller).
        unsafe {
            if let Some(m) = major.as_mut() {
                *m = VERSION.0;
            }
            if let Some(m) = minor.as_mut() {
                *m = VERSION.1;
            }
            if let Some(p) = patch.as_mut() {
                *p = c"".as_ptr();
            }
        }
        VERSION_STRING.as_ptr()
    }
}

exports! {
    /// `tc_set_new_mode(flag)`: non-zero makes the C allocation functions call
    /// the `std::new_handler` on failure, as `operator new` does. Returns the
    /// previous mode.
    extern "C" [tc_set_new_mode] fn(flag: c_int) -> c_int {
        NEW_MODE.swap(flag, Ordering::Relaxed)
    }
}

exports! {
    /// `tc_query_new_mode()`: the mode `tc_set_new_mode` set (0 by default).
    extern "C" [tc_query_new_mode] fn() -> c_int {
        NEW_MODE.load(Ordering::Relaxed)
    }
}

exports! {
    /// `tc_malloc_skip_new_handler(size)`: `malloc(size)` that never calls the
    /// new handler, whatever the mode.
    extern "C" [tc_malloc_skip_new_handler] fn(size: usize) -> *mut c_void {
        alloc(size)
    }
}

exports! {
    /// `tc_malloc_stats()`: the allocator report (level 1, as gperftools'
    /// `MALLOC:` lines) on standard error.
    extern "C" [tc_malloc_stats] fn() {
        let _ = engine::write_report(&mut FdWriter(2), 1);
    }
}
