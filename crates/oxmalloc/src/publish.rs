//! Records published once: made under a lock by the first thread that needs
//! one, then read by every thread without any lock.
//!
//! The pagemap's leaves are published this way: a reader that finds a leaf
//! pointer must see the leaf as its maker left it (the release store of the
//! pointer, paired with the readers' acquire loads), and two threads that
//! need the same leaf at once must agree on one (the second finds the first's
//! under the lock). The loom model of `crates/oxmalloc-loom` checks both on
//! this file.

#[cfg(loom)]
use loom::sync::atomic::{AtomicPtr, Ordering};

#[cfg(not(loom))]
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::sync::{const_unless_loom, Mutex};
use core::ptr::{self, NonNull};

/// A pointer to a `T` that is published at most once and never withdrawn.
pub struct Published<T> {
    ptr: AtomicPtr<T>,
}

impl<T> Published<T> {
    const_unless_loom! {
        /// Nothing published yet.
        pub fn new() -> Self {
            Self {
                ptr: AtomicPtr::new(ptr::null_mut()),
            }
        }
    }

    /// The published record, if any.
    #[inline(always)]
    pub fn get(&self) -> Option<&T> {
        // SAFETY: a published pointer came from `get_or_make`, whose caller
        // promised a record that stays valid for good; the acquire load
        // pairs with the release store that published it.
        unsafe { self.ptr.load(Ordering::Acquire).as_ref() }
    }

    /// True once a record is published (a relaxed look, for statistics).
    pub fn is_published(&self) -> bool {
        !self.ptr.load(Ordering::Relaxed).is_null()
    }

    /// The published record, made with `make` under `lock` when there is
    /// none yet. `None` when `make` fails (nothing is published then).
    ///
    /// # Safety
    /// A record `make` returns is fully initialised, valid for the rest of
    /// the process, and used by nothing else. `lock` is the same lock for
    /// every call on this `Published`.
    pub unsafe fn get_or_make(
        &self,
        lock: &Mutex<()>,
        make: impl FnOnce() -> Option<NonNull<T>>,
    ) -> Option<&T> {
        if let Some(r) = self.get() {
            return Some(r);
        }
        let _g = lock.lock();
        // A thread that held the lock before us may have made it meanwhile.
        if let Some(r) = self.get() {
            return Some(r);
        }
        let p = make()?;
        self.ptr.store(p.as_ptr(), Ordering::Release);
        // SAFETY: valid for good (caller).
        Some(unsafe { p.as_ref() })
    }
}

impl<T> Default for Published<T> {
    fn default() -> Self {
        Self::new()
    }
}
