//! `MALLOCSTATS=1|2` (gperftools' variable): the allocator report on standard
//! error when the program exits, for programs that only preload the library.
//! 1 prints the summary, 2 (or more) the detailed report.
//!
//! The variable is read when the library is loaded (the program may change
//! its environment later), and standard error is duplicated then (close on
//! exec): programs such as the coreutils close descriptor 2 in an `atexit`
//! handler. The report is written from the library's `.fini_array`
//! destructor, which runs after `atexit` handlers and the destructors of the
//! objects loaded after the library, with `write(2)` and no allocation.

use core::fmt::Write;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use engine::os::{getenv, parse_usize, FdWriter};

/// The report level asked for; 0: none.
static LEVEL: AtomicU32 = AtomicU32::new(0);
/// Where the report goes: a duplicate of standard error (or 2 itself when it
/// could not be duplicated).
static FD: AtomicI32 = AtomicI32::new(2);

/// Reads `MALLOCSTATS` and keeps a descriptor for the report.
pub(crate) fn arm() {
    let Some(level) = getenv(c"MALLOCSTATS").and_then(parse_usize) else {
        return;
    };
    if level == 0 {
        return;
    }
    LEVEL.store(level.min(2) as u32, Ordering::Relaxed);
    // SAFETY: duplicating a descriptor has no memory-safety preconditions.
    let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
    if fd >= 0 {
        FD.store(fd, Ordering::Relaxed);
    }
}

/// Writes the report, if one was asked for.
pub(crate) fn print() {
    let level = LEVEL.load(Ordering::Relaxed);
    if level == 0 {
        return;
    }
    let mut out = FdWriter(FD.load(Ordering::Relaxed));
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let _ = writeln!(
        out,
        "oxmalloc report (MALLOCSTATS={level}) for process {pid}:"
    );
    let _ = engine::write_report(&mut out, level);
}
