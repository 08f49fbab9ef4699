//! A lock that never allocates: spin briefly, then sleep on a futex.
//!
//! `std::sync::Mutex` and `parking_lot` may allocate or keep per-thread data
//! with destructors; neither is allowed inside an allocator.
//!
//! The loom models of `crates/oxmalloc-loom` compile this file with loom's
//! atomics (`cfg(loom)`): mutual exclusion, and that what one holder wrote is
//! visible to the next, are checked over every interleaving. loom has no
//! futex: there a wait yields until the word changes, and a wake does
//! nothing (so a lost wake-up would go unseen by the models).

#[cfg(loom)]
use loom::sync::atomic::{AtomicU32, Ordering};

#[cfg(not(loom))]
use core::sync::atomic::{AtomicU32, Ordering};

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

/// Declares a constructor that is `const` except in the loom models, whose
/// atomics cannot be made in a constant.
macro_rules! const_unless_loom {
    ($(#[$m:meta])* $v:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$m])* $v const fn $($rest)*
        #[cfg(loom)]
        $(#[$m])* $v fn $($rest)*
    };
}
pub(crate) use const_unless_loom;

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const CONTENDED: u32 = 2;

/// Tries of a contended lock before sleeping (one in the loom models, whose
/// state space every try multiplies).
const SPINS: usize = if cfg!(loom) { 1 } else { 100 };

/// A mutual-exclusion lock protecting a `T`, usable in `static`s.
pub struct Mutex<T> {
    /// 0 = unlocked, 1 = locked, 2 = locked with possible sleepers.
    state: AtomicU32,
    /// Only accessed while `state != UNLOCKED` by the holder of the lock.
    value: UnsafeCell<T>,
}

// SAFETY: the lock serialises all access to `value`.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: moving the lock moves the value; `T: Send` suffices.
unsafe impl<T: Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    const_unless_loom! {
        /// A new unlocked mutex.
        pub fn new(value: T) -> Self {
            Self {
                state: AtomicU32::new(UNLOCKED),
                value: UnsafeCell::new(value),
            }
        }
    }

    /// Takes the lock, waiting as long as needed.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if self
            .state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
        MutexGuard { lock: self }
    }

    #[cold]
    fn lock_slow(&self) {
        for _ in 0..SPINS {
            if self.state.load(Ordering::Relaxed) == UNLOCKED
                && self
                    .state
                    .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
            core::hint::spin_loop();
        }
        while self.state.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
            futex_wait(&self.state, CONTENDED);
        }
    }

    fn unlock(&self) {
        if self.state.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            futex_wake(&self.state);
        }
    }

    /// Takes the lock without a guard (for fork handlers, which lock in
    /// `prepare` and unlock in `parent` / `child`).
    pub fn raw_lock(&self) {
        core::mem::forget(self.lock());
    }

    /// Releases a lock taken with [`Mutex::raw_lock`].
    ///
    /// # Safety
    /// The calling thread must hold the lock through `raw_lock` (or be the
    /// only thread of a freshly forked child whose parent held it).
    pub unsafe fn raw_unlock(&self) {
        self.unlock();
    }

    /// The protected value, for a thread that holds the lock through
    /// [`Mutex::raw_lock`].
    ///
    /// # Safety
    /// The calling thread holds the lock, and no guard to it exists.
    pub unsafe fn held(&self) -> &T {
        // SAFETY: the caller holds the lock, so nobody writes meanwhile.
        unsafe { &*self.value.get() }
    }
}

/// A lock taken and released without a guard: what `fork()` and consistent
/// statistics take, in the documented order, across every part of the
/// allocator.
pub trait RawLock {
    /// Takes the lock, waiting as long as needed.
    fn raw_lock(&self);
    /// Takes the lock if it is free at once.
    fn try_raw_lock(&self) -> bool;
    /// Releases the lock.
    ///
    /// # Safety
    /// The calling thread holds it through `raw_lock` / `try_raw_lock` (or is
    /// the only thread of a forked child whose parent held it).
    unsafe fn raw_unlock(&self);
}

impl<T> RawLock for Mutex<T> {
    fn raw_lock(&self) {
        Mutex::raw_lock(self)
    }
    fn try_raw_lock(&self) -> bool {
        self.state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }
    unsafe fn raw_unlock(&self) {
        // SAFETY: forwarded from the caller.
        unsafe { Mutex::raw_unlock(self) }
    }
}

/// Proof of holding a [`Mutex`]; unlocks on drop.
pub struct MutexGuard<'a, T> {
    lock: &'a Mutex<T>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock exclusively.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

#[cfg(not(loom))]
fn futex_wait(state: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT on a valid aligned u32; spurious wake-ups are fine.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            state.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            core::ptr::null::<libc::timespec>(),
        );
    }
}

#[cfg(not(loom))]
fn futex_wake(state: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid aligned u32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            state.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

#[cfg(loom)]
fn futex_wait(state: &AtomicU32, expected: u32) {
    while state.load(Ordering::Relaxed) == expected {
        loom::thread::yield_now();
    }
}

#[cfg(loom)]
fn futex_wake(_: &AtomicU32) {}

// The engine's own tests (the loom models are in crates/oxmalloc-loom).
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    extern crate std;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn counts_under_contention() {
        let m = Arc::new(Mutex::new(0u64));
        let hs: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                thread::spawn(move || {
                    for _ in 0..100_000 {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock(), 400_000);
    }
}
