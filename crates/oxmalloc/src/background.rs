//! Time-based release: a background thread that, every interval, gives back
//! the free pages that stayed free for a whole interval.
//!
//! gperftools releases memory only as pages are freed (the release rate), so
//! an idle process keeps its free pages forever; users ask for a timer. The
//! thread is started on request ([`start_background_release`], or the
//! `OXMALLOC_BACKGROUND_RELEASE_MS` variable read by the C library), never
//! from inside an allocation.

use crate::heap::global;
use crate::size_class::PAGE_SIZE;

/// One tick of time-based release, for programs that run their own timer:
/// releases the free pages that stayed free since the previous call. Returns
/// the bytes released.
pub fn release_idle_memory() -> usize {
    global().pages.lock().release_idle() * PAGE_SIZE
}

/// Starts the background release thread with this interval (in
/// milliseconds, at least 1). If it is running already, only the interval
/// changes. False when the thread could not be created.
pub fn start_background_release(interval_ms: u64) -> bool {
    let ms = interval_ms.max(1);
    if global().settings.swap_background_ms(ms) != 0 {
        return true;
    }
    // SAFETY: a zeroed pthread_t is a valid out-buffer; the entry point is an
    // extern "C" fn that ignores its argument.
    let ok = unsafe {
        let mut t: libc::pthread_t = core::mem::zeroed();
        let rc = libc::pthread_create(&mut t, core::ptr::null(), run, core::ptr::null_mut());
        if rc == 0 {
            libc::pthread_detach(t);
        }
        rc == 0
    };
    if !ok {
        global().settings.swap_background_ms(0);
    }
    ok
}

/// The interval of the running background thread, if any.
pub fn background_release_interval_ms() -> Option<u64> {
    match global().settings.background_ms() {
        0 => None,
        ms => Some(ms),
    }
}

extern "C" fn run(_: *mut libc::c_void) -> *mut libc::c_void {
    loop {
        let ms = global().settings.background_ms();
        let ts = libc::timespec {
            tv_sec: (ms / 1000) as libc::time_t,
            tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
        };
        // SAFETY: a valid timespec; an interrupted sleep just ticks early.
        unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
        release_idle_memory();
    }
}
