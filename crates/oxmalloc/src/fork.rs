//! `fork()`: the child must be able to allocate.
//!
//! The prepare handler takes every lock of the allocator in the documented
//! order, so that no other thread is inside the allocator when the process
//! is copied; the parent and child handlers release them.

use crate::heap::{self, MAX_HEAPS};
use crate::pagemap::PAGEMAP;

/// Registers the fork handlers (once, from the allocator's initialisation).
pub(crate) fn register() {
    crate::os::register_atfork(prepare, parent, child);
}

unsafe extern "C" fn prepare() {
    heap::fork_lock();
    for slot in 0..MAX_HEAPS {
        if let Some(h) = heap::by_slot(slot) {
            h.lock_all();
        }
    }
    crate::region::fork_lock();
    PAGEMAP.fork_lock();
    crate::span::SPANS.fork_lock();
    crate::thread_cache::fork_lock();
    crate::meta::fork_lock();
}

unsafe extern "C" fn parent() {
    // SAFETY: this thread took every lock in `prepare`.
    unsafe { release() };
}

unsafe extern "C" fn child() {
    // SAFETY: the child's only thread is the one that took the locks.
    unsafe { release() };
}

/// # Safety
/// The caller holds every lock `prepare` takes.
unsafe fn release() {
    // SAFETY: forwarded.
    unsafe {
        crate::meta::fork_unlock();
        crate::thread_cache::fork_unlock();
        crate::span::SPANS.fork_unlock();
        PAGEMAP.fork_unlock();
        crate::region::fork_unlock();
        for slot in (0..MAX_HEAPS).rev() {
            if let Some(h) = heap::by_slot(slot) {
                h.unlock_all();
            }
        }
        heap::fork_unlock();
    }
}
