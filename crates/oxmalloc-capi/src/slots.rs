//! Fixed tables of `'static` objects made at run time without allocating.
//!
//! The engine keeps C-provided system allocators and release hooks as
//! `&'static dyn` references; the allocator cannot `Box::leak` to make them,
//! so they are written into slots of a static table instead.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

/// `N` slots of `T`.
pub(crate) struct Slots<T, const N: usize> {
    /// `used[i]` is set by the one caller that claimed slot `i`, before it
    /// writes `values[i]`, and cleared only by `give_back` once nobody holds
    /// the reference any more: a value is never written while it is shared.
    used: [AtomicBool; N],
    values: [UnsafeCell<MaybeUninit<T>>; N],
}

// SAFETY: a slot's value is written only by the caller that claimed it (see
// `used`) and then shared as `&T`, which needs `T: Sync`; values move between
// threads, which needs `T: Send`.
unsafe impl<T: Send + Sync, const N: usize> Sync for Slots<T, N> {}

impl<T: Copy, const N: usize> Slots<T, N> {
    /// A table of free slots.
    pub(crate) const fn new() -> Self {
        Self {
            used: [const { AtomicBool::new(false) }; N],
            values: [const { UnsafeCell::new(MaybeUninit::uninit()) }; N],
        }
    }

    /// Stores `value` in a free slot, or returns `None` when all are used.
    pub(crate) fn claim(&'static self, value: T) -> Option<&'static T> {
        for (used, v) in self.used.iter().zip(&self.values) {
            if used
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // SAFETY: this caller alone claimed the slot (see `used`).
                return Some(unsafe { (*v.get()).write(value) });
            }
        }
        None
    }

    /// Frees the slot of `r`.
    ///
    /// # Safety
    /// `r` came from [`Slots::claim`] of this table, and neither it nor any
    /// copy of it is used any more.
    pub(crate) unsafe fn give_back(&self, r: &'static T) {
        for (used, v) in self.used.iter().zip(&self.values) {
            if ptr::eq(v.get().cast::<T>(), r) {
                used.store(false, Ordering::Release);
                return;
            }
        }
    }
}
