//! The metadata arena: where span records, pagemap leaves and thread caches
//! live.
//!
//! Memory comes straight from the OS layer in chunks, never from an injected
//! region and never through the global allocator. Records of one type are
//! recycled through a free list ([`Pool`]), so metadata does not grow with
//! churn, only with the peak number of live records.
//!
//! Two figures: the bytes *mapped*, and the bytes *touched* — the pages the
//! arena's users wrote, which is what metadata costs in memory. Touched
//! counts each 1 MiB chunk up to its bump high-water mark (whole pages), a
//! large block from [`alloc`] whole, and of a sparse block from
//! [`alloc_sparse`] (a pagemap leaf: 3 MiB of address space, a few pages
//! written) only the pages its owner reports with [`note_touched`]. Every
//! mapping is advised `MADV_NOHUGEPAGE`, so that with transparent huge pages
//! set to `always` one write costs one page, not 2 MiB, and touched stays
//! what the memory costs.
//!
//! Every mapping is recorded in a list that [`for_each_mapping`] walks
//! without locking: a chunk's record is its first bytes, a large block's is
//! carved from a chunk.

use crate::os;
use crate::sync::{Mutex, RawLock};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

const CHUNK: usize = 1 << 20;

/// Bytes of metadata mapped from the OS so far.
static MAPPED: AtomicUsize = AtomicUsize::new(0);

/// Bytes of metadata written so far (whole pages; see the module docs).
static TOUCHED: AtomicUsize = AtomicUsize::new(0);

/// One mapping of the arena. Written once, before it is published in
/// [`MAPPINGS`]; never changed or freed after.
struct Mapping {
    next: *const Mapping,
    start: usize,
    len: usize,
}

/// The newest mapping; each links to the one before. Pushed under the bump
/// lock, read without it.
static MAPPINGS: AtomicPtr<Mapping> = AtomicPtr::new(ptr::null_mut());

struct Bump {
    /// Next free byte of the current chunk.
    next: usize,
    /// End of the current chunk.
    end: usize,
    /// End of the pages of the current chunk counted in [`TOUCHED`]:
    /// `next` rounded up to a page.
    touched: usize,
}

static BUMP: Mutex<Bump> = Mutex::new(Bump {
    next: 0,
    end: 0,
    touched: 0,
});

fn page_round(n: usize) -> usize {
    let page = os::page_size();
    (n + page - 1) & !(page - 1)
}

/// Maps `len` bytes (a multiple of the page size) for the arena.
fn map(len: usize) -> Option<NonNull<u8>> {
    let p = os::map_sparse(len)?;
    // SAFETY: a mapping of ours; the advice drops no contents.
    unsafe { os::advise(p.as_ptr(), len, libc::MADV_NOHUGEPAGE) };
    MAPPED.fetch_add(len, Ordering::Relaxed);
    Some(p)
}

impl Bump {
    /// Publishes the record `m` of a mapping (the caller holds the lock).
    ///
    /// # Safety
    /// `m` is arena memory for a `Mapping`, used for nothing else.
    unsafe fn publish(&mut self, m: *mut Mapping, start: usize, len: usize) {
        let next = MAPPINGS.load(Ordering::Relaxed);
        // SAFETY: forwarded from the caller.
        unsafe { m.write(Mapping { next, start, len }) };
        MAPPINGS.store(m, Ordering::Release);
    }

    /// `size` bytes aligned to `align` from the current chunk, or from a new
    /// one.
    fn take(&mut self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let mut start = (self.next + align - 1) & !(align - 1);
        if self.next == 0 || start + size > self.end {
            let p = map(CHUNK)?.as_ptr() as usize;
            // SAFETY: the chunk's first bytes are its record.
            unsafe { self.publish(p as *mut Mapping, p, CHUNK) };
            self.next = p + core::mem::size_of::<Mapping>();
            self.end = p + CHUNK;
            self.touched = p;
            start = (self.next + align - 1) & !(align - 1);
        }
        self.next = start + size;
        let touched = page_round(self.next);
        if touched > self.touched {
            TOUCHED.fetch_add(touched - self.touched, Ordering::Relaxed);
            self.touched = touched;
        }
        NonNull::new(start as *mut u8)
    }
}

