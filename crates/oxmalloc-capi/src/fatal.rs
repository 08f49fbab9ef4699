//! Stopping the program with a message, without allocating: [`die`], and the
//! panic hook that makes a panic (never expected) do the same.

use core::fmt::{self, Write};
use engine::os::{write_stderr, FixedBuf};

/// Writes `oxmalloc: fatal: <what>` to standard error with `write(2)` and
/// aborts.
#[cold]
#[inline(never)]
pub(crate) fn die(what: fmt::Arguments<'_>) -> ! {
    let mut b = FixedBuf::<256>::new();
    let _ = writeln!(b, "oxmalloc: fatal: {what}");
    write_stderr(b.as_bytes());
    // SAFETY: abort has no preconditions and never returns.
    unsafe { libc::abort() }
}

/// Replaces `std`'s default panic hook (which allocates to format the message
/// and find the thread's name) by one that only writes where it happened and
/// aborts, before any unwinding starts.
pub(crate) fn install_panic_hook() {
    // A closure without captures is zero-sized: boxing it does not allocate.
    std::panic::set_hook(Box::new(|info| {
        let place = info.location();
        let (file, line) = place.map_or(("?", 0), |l| (l.file(), l.line()));
        let msg = info.payload_as_str().unwrap_or("");
        die(format_args!("panic in liboxmalloc at {file}:{line}: {msg}"))
    }));
}
