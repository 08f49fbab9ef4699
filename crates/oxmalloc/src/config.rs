//! Settings read from the environment at initialisation, without allocating.
//!
//! | variable | gperftools alias | default | meaning |
//! |---|---|---|---|
//! | `OXMALLOC_RELEASE_RATE` | `TCMALLOC_RELEASE_RATE` | 1.0 | how fast free pages go back to the OS as pages are freed; 0 = only on request |
//! | `OXMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES` | `TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES` | 33554432 | total budget of all thread caches |
//! | `OXMALLOC_HEAP_LIMIT_MB` | `TCMALLOC_HEAP_LIMIT_MB` | 0 (none) | heap size past which allocation fails with `ENOMEM` after trying to release memory |
//! | `OXMALLOC_AGGRESSIVE_DECOMMIT` | `TCMALLOC_AGGRESSIVE_DECOMMIT` | 0 | release every free span at once |
//! | `OXMALLOC_MEMFS_PATH` | `TCMALLOC_MEMFS_MALLOC_PATH` | unset | take memory from a file on hugetlbfs/tmpfs: a directory, a file-name prefix, or `memfd` |
//! | `OXMALLOC_MEMFS_LIMIT_MB` | `TCMALLOC_MEMFS_LIMIT_MB` | 0 (none) | most memory taken from that file |
//! | `OXMALLOC_BACKGROUND_RELEASE_MS` | `TCMALLOC_BACKGROUND_RELEASE_MS` | 0 (off) | C library only (Rust programs call `start_background_release`): every N ms, release free pages idle for N ms |
//! | `OXMALLOC_MEMFS_DISABLE_FALLBACK` | `TCMALLOC_MEMFS_DISABLE_FALLBACK` | 0 | 1: fail allocations when the file is full instead of using `mmap` |
//!
//! The `OXMALLOC_` name wins when both are set.

use crate::file_sys_allocator::{FileSource, FileSysAllocator};
use crate::os;
use crate::region::set_system_allocator;
use crate::sys_allocator::MmapSysAllocator;
use core::ffi::CStr;

/// The file allocator `OXMALLOC_MEMFS_PATH` installs.
static MEMFS: FileSysAllocator = FileSysAllocator::new();

/// Reads `OXMALLOC_<name>`, else `TCMALLOC_<name>`.
fn var(ox: &CStr, tc: &CStr) -> Option<&'static [u8]> {
    os::getenv(ox).or_else(|| os::getenv(tc))
}

/// Parses a non-negative decimal like `1`, `0.5` or `10.25` into thousandths.
pub fn parse_milli(s: &[u8]) -> Option<usize> {
    let (int, frac) = match s.iter().position(|&c| c == b'.') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &b""[..]),
    };
    let whole = if int.is_empty() {
        0
    } else {
        os::parse_usize(int)?
    };
    let mut milli = 0;
    let mut scale = 100;
    for &c in frac {
        if !c.is_ascii_digit() {
            return None;
        }
        milli += (c - b'0') as usize * scale;
        scale /= 10;
    }
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    whole.checked_mul(1000)?.checked_add(milli)
}

/// The global heap's settings found in the environment.
pub(crate) struct Environment {
    /// `OXMALLOC_RELEASE_RATE`, in thousandths.
    pub release_rate_milli: Option<usize>,
    /// `OXMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES`.
    pub max_total_thread_cache: Option<usize>,
    /// `OXMALLOC_HEAP_LIMIT_MB`, in bytes.
    pub heap_limit: Option<usize>,
    /// `OXMALLOC_AGGRESSIVE_DECOMMIT`.
    pub aggressive: Option<bool>,
}

/// Reads the settings from the environment, and installs the memfs system
/// allocator when `OXMALLOC_MEMFS_PATH` asks for it.
pub(crate) fn read_environment() -> Environment {
    if let Some(path) = var(c"OXMALLOC_MEMFS_PATH", c"TCMALLOC_MEMFS_MALLOC_PATH") {
        install_memfs(path);
    }
    Environment {
        release_rate_milli: var(c"OXMALLOC_RELEASE_RATE", c"TCMALLOC_RELEASE_RATE")
            .and_then(parse_milli),
        max_total_thread_cache: var(
            c"OXMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES",
            c"TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES",
        )
        .and_then(os::parse_usize),
        heap_limit: var(c"OXMALLOC_HEAP_LIMIT_MB", c"TCMALLOC_HEAP_LIMIT_MB")
            .and_then(os::parse_usize)
            .map(|v| v.saturating_mul(1 << 20)),
        aggressive: var(
            c"OXMALLOC_AGGRESSIVE_DECOMMIT",
            c"TCMALLOC_AGGRESSIVE_DECOMMIT",
        )
        .and_then(os::parse_usize)
        .map(|v| v != 0),
    }
}

/// Opens the memfs file named by the environment and installs it as the
/// system allocator; on failure says why on stderr and keeps `mmap`.
fn install_memfs(path: &'static [u8]) {
    let limit = var(c"OXMALLOC_MEMFS_LIMIT_MB", c"TCMALLOC_MEMFS_LIMIT_MB")
        .and_then(os::parse_usize)
        .unwrap_or(0)
        .saturating_mul(1 << 20);
    let no_fallback = var(
        c"OXMALLOC_MEMFS_DISABLE_FALLBACK",
        c"TCMALLOC_MEMFS_DISABLE_FALLBACK",
    )
    .and_then(os::parse_usize)
    .is_some_and(|v| v != 0);
    let fallback: Option<&'static dyn crate::sys_allocator::SysAllocator> = if no_fallback {
        None
    } else {
        Some(&MmapSysAllocator)
    };
    // The environment string is NUL-terminated right after the slice.
    // SAFETY: `path` came from getenv, so a NUL follows it.
    let cpath = unsafe { CStr::from_ptr(path.as_ptr().cast()) };
    let source = if path == b"memfd" {
        FileSource::Memfd
    } else {
        FileSource::Path(cpath)
    };
    use core::fmt::Write;
    let why = match MEMFS.open(source, limit, fallback) {
        Ok(()) => match set_system_allocator(&MEMFS) {
            Ok(_) => return,
            Err(e) => writeln!(
                os::FdWriter(2),
                "oxmalloc: OXMALLOC_MEMFS_PATH ignored: {e}"
            ),
        },
        Err(e) => writeln!(
            os::FdWriter(2),
            "oxmalloc: OXMALLOC_MEMFS_PATH ignored: {e}"
        ),
    };
    let _ = why;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milli() {
        assert_eq!(parse_milli(b"1"), Some(1000));
        assert_eq!(parse_milli(b"0.5"), Some(500));
        assert_eq!(parse_milli(b"10.25"), Some(10250));
        assert_eq!(parse_milli(b".5"), Some(500));
        assert_eq!(parse_milli(b""), None);
        assert_eq!(parse_milli(b"x"), None);
        assert_eq!(parse_milli(b"1.x"), None);
    }
}
