//! Where a thread finds its cache of a heap, and the hand-over of that
//! cache at the end: either the thread retires it (at exit) or the heap does
//! (when the heap is retired while the thread lives on), never both, and
//! neither misses it.
//!
//! The owner reads its home without a lock ([`CacheHome::get`]) and points it
//! at a cache it made and registered ([`CacheHome::set`]). The heap's side
//! retires a cache under the registry lock of the cache's heap and points the
//! home back at the empty sentinel ([`CacheHome::clear`]). The exiting
//! thread's side ([`CacheHome::claim`]) reads its home, takes the lock of the
//! heap the cache serves, and looks again: a cache retired meanwhile is gone
//! (its record may already serve another thread, even another heap), one
//! still there is the thread's to retire, under that lock. The loom model of
//! `crates/oxmalloc-loom` checks this file over every interleaving.

#[cfg(loom)]
use loom::sync::atomic::{AtomicPtr, Ordering};

#[cfg(not(loom))]
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::sync::const_unless_loom;

/// A thread's pointer to its cache of one heap, or to the empty sentinel.
#[repr(transparent)]
pub struct CacheHome<T> {
    ptr: AtomicPtr<T>,
}

impl<T> CacheHome<T> {
    const_unless_loom! {
        /// A home pointing at the sentinel `empty`.
        pub fn new(empty: *mut T) -> Self {
            Self {
                ptr: AtomicPtr::new(empty),
            }
        }
    }

    /// The cache, or the sentinel: the owning thread's look (its own
    /// writes, or a `clear` made while it could not use the heap).
    #[inline(always)]
    pub fn get(&self) -> *mut T {
        self.ptr.load(Ordering::Relaxed)
    }

    /// Points the home at `cache`, which the owning thread made and
    /// registered with its heap.
    pub fn set(&self, cache: *mut T) {
        self.ptr.store(cache, Ordering::Release);
    }

    /// Points the home back at the sentinel `empty`: its cache was retired,
    /// under the registry lock of the cache's heap.
    pub fn clear(&self, empty: *mut T) {
        self.ptr.store(empty, Ordering::Release);
    }

    /// The exiting owner's side: the cache this home points at (unless it
    /// is `empty`) with the guard `lock_of(cache)` returns, the registry
    /// lock of the heap the cache serves, when the cache is still here once
    /// that lock is held. `None`: no cache, or its heap retired it meanwhile.
    ///
    /// `lock_of` may be handed a record that a heap retired and another
    /// thread reuses; it must only read what stays valid in a reused record.
    pub fn claim<G>(
        &self,
        empty: *mut T,
        lock_of: impl FnOnce(*mut T) -> G,
    ) -> Option<(*mut T, G)> {
        let c = self.ptr.load(Ordering::Acquire);
        if c == empty {
            return None;
        }
        let g = lock_of(c);
        (self.ptr.load(Ordering::Acquire) == c).then_some((c, g))
    }
}
