//! The transfer caches: per class, a stack of free objects' addresses that
//! moves objects between thread caches without touching spans.
//!
//! A thread cache that gives objects back parks their addresses here; one
//! that needs objects takes addresses from here. Either side moves any
//! number of objects up to a batch, copying addresses under a short
//! per-class lock, and the objects themselves are not read under it. (A
//! cache of linked batches passes whole batches only, so every other count,
//! a short list's refill or a scavenge's release, went to the central list
//! and its spans.) All classes' stacks share one array; each class holds
//! about 256 KiB worth of objects, at most [`MAX_BATCHES`] batches.

use crate::size_class::{ClassInfo, NUM_CLASSES};
use crate::span::FreeObject;
use crate::sync::{Mutex, RawLock};
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr;

/// Most batches one class may hold.
pub const MAX_BATCHES: usize = 64;

/// The objects class `info` may hold: about 256 KiB worth, between one batch
/// and [`MAX_BATCHES`] batches.
const fn capacity(info: &ClassInfo) -> usize {
    if info.size == 0 {
        return 0;
    }
    let n = (1 << 18) / (info.size * info.batch);
    let batches = if n < 1 {
        1
    } else if n > MAX_BATCHES {
        MAX_BATCHES
    } else {
        n
    };
    batches * info.batch
}

/// Where each class's stack starts in the shared array, and (last entry)
/// the array's length.
const OFFSETS: [usize; NUM_CLASSES + 1] = {
    let classes = crate::size_class::build_classes();
    let mut o = [0; NUM_CLASSES + 1];
    let mut c = 0;
    while c < NUM_CLASSES {
        o[c + 1] = o[c] + capacity(&classes[c]);
        c += 1;
    }
    o
};

/// Slots of all classes together.
const SLOTS: usize = OFFSETS[NUM_CLASSES];

/// The transfer caches of one heap.
pub struct TransferCaches {
    /// Per class: how many objects its stack holds (the lock guards the
    /// stack too).
    used: [Mutex<usize>; NUM_CLASSES],
    /// The stacks; slots `[OFFSETS[c], OFFSETS[c] + used[c])` hold class
    /// `c`'s objects, the rest is never read.
    slots: UnsafeCell<[MaybeUninit<*mut FreeObject>; SLOTS]>,
}

// SAFETY: each class's part of `slots` is only touched under that class's
// lock; the addresses are only followed by whoever took them out.
unsafe impl Sync for TransferCaches {}

impl TransferCaches {
    /// Empty transfer caches.
    pub const fn new() -> Self {
        Self {
            used: [const { Mutex::new(0) }; NUM_CLASSES],
            slots: UnsafeCell::new([MaybeUninit::uninit(); SLOTS]),
        }
    }

    /// Makes empty transfer caches in place without writing their slots
    /// (which are never read before written, so fresh memory stays
    /// untouched).
    ///
    /// # Safety
    /// `p` is valid for writes and nothing else uses it.
    pub unsafe fn init_at(p: *mut Self) {
        for c in 0..NUM_CLASSES {
            // SAFETY: in bounds of `*p` (caller).
            unsafe { ptr::addr_of_mut!((*p).used[c]).write(Mutex::new(0)) };
        }
    }

    /// Class `c`'s stack.
    fn stack(&self, c: usize) -> *mut *mut FreeObject {
        // SAFETY: `OFFSETS[c] <= SLOTS`, within the array.
        unsafe { self.slots.get().cast::<*mut FreeObject>().add(OFFSETS[c]) }
    }

    /// Parks as many of `objs` (free objects of class `c`) as fit, from the
    /// front; returns how many.
    pub fn insert(&self, c: usize, objs: &[*mut FreeObject]) -> usize {
        let mut used = self.used[c].lock();
        let room = OFFSETS[c + 1] - OFFSETS[c] - *used;
        let n = objs.len().min(room);
        // SAFETY: slots `[used, used + n)` of class `c`'s stack are within
        // its capacity; we hold its lock.
        unsafe { ptr::copy_nonoverlapping(objs.as_ptr(), self.stack(c).add(*used), n) };
        *used += n;
        n
    }

    /// Takes up to `out.len()` objects of class `c` into `out`; returns how
    /// many.
    pub fn remove(&self, c: usize, out: &mut [*mut FreeObject]) -> usize {
        let mut used = self.used[c].lock();
        let n = out.len().min(*used);
        *used -= n;
        // SAFETY: slots `[used - n, used)` hold objects; we hold the lock.
        unsafe { ptr::copy_nonoverlapping(self.stack(c).add(*used), out.as_mut_ptr(), n) };
        n
    }

    /// Forgets every object (their spans are reclaimed wholesale).
    pub fn clear(&self) {
        for u in &self.used {
            *u.lock() = 0;
        }
    }

    /// Objects class `c` holds now.
    pub fn len(&self, c: usize) -> usize {
        *self.used[c].lock()
    }

    /// [`TransferCaches::len`] for a caller holding the lock.
    ///
    /// # Safety
    /// The caller holds class `c`'s lock through [`Self::lock`].
    pub(crate) unsafe fn len_held(&self, c: usize) -> usize {
        // SAFETY: forwarded.
        unsafe { *self.used[c].held() }
    }

    /// Class `c`'s lock, for taking every lock of a heap at once.
    pub(crate) fn lock(&self, c: usize) -> &dyn RawLock {
        &self.used[c]
    }
}

impl Default for TransferCaches {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size_class::CLASSES;

    fn objs(n: usize, base: usize) -> [*mut FreeObject; 64] {
        let mut a = [ptr::null_mut(); 64];
        for (i, o) in a.iter_mut().enumerate().take(n) {
            *o = (base + i * 16) as *mut FreeObject;
        }
        a
    }

    #[test]
    fn any_count_in_and_out_last_in_first_out() {
        static T: TransferCaches = TransferCaches::new();
        let a = objs(5, 0x1000);
        assert_eq!(T.insert(3, &a[..5]), 5);
        let b = objs(2, 0x9000);
        assert_eq!(T.insert(3, &b[..2]), 2);
        assert_eq!(T.len(3), 7);
        assert_eq!(T.len(4), 0, "classes are apart");
        let mut out = [ptr::null_mut(); 4];
        assert_eq!(T.remove(3, &mut out), 4);
        assert_eq!(&out[..2], &a[3..5], "the older ones under the newer");
        assert_eq!(&out[2..], &b[..2]);
        let mut rest = [ptr::null_mut(); 10];
        assert_eq!(T.remove(3, &mut rest), 3);
        assert_eq!(&rest[..3], &a[..3]);
        assert_eq!(T.remove(3, &mut rest), 0);
    }

    #[test]
    fn a_class_holds_about_256_kib_and_no_more() {
        static T: TransferCaches = TransferCaches::new();
        for c in [1, 20, NUM_CLASSES - 1] {
            let info = &CLASSES[c];
            let cap = OFFSETS[c + 1] - OFFSETS[c];
            assert!(cap >= info.batch && cap <= MAX_BATCHES * info.batch);
            assert!(cap * info.size <= (1 << 18) || cap == info.batch);
            let a = objs(info.batch, 0x10_0000);
            let mut held = 0;
            while held < cap {
                held += T.insert(c, &a[..info.batch]);
            }
            assert_eq!(held, cap);
            assert_eq!(T.insert(c, &a[..1]), 0, "full");
        }
        T.clear();
        assert_eq!(T.len(1), 0);
    }
}
