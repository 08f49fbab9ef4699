//! Fresh anonymous mappings for injected regions, and the process-wide
//! budget of non-exclusive injections (they are never given back).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Non-exclusive regions one process injects at most: each stays in the
/// global heap for good, and a fuzzer runs millions of inputs in one process.
pub const MAX_SHARED_INJECTIONS: usize = 16;

static SHARED_INJECTIONS: AtomicUsize = AtomicUsize::new(0);

/// Takes one non-exclusive injection from the budget; false when spent.
pub fn take_shared_injection() -> bool {
    SHARED_INJECTIONS
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < MAX_SHARED_INJECTIONS).then_some(n + 1)
        })
        .is_ok()
}

/// A private anonymous mapping of `len` bytes (reserved, not committed).
#[derive(Debug)]
pub struct Mapping {
    /// Its start.
    pub start: *mut u8,
    /// Its length.
    pub len: usize,
}

impl Mapping {
    /// Maps `len` fresh bytes; `None` when the kernel refuses.
    pub fn new(len: usize) -> Option<Mapping> {
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        (p != libc::MAP_FAILED).then(|| Mapping {
            start: p.cast(),
            len,
        })
    }

    /// Whether `[p, p + len)` lies inside the mapping.
    pub fn contains(&self, p: usize, len: usize) -> bool {
        let s = self.start as usize;
        p >= s && p + len <= s + self.len
    }

    /// Unmaps it.
    ///
    /// # Safety
    /// Nothing uses the mapping any more (oxmalloc gave it back).
    pub unsafe fn unmap(self) {
        // SAFETY: our own mapping, no longer used (caller).
        let r = unsafe { libc::munmap(self.start.cast(), self.len) };
        assert_eq!(r, 0, "munmap of a retired region");
    }
}