/// A mapping of its own for a block of `size` bytes, recorded.
fn alloc_mapping(size: usize) -> Option<NonNull<u8>> {
    let len = page_round(size);
    let p = map(len)?;
    let mut b = BUMP.lock();
    let Some(m) = b.take(
        core::mem::size_of::<Mapping>(),
        core::mem::align_of::<Mapping>(),
    ) else {
        drop(b);
        MAPPED.fetch_sub(len, Ordering::Relaxed);
        // SAFETY: the mapping was made above and nothing knows of it.
        unsafe { os::unmap(p.as_ptr(), len) };
        return None;
    };
    // SAFETY: fresh arena memory for the record.
    unsafe { b.publish(m.as_ptr().cast(), p.as_ptr() as usize, len) };
    Some(p)
}

/// Allocates `size` bytes aligned to `align` (a power of two ≤ 4 KiB) of
/// zeroed metadata memory, all of which counts as touched. Never freed;
/// recycle through a [`Pool`].
pub fn alloc(size: usize, align: usize) -> Option<NonNull<u8>> {
    if size >= CHUNK / 4 {
        let p = alloc_mapping(size)?;
        TOUCHED.fetch_add(page_round(size), Ordering::Relaxed);
        return Some(p);
    }
    BUMP.lock().take(size, align)
}

/// Allocates `size` bytes of zeroed, page-aligned metadata memory of which
/// only a few pages will be written: none counts as touched until its user
/// reports the pages it writes with [`note_touched`]. Never freed.
pub fn alloc_sparse(size: usize) -> Option<NonNull<u8>> {
    alloc_mapping(size)
}

/// Counts `bytes` (whole pages) of a block of [`alloc_sparse`] as touched,
/// once for each page the caller writes for the first time.
pub fn note_touched(bytes: usize) {
    TOUCHED.fetch_add(bytes, Ordering::Relaxed);
}

/// Bytes of metadata obtained from the OS.
pub fn mapped_bytes() -> usize {
    MAPPED.load(Ordering::Relaxed)
}

/// Bytes of metadata written (whole pages): what metadata costs in memory.
pub fn touched_bytes() -> usize {
    TOUCHED.load(Ordering::Relaxed)
}

/// Calls `f(start, len)` for every mapping of the arena, newest first,
/// without locking (mappings made meanwhile may be missed).
pub fn for_each_mapping(mut f: impl FnMut(usize, usize)) {
    let mut m = MAPPINGS.load(Ordering::Acquire);
    // SAFETY: published records are never changed or freed.
    while let Some(r) = unsafe { m.as_ref() } {
        f(r.start, r.len);
        m = r.next.cast_mut();
    }
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
    fn mappings_are_listed_and_touched_counts_what_was_carved() {
        let t0 = touched_bytes();
        let sparse = alloc_sparse(3 << 20).unwrap().as_ptr() as usize;
        let dense = alloc(CHUNK / 2, 8).unwrap().as_ptr() as usize;
        let (mut saw_sparse, mut saw_dense) = (false, false);
        for_each_mapping(|start, len| {
            saw_sparse |= start == sparse && len == 3 << 20;
            saw_dense |= start == dense && len == CHUNK / 2;
        });
        assert!(saw_sparse && saw_dense);
        // Other tests may carve meanwhile: at least the dense block.
        let grown = touched_bytes() - t0;
        assert!(grown >= CHUNK / 2, "{grown}");
        note_touched(4096);
        assert!(touched_bytes() - t0 >= CHUNK / 2 + 4096);
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
