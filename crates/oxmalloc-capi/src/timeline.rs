//! `OXMALLOC_TIMELINE=FILE`: a memory timeline. A thread samples the
//! allocator's figures and the resident set every `OXMALLOC_TIMELINE_MS`
//! milliseconds (default 5) and appends one line per sample to `FILE`;
//! `oxmalloc run --timeline` draws them.
//!
//! The file is text. Lines starting with `#` are comments (each sampling
//! process writes one naming itself); every other line is one sample of
//! seven decimal numbers separated by spaces:
//!
//! `pid time_us allocated_bytes heap_size pageheap_free_bytes pageheap_unmapped_bytes rss_bytes`
//!
//! where `time_us` is `CLOCK_MONOTONIC` in microseconds (one clock for every
//! process of the machine), the next four are the engine's `Stats` figures
//! and `rss_bytes` is the resident set from `/proc/self/statm`. Samples are
//! appended, each with one `write(2)` (`O_APPEND`), so processes sampling
//! into one file never mix their lines; the file is never truncated.
//!
//! Which processes sample: in a run (`OXMALLOC_PARENT_PID` set, see
//! [`crate::process`]) only the main process, including the programs it
//! replaces itself by with `exec` (same pid, same file); without it, every
//! process that loads the library with the variable set. A forked copy never
//! samples: the thread does not survive `fork`.
//!
//! The thread is started from the library's load hook (never from inside an
//! allocation), the first sample is taken then and the last one from the
//! exit hook. It never allocates: `engine::stats()` (which takes every lock
//! of the heap for a moment), a fixed buffer, `read(2)` and `write(2)`.

use crate::process;
use core::fmt::Write;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use engine::os::{getenv, parse_usize, write_all, write_stderr, FixedBuf};

/// The descriptor samples go to; -1: not sampling.
static FD: AtomicI32 = AtomicI32::new(-1);
/// `/proc/self/statm`, kept open; -1 when it could not be opened.
static STATM: AtomicI32 = AtomicI32::new(-1);
/// The process that samples (a forked copy inherits the statics).
static PID: AtomicI32 = AtomicI32::new(0);
/// Milliseconds between samples.
static INTERVAL_MS: AtomicU64 = AtomicU64::new(5);

/// Starts sampling when `OXMALLOC_TIMELINE` asks for it; called when the
/// library is loaded.
pub(crate) fn start() {
    if getenv(c"OXMALLOC_TIMELINE").is_none_or(|p| p.is_empty()) || !process::is_main() {
        return;
    }
    if let Some(ms) = getenv(c"OXMALLOC_TIMELINE_MS").and_then(parse_usize) {
        INTERVAL_MS.store(ms.max(1) as u64, Ordering::Relaxed);
    }
    // SAFETY: a NUL-terminated name; getenv does not allocate.
    let path = unsafe { libc::getenv(c"OXMALLOC_TIMELINE".as_ptr()) };
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC;
    // SAFETY: `path` is a NUL-terminated string of the environment.
    let fd = unsafe { libc::open(path, flags, 0o666) };
    if fd < 0 {
        write_stderr(b"oxmalloc: cannot open OXMALLOC_TIMELINE's file: no timeline\n");
        return;
    }
    // SAFETY: a NUL-terminated path.
    let statm = unsafe {
        libc::open(
            c"/proc/self/statm".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    STATM.store(statm, Ordering::Relaxed);
    PID.store(process::pid(), Ordering::Relaxed);
    FD.store(fd, Ordering::Release);
    let mut head = FixedBuf::<128>::new();
    let _ = writeln!(
        head,
        "# oxmalloc timeline: pid {} every {} ms",
        process::pid(),
        INTERVAL_MS.load(Ordering::Relaxed)
    );
    write_all(fd, head.as_bytes());
    sample();
    // SAFETY: a zeroed pthread_t is a valid out-buffer; the entry point is an
    // extern "C" fn that ignores its argument.
    unsafe {
        let mut t: libc::pthread_t = core::mem::zeroed();
        if libc::pthread_create(&mut t, core::ptr::null(), run, core::ptr::null_mut()) == 0 {
            libc::pthread_detach(t);
        }
    }
}

/// The last sample; called from the exit hook.
pub(crate) fn finish() {
    if FD.load(Ordering::Acquire) >= 0 && PID.load(Ordering::Relaxed) == process::pid() {
        sample();
    }
}

extern "C" fn run(_: *mut libc::c_void) -> *mut libc::c_void {
    loop {
        let ms = INTERVAL_MS.load(Ordering::Relaxed);
        let ts = libc::timespec {
            tv_sec: (ms / 1000) as libc::time_t,
            tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
        };
        // SAFETY: a valid timespec; an interrupted sleep just samples early.
        unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
        sample();
    }
}

/// Appends one sample.
fn sample() {
    let s = engine::stats();
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let us = now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1000;
    let mut line = FixedBuf::<192>::new();
    let _ = writeln!(
        line,
        "{} {us} {} {} {} {} {}",
        PID.load(Ordering::Relaxed),
        s.allocated_bytes,
        s.heap_size,
        s.pageheap_free_bytes,
        s.pageheap_unmapped_bytes,
        rss_bytes()
    );
    write_all(FD.load(Ordering::Relaxed), line.as_bytes());
}

/// The resident set: the second field of `/proc/self/statm`, in pages.
fn rss_bytes() -> usize {
    let fd = STATM.load(Ordering::Relaxed);
    let mut buf = [0u8; 128];
    // SAFETY: `buf` is valid for its length; reading from offset 0 makes
    // procfs produce the file afresh.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    let text = buf
        .get(..usize::try_from(n).unwrap_or(0))
        .unwrap_or_default();
    let pages = text
        .split(|&b| b == b' ')
        .nth(1)
        .and_then(parse_usize)
        .unwrap_or(0);
    pages * engine::os::page_size()
}
