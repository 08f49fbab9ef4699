//! The JSON report for programs and tools outside Rust: `oxmalloc_write_json`
//! into a caller's buffer, `oxmalloc_write_json_fd` into a file descriptor
//! (the same text as the engine's `write_json`, documented in `oxmalloc.h`).

use crate::slice_writer::SliceWriter;
use core::ffi::{c_char, c_int};
use engine::os::FdWriter;

/// Writes the JSON report into `buf`, cut to `len - 1` bytes and
/// NUL-terminated (nothing when `len` is 0); returns the length of the whole
/// report, like `snprintf`.
///
/// # Safety
/// `buf` is null (then `len` must be 0) or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_write_json(buf: *mut c_char, len: usize) -> c_int {
    let bytes: &mut [u8] = if buf.is_null() || len == 0 {
        &mut []
    } else {
        // SAFETY: writable for `len` bytes (caller).
        unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) }
    };
    let mut w = SliceWriter::new(bytes);
    let _ = engine::write_json(&mut w);
    c_int::try_from(w.finish()).unwrap_or(c_int::MAX)
}

/// Writes the JSON report to descriptor `fd` with `write(2)`; 0 on success,
/// -1 when a write failed (`errno` says why).
#[no_mangle]
pub extern "C" fn oxmalloc_write_json_fd(fd: c_int) -> c_int {
    match engine::write_json(&mut FdWriter(fd)) {
        Ok(()) => 0,
        Err(_) => -1,
    }
}
