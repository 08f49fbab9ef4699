//! The metadata arena: where span records, pagemap leaves and thread caches
//! live.
//!
//! Memory comes straight from the OS layer in chunks, never from an injected
//! region and never through the global allocator. Records of one type are
//! recycled through a free list ([`Pool`]), so metadata does not grow with
//! churn, only with the peak number of live records.

use crate::os;
use crate::sync::{Mutex, RawLock};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

const CHUNK: usize = 1 << 20;

/// Bytes of metadata mapped from the OS so far.
static MAPPED: AtomicUsize = AtomicUsize::new(0);

struct Bump {
    /// Next free byte of the current chunk.
    next: usize,
    /// End of the current chunk.
    end: usize,
}

static BUMP: Mutex<Bump> = Mutex::new(Bump { next: 0, end: 0 });

/// Allocates `size` bytes aligned to `align` (a power of two ≤ 4 KiB) of
/// zeroed metadata memory. Never freed; recycle through a [`Pool`].
pub fn alloc(size: usize, align: usize) -> Option<NonNull<u8>> {
    if size >= CHUNK / 4 {
        let len = (size + os::page_size() - 1) & !(os::page_size() - 1);
        let p = os::map_sparse(len)?;
        MAPPED.fetch_add(len, Ordering::Relaxed);
        return Some(p);
    }
    let mut b = BUMP.lock();
    let mut start = (b.next + align - 1) & !(align - 1);
    if b.next == 0 || start + size > b.end {
        let p = os::map_sparse(CHUNK)?.as_ptr() as usize;
        MAPPED.fetch_add(CHUNK, Ordering::Relaxed);
        b.next = p;
        b.end = p + CHUNK;
        start = p;
    }
    b.next = start + size;
    NonNull::new(start as *mut u8)
}

/// Bytes of metadata obtained from the OS.
pub fn mapped_bytes() -> usize {
    MAPPED.load(Ordering::Relaxed)
}

/// A free list of fixed-size records of type `T`, carved from the arena.
pub struct Pool<T> {
    inner: Mutex<PoolInner>,
    _marker: core::marker::PhantomData<T>,
}

struct PoolInner {
    /// Singly linked through the first word of each free record.
    free: *mut usize,
    /// Records handed out and not returned.
    live: usize,
}

// SAFETY: the raw pointers are only touched under the pool's lock.
unsafe impl Send for PoolInner {}

// SAFETY: access to the free list is serialised by the mutex; records are
// plain memory handed to one owner at a time.
unsafe impl<T> Sync for Pool<T> {}

impl<T> Pool<T> {
    /// An empty pool.
    pub const fn new() -> Self {
        Self {
            inner: Mutex::new(PoolInner {
                free: core::ptr::null_mut(),
                live: 0,
            }),
            _marker: core::marker::PhantomData,
        }
    }

    /// A record's worth of memory: uninitialised contents (zeroed when fresh).
    pub fn take(&self) -> Option<NonNull<T>> {
        const { assert!(core::mem::size_of::<T>() >= core::mem::size_of::<usize>()) };
        let mut g = self.inner.lock();
        let p = if !g.free.is_null() {
            let p = g.free;
            // SAFETY: a free record's first word holds the next free record.
            g.free = unsafe { *p } as *mut usize;
            p.cast::<T>()
        } else {
            drop(g);
            let p = alloc(core::mem::size_of::<T>(), core::mem::align_of::<T>())?;
            g = self.inner.lock();
            p.as_ptr().cast::<T>()
        };
        g.live += 1;
        NonNull::new(p)
    }

    /// Returns a record to the pool.
    ///
    /// # Safety
    /// `p` came from [`Pool::take`] of this pool and is no longer used.
    pub unsafe fn give(&self, p: NonNull<T>) {
        let mut g = self.inner.lock();
        let w = p.as_ptr().cast::<usize>();
        // SAFETY: the record is ours again and at least one word long.
        unsafe { *w = g.free as usize };
        g.free = w;
        g.live -= 1;
    }

    /// Records currently handed out.
    #[cfg(test)]
    pub fn live(&self) -> usize {
        self.inner.lock().live
    }

    /// The pool's lock (for fork).
    pub(crate) fn lock(&self) -> &dyn RawLock {
        &self.inner
    }
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The bump allocator's lock (for fork).
pub(crate) fn lock() -> &'static dyn RawLock {
    &BUMP
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_recycles() {
        static P: Pool<[usize; 4]> = Pool::new();
        let a = P.take().unwrap();
        let b = P.take().unwrap();
        assert_ne!(a, b);
        assert_eq!(P.live(), 2);
        // SAFETY: `a` came from P.
        unsafe { P.give(a) };
        let c = P.take().unwrap();
        assert_eq!(a, c);
        assert_eq!(P.live(), 2);
    }

    #[test]
    fn alloc_is_aligned_and_zeroed() {
        let p = alloc(100, 64).unwrap();
        assert_eq!(p.as_ptr() as usize % 64, 0);
        // SAFETY: fresh arena memory of 100 bytes.
        let s = unsafe { core::slice::from_raw_parts(p.as_ptr(), 100) };
        assert!(s.iter().all(|&b| b == 0));
    }
}
