//! Every standard C++ `operator new` and `operator delete`, exported under its
//! Itanium-mangled name (64-bit targets: `size_t` mangles as `m`).
//!
//! - The throwing forms loop as the standard says: on failure they call the
//!   installed `std::new_handler` and try again; with no handler they throw
//!   `std::bad_alloc` (through libstdc++'s `std::__throw_bad_alloc`). They use
//!   the `"C-unwind"` ABI, so the exception unwinds to the caller of `new` as
//!   in C++.
//! - The `nothrow` forms try once and return null on failure (a throwing
//!   handler could not be caught here).
//! - Every `delete` frees through the pagemap; sizes and alignments are not
//!   needed.
//! - An `align_val_t` that is not a power of two is rounded up, as for
//!   `memalign`.
//!
//! Each is also exported under gperftools' `tc_*` name (`tc_new`,
//! `tc_newarray_nothrow`, `tc_delete_sized_aligned`, …).
//!
//! The handler and the thrower are weak references to libstdc++'s
//! `std::get_new_handler()` and `std::__throw_bad_alloc()`, resolved when the
//! library is loaded: a C program without libstdc++ has neither, and never
//! needs them (a C++ program loads libstdc++ before it can call `new`).

use crate::alias::exports;
use crate::malloc::{alloc, alloc_aligned, release};
use core::ffi::c_void;
use engine::raw;

/// `std::new_handler`.
type NewHandler = unsafe extern "C-unwind" fn();
/// `std::get_new_handler`.
type GetNewHandler = unsafe extern "C" fn() -> Option<NewHandler>;
/// `std::__throw_bad_alloc`: throws `std::bad_alloc`, never returns.
type ThrowBadAlloc = unsafe extern "C-unwind" fn() -> !;

engine::weak_symbol! {
    /// libstdc++'s `std::get_new_handler()`, when libstdc++ is loaded.
    fn get_new_handler() -> Option<GetNewHandler> = "_ZSt15get_new_handlerv";
}

engine::weak_symbol! {
    /// libstdc++'s `std::__throw_bad_alloc()`, when libstdc++ is loaded.
    fn throw_bad_alloc() -> Option<ThrowBadAlloc> = "_ZSt17__throw_bad_allocv";
}

/// The installed `std::new_handler`, if any.
pub(crate) fn new_handler() -> Option<NewHandler> {
    let get = get_new_handler()?;
    // SAFETY: libstdc++'s `std::get_new_handler()` takes no arguments and
    // only reads the handler.
    unsafe { get() }
}

/// One attempt: alignment 0 means "no alignment requested".
fn try_alloc(size: usize, align: usize) -> *mut c_void {
    if align == 0 {
        alloc(size)
    } else {
        alloc_aligned(align, size)
    }
}

/// The throwing `operator new`: retries after each call of the new_handler;
/// with no handler, throws `std::bad_alloc` (stopping the program with a
/// message only when libstdc++ is not there to throw it).
fn new_or_handler(size: usize, align: usize) -> *mut c_void {
    loop {
        let p = try_alloc(size, align);
        if !p.is_null() {
            return p;
        }
        match (new_handler(), throw_bad_alloc()) {
            // SAFETY: the program's handler; it frees memory, throws or
            // aborts, as the standard asks of it.
            (Some(h), _) => unsafe { h() },
            // SAFETY: libstdc++'s thrower; the exception unwinds through
            // this "C-unwind" frame to the caller of `new`.
            (None, Some(throw)) => unsafe { throw() },
            (None, None) => engine::os::fatal(format_args!(
                "operator new: out of memory for {size} bytes, and no C++ runtime to throw std::bad_alloc"
            )),
        }
    }
}

exports! {
    /// `operator new(size_t)` and `operator new[](size_t)`.
    extern "C-unwind" [_Znwm, _Znam, tc_new, tc_newarray] fn(size: usize) -> *mut c_void {
        new_or_handler(size, 0)
    }
}

