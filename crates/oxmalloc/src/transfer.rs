//! The transfer cache: whole batches of free objects of one class, moved
//! between thread caches without touching spans.
//!
//! A thread that frees a batch's worth of objects parks it here; a thread that
//! needs a batch takes one, an O(1) exchange under a short per-class lock.
//! Batches are linked lists of objects (`head` … `tail`), exactly the class's
//! batch size long.

use crate::size_class::{ClassInfo, CLASSES};
use crate::span::FreeObject;
use crate::sync::{Mutex, RawLock};
use core::ptr;

/// Most batches one class may hold.
pub const MAX_BATCHES: usize = 64;

/// The number of batches class `c` may hold: about 1 MiB worth, between 1
/// and [`MAX_BATCHES`].
pub const fn capacity(info: &ClassInfo) -> usize {
    if info.size == 0 {
        return 0;
    }
    let n = (1 << 20) / (info.size * info.batch);
    if n < 1 {
        1
    } else if n > MAX_BATCHES {
        MAX_BATCHES
    } else {
        n
    }
}

#[derive(Clone, Copy)]
struct Batch {
    head: *mut FreeObject,
    tail: *mut FreeObject,
}

struct Slots {
    batches: [Batch; MAX_BATCHES],
    /// Batches `[0, used)` are full batches.
    used: usize,
}

// SAFETY: the object pointers are only followed by the lock holder.
unsafe impl Send for Slots {}

/// The transfer cache of one class.
pub struct TransferCache {
    slots: Mutex<Slots>,
}

impl TransferCache {
    /// An empty transfer cache.
    pub const fn new() -> Self {
        Self {
            slots: Mutex::new(Slots {
                batches: [Batch {
                    head: ptr::null_mut(),
                    tail: ptr::null_mut(),
                }; MAX_BATCHES],
                used: 0,
            }),
        }
    }

    /// Parks a full batch of class `c`; false when the cache is full.
    pub fn push(&self, c: usize, head: *mut FreeObject, tail: *mut FreeObject) -> bool {
        let mut g = self.slots.lock();
        if g.used >= capacity(&CLASSES[c]) {
            return false;
        }
        let u = g.used;
        g.batches[u] = Batch { head, tail };
        g.used = u + 1;
        true
    }

    /// Takes a full batch, if any: `(head, tail)`.
    pub fn pop(&self) -> Option<(*mut FreeObject, *mut FreeObject)> {
        let mut g = self.slots.lock();
        if g.used == 0 {
            return None;
        }
        g.used -= 1;
        let b = g.batches[g.used];
        Some((b.head, b.tail))
    }

    /// Forgets every batch (their objects are reclaimed with their spans).
    pub fn clear(&self) {
        self.slots.lock().used = 0;
    }

    /// Batches held now.
    pub fn batches(&self) -> usize {
        self.slots.lock().used
    }

    /// [`TransferCache::batches`] for a caller holding the lock.
    ///
    /// # Safety
    /// The caller holds the lock through [`Self::lock`].
    pub(crate) unsafe fn batches_held(&self) -> usize {
        // SAFETY: forwarded.
        unsafe { self.slots.held() }.used
    }

    /// The list's lock, for taking every lock of a heap at once.
    pub(crate) fn lock(&self) -> &dyn RawLock {
        &self.slots
    }
}

impl Default for TransferCache {
    fn default() -> Self {
        Self::new()
    }
}
