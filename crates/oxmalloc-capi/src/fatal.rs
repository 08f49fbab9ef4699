//! The panic hook that makes a panic (never expected) stop the program with
//! a message, without allocating, like every other fatal condition
//! (`engine::os::fatal`).

use engine::os::fatal;

/// Replaces `std`'s default panic hook (which allocates to format the message
/// and find the thread's name) by one that only writes where it happened and
/// aborts, before any unwinding starts.
pub(crate) fn install_panic_hook() {
    // A closure without captures is zero-sized: boxing it does not allocate.
    std::panic::set_hook(Box::new(|info| {
        let place = info.location();
        let (file, line) = place.map_or(("?", 0), |l| (l.file(), l.line()));
        // `payload_as_str`, which needs Rust 1.91 (see `rust-version`).
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("");
        fatal(format_args!("panic in liboxmalloc at {file}:{line}: {msg}"))
    }));
}