exports! {
    /// `operator new(size_t, std::align_val_t)` and its array form.
    extern "C-unwind" [_ZnwmSt11align_val_t, _ZnamSt11align_val_t, tc_new_aligned, tc_newarray_aligned]
        fn(size: usize, align: usize) -> *mut c_void {
        new_or_handler(size, align)
    }
}

exports! {
    /// `operator new(size_t, const std::nothrow_t&)` and its array form.
    extern "C" [_ZnwmRKSt9nothrow_t, _ZnamRKSt9nothrow_t, tc_new_nothrow, tc_newarray_nothrow]
        fn(size: usize, _nothrow: *const c_void) -> *mut c_void {
        try_alloc(size, 0)
    }
}

exports! {
    /// `operator new(size_t, std::align_val_t, const std::nothrow_t&)` and its
    /// array form.
    extern "C" [
        _ZnwmSt11align_val_tRKSt9nothrow_t,
        _ZnamSt11align_val_tRKSt9nothrow_t,
        tc_new_aligned_nothrow,
        tc_newarray_aligned_nothrow,
    ]
        fn(size: usize, align: usize, _nothrow: *const c_void) -> *mut c_void {
        try_alloc(size, align)
    }
}

exports! {
    /// `operator delete(void*)` and its array form.
    ///
    /// # Safety
    /// `p` is null or a live allocation of oxmalloc's.
    unsafe extern "C" [_ZdlPv, _ZdaPv, tc_delete, tc_deletearray] fn(p: *mut c_void) {
        // SAFETY: forwarded from the caller.
        unsafe { release(p) }
    }
}

exports! {
    /// `operator delete(void*, size_t)` and its array form (the hardened
    /// build checks the size).
    ///
    /// # Safety
    /// `p` is null or a live allocation of oxmalloc's.
    unsafe extern "C" [_ZdlPvm, _ZdaPvm, tc_delete_sized, tc_deletearray_sized]
        fn(p: *mut c_void, size: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { raw::free_sized("sized operator delete", p.cast(), size, 1) }
    }
}

exports! {
    /// `operator delete(void*, std::align_val_t)` and its array form.
    ///
    /// # Safety
    /// `p` is null or a live allocation of oxmalloc's.
    unsafe extern "C" [
        _ZdlPvSt11align_val_t,
        _ZdaPvSt11align_val_t,
        tc_delete_aligned,
        tc_deletearray_aligned,
    ]
        fn(p: *mut c_void, _align: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { release(p) }
    }
}

exports! {
    /// `operator delete(void*, size_t, std::align_val_t)` and its array form.
    ///
    /// # Safety
    /// `p` is null or a live allocation of oxmalloc's.
    unsafe extern "C" [
        _ZdlPvmSt11align_val_t,
        _ZdaPvmSt11align_val_t,
        tc_delete_sized_aligned,
        tc_deletearray_sized_aligned,
    ]
        fn(p: *mut c_void, size: usize, align: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { raw::free_sized("sized operator delete", p.cast(), size, align) }
    }
}

exports! {
    /// `operator delete(void*, const std::nothrow_t&)` and its array form.
    ///
    /// # Safety
    /// `p` is null or a live allocation of oxmalloc's.
    unsafe extern "C" [_ZdlPvRKSt9nothrow_t, _ZdaPvRKSt9nothrow_t, tc_delete_nothrow, tc_deletearray_nothrow]
        fn(p: *mut c_void, _nothrow: *const c_void) {
        // SAFETY: forwarded from the caller.
        unsafe { release(p) }
    }
}

exports! {
    /// `operator delete(void*, std::align_val_t, const std::nothrow_t&)` and
    /// its array form.
    ///
    /// # Safety
    /// `p` is null or a live allocation of oxmalloc's.
    unsafe extern "C" [
        _ZdlPvSt11align_val_tRKSt9nothrow_t,
        _ZdaPvSt11align_val_tRKSt9nothrow_t,
        tc_delete_aligned_nothrow,
        tc_deletearray_aligned_nothrow,
    ]
        fn(p: *mut c_void, _align: usize, _nothrow: *const c_void) {
        // SAFETY: forwarded from the caller.
        unsafe { release(p) }
    }
}
