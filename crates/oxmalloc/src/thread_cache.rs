//! Per-thread caches: one free list per size class, sized dynamically.
//!
//! The global heap's cache of each thread lives in static thread-local
//! storage, reached with one initial-exec TLS access (declared in
//! `global_asm!`, since stable Rust offers no `#[thread_local]`). It starts
//! zero-filled, which is the "empty cache": every list is empty (allocation
//! misses) and has room for nothing (a free overflows), so the first call of
//! a thread reaches the slow path, which registers the cache.
//!
//! Sizing follows TCMalloc: a list's `max_length` starts at 1 and grows by one
//! per miss up to a batch, then by batches (slow start); a list that keeps
//! overflowing shrinks; a cache over its byte budget scavenges half of each
//! list's low-water mark and then asks its heap for a larger budget, stealing
//! from other threads once the total is spent.

use crate::heap::Heap;
use crate::os::KeepErrno;
use crate::size_class::{class_size, class_size_unchecked, CLASSES, NUM_CLASSES};
use crate::span::FreeObject;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Longest a list may grow.
const MAX_DYNAMIC_LENGTH: u32 = 8192;
/// Overflows tolerated before a list shrinks.
const MAX_OVERAGES: u32 = 3;

/// The thread's cache has not been set up yet.
const UNINIT: u8 = 0;
/// Registered with its heap and in use.
const ACTIVE: u8 = 1;
/// Being registered (calls made meanwhile bypass it).
const INITIALIZING: u8 = 2;
/// The thread is exiting: the cache was flushed and is bypassed.
const DEAD: u8 = 3;

/// The free list of one class.
#[repr(C)]
pub struct FreeList {
    head: *mut FreeObject,
    length: u32,
    max_length: u32,
    /// The shortest the list got since the last scavenge (kept next to
    /// `length`, so the fast path touches one place per class).
    low_water: u32,
    /// Overflows since the list last shrank.
    overages: u32,
}

/// A thread's cache for one heap.
#[repr(C)]
pub struct ThreadCache {
    lists: [FreeList; NUM_CLASSES],
    /// Bytes held in the lists. Written only by the owning thread; read by
    /// statistics from any thread.
    size: AtomicUsize,
    /// Byte budget. Lowered by other threads stealing budget.
    max_size: AtomicUsize,
    state: u8,
    /// The heap this cache serves (set at registration).
    heap: *const Heap,
    /// Links in the heap's registry of caches (under its lock).
    pub(crate) next: *mut ThreadCache,
    pub(crate) prev: *mut ThreadCache,
}

impl ThreadCache {
    /// Bytes held in the lists.
    #[inline(always)]
    pub fn size(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }

    /// The byte budget.
    #[inline(always)]
    pub fn max_size(&self) -> usize {
        self.max_size.load(Ordering::Relaxed)
    }

    /// Changes the byte budget (by the heap's registry, under its lock).
    pub(crate) fn set_max_size(&self, v: usize) {
        self.max_size.store(v, Ordering::Relaxed);
    }

    #[inline(always)]
    fn add_size(&self, delta: isize) -> usize {
        let v = (self.size.load(Ordering::Relaxed) as isize + delta) as usize;
        self.size.store(v, Ordering::Relaxed);
        v
    }

    /// An object of class `c`.
    ///
    /// # Safety
    /// Called only by the thread owning the cache, `0 < c < NUM_CLASSES`.
    #[inline(always)]
    pub unsafe fn alloc(&mut self, c: usize) -> *mut u8 {
        debug_assert!(c > 0 && c < NUM_CLASSES);
        // SAFETY: `c < NUM_CLASSES` (caller), so the index is in bounds.
        let l = unsafe { self.lists.get_unchecked_mut(c) };
        let h = l.head;
        if h.is_null() {
            // SAFETY: forwarded from the caller.
            return unsafe { self.alloc_slow(c) };
        }
        // SAFETY: a cached object holds the link to the next one.
        l.head = unsafe { (*h).next };
        l.length -= 1;
        if l.length < l.low_water {
            l.low_water = l.length;
        }
        // SAFETY: `c < NUM_CLASSES` (caller).
        self.add_size(-(unsafe { class_size_unchecked(c) } as isize));
        h.cast()
    }

    /// Takes back object `p` of class `c`.
    ///
    /// # Safety
    /// Called only by the thread owning the cache; `0 < c < NUM_CLASSES`;
    /// `p` is a free object of class `c` of this cache's heap.
    #[inline(always)]
    pub unsafe fn dealloc(&mut self, p: *mut u8, c: usize) {
        debug_assert!(c > 0 && c < NUM_CLASSES);
        // SAFETY: `c < NUM_CLASSES` (caller), so the index is in bounds.
        let l = unsafe { self.lists.get_unchecked_mut(c) };
        let o = p.cast::<FreeObject>();
        // SAFETY: the object is free and at least a word long.
        unsafe { (*o).next = l.head };
        l.head = o;
        l.length += 1;
        if l.length > l.max_length {
            return self.list_too_long(c);
        }
        // SAFETY: `c < NUM_CLASSES`, as above.
        if self.add_size(unsafe { class_size_unchecked(c) } as isize) > self.max_size() {
            self.scavenge();
        }
    }

    fn heap(&self) -> &Heap {
        // SAFETY: set at registration to a heap that outlives its caches.
        unsafe { &*self.heap }
    }

    /// Registers the cache with `heap`; false if it is being set up already
    /// (a re-entrant call) or the thread is exiting.
    fn ensure_active(&mut self, heap: &'static Heap) -> bool {
        match self.state {
            ACTIVE => true,
            UNINIT => {
                self.state = INITIALIZING;
                self.heap = heap;
                for l in self.lists.iter_mut() {
                    l.max_length = 1;
                }
                heap.register_cache(self);
                self.state = ACTIVE;
                true
            }
            _ => false,
        }
    }

    /// # Safety
    /// As for [`ThreadCache::alloc`].
    #[cold]
    #[inline(never)]
    unsafe fn alloc_slow(&mut self, c: usize) -> *mut u8 {
        let heap = crate::heap::global();
        if !self.ensure_active(heap) {
            return heap.alloc_uncached(c);
        }
        let batch = CLASSES[c].batch;
        let l = &mut self.lists[c];
        let want = (l.max_length as usize).min(batch);
        let r = self.heap().fetch(c, want);
        if r.count == 0 {
            return ptr::null_mut();
        }
        let l = &mut self.lists[c];
        // SAFETY: `r` is a linked batch of `r.count` free objects.
        unsafe {
            let first = r.head;
            if r.count > 1 {
                (*r.tail).next = l.head;
                l.head = (*first).next;
                l.length += r.count as u32 - 1;
                self.add_size((class_size(c) * (r.count - 1)) as isize);
            }
            let l = &mut self.lists[c];
            if (l.max_length as usize) < batch {
                l.max_length += 1;
            } else {
                let m = (l.max_length as usize + batch).min(MAX_DYNAMIC_LENGTH as usize);
                l.max_length = (m - m % batch) as u32;
            }
            first.cast()
        }
    }

    #[cold]
    #[inline(never)]
    fn list_too_long(&mut self, c: usize) {
        let _errno = KeepErrno::new();
        self.add_size(class_size(c) as isize);
        let heap = crate::heap::global();
        if !self.ensure_active(heap) {
            // Thread exiting or cache being set up: nothing stays here.
            self.release(c, self.lists[c].length as usize);
            return;
        }
        let batch = CLASSES[c].batch as u32;
        let l = &self.lists[c];
        if l.length > l.max_length {
            self.release(c, batch as usize);
            let l = &mut self.lists[c];
            if l.max_length < batch {
                l.max_length += 1;
            } else if l.max_length > batch {
                l.overages += 1;
                if l.overages > MAX_OVERAGES {
                    l.max_length -= batch;
                    l.overages = 0;
                }
            }
        }
        if self.size() > self.max_size() {
            self.scavenge();
        }
    }

    /// Gives up to `n` objects of list `c` back to the heap.
    fn release(&mut self, c: usize, n: usize) {
        let l = &mut self.lists[c];
        let n = n.min(l.length as usize);
        if n == 0 {
            return;
        }
        let head = l.head;
        let mut tail = head;
        // SAFETY: the list holds at least `n` linked objects.
        unsafe {
            for _ in 1..n {
                tail = (*tail).next;
            }
            l.head = (*tail).next;
            (*tail).next = ptr::null_mut();
        }
        l.length -= n as u32;
        if l.length < l.low_water {
            l.low_water = l.length;
        }
        self.add_size(-((class_size(c) * n) as isize));
        // SAFETY: `head..tail` are `n` free objects of class `c`.
        unsafe { self.heap().give(c, head, tail, n) };
    }

    /// Over budget: give back half of what each list did not need since the
    /// last scavenge, then ask for a larger budget.
    #[cold]
    fn scavenge(&mut self) {
        let _errno = KeepErrno::new();
        for (c, info) in CLASSES.iter().enumerate().skip(1) {
            let lw = self.lists[c].low_water;
            if lw > 0 {
                self.release(c, (lw as usize).div_ceil(2));
                let batch = info.batch as u32;
                let l = &mut self.lists[c];
                if l.max_length > batch {
                    l.max_length = (l.max_length - batch).max(batch);
                }
            }
            let l = &mut self.lists[c];
            l.low_water = l.length;
        }
        self.heap().grow_cache_budget(self);
    }

    /// Gives every cached object back to the heap.
    pub fn flush(&mut self) {
        for c in 1..NUM_CLASSES {
            self.release(c, self.lists[c].length as usize);
            self.lists[c].low_water = 0;
        }
    }

    /// The thread is exiting: flush, unregister, and bypass from now on.
    fn retire(&mut self) {
        if self.state != ACTIVE {
            return;
        }
        self.state = DEAD;
        self.flush();
        for l in self.lists.iter_mut() {
            l.max_length = 0;
        }
        // SAFETY: set at registration to a heap that outlives its caches.
        let heap = unsafe { &*self.heap };
        heap.unregister_cache(self);
    }
}

/// The calling thread's cache of the global heap.
#[inline(always)]
pub fn current() -> *mut ThreadCache {
    tls::slot()
}

/// Flushes the calling thread's cache (`mark_thread_idle`).
pub fn flush_current() {
    // SAFETY: the calling thread's own cache.
    let tc = unsafe { &mut *current() };
    if tc.state == ACTIVE {
        tc.flush();
    }
}

/// Free bytes in the calling thread's cache; 0 when it has none.
pub fn current_size() -> usize {
    // SAFETY: the calling thread's own cache.
    let tc = unsafe { &*current() };
    if tc.state == ACTIVE {
        tc.size()
    } else {
        0
    }
}

/// The thread-exit hook: flushes and retires the exiting thread's cache.
///
/// # Safety
/// Called by pthread with the value set by `Heap::register_cache`: the
/// exiting thread's own cache.
pub(crate) unsafe extern "C" fn on_thread_exit(p: *mut libc::c_void) {
    // SAFETY: `p` is the exiting thread's cache, still mapped.
    unsafe { (*p.cast::<ThreadCache>()).retire() };
}

#[cfg(target_arch = "x86_64")]
mod tls {
    use super::ThreadCache;
    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 6",
        ".globl __oxmalloc_v0_thread_cache",
        ".hidden __oxmalloc_v0_thread_cache",
        ".type __oxmalloc_v0_thread_cache,@object",
        ".size __oxmalloc_v0_thread_cache, {size}",
        "__oxmalloc_v0_thread_cache:",
        ".zero {size}",
        ".popsection",
        size = const core::mem::size_of::<ThreadCache>(),
    );

    /// The address of this thread's cache: thread pointer + initial-exec
    /// offset of the TLS symbol.
    #[inline(always)]
    pub fn slot() -> *mut ThreadCache {
        let p: *mut ThreadCache;
        // SAFETY: reads the thread pointer and a GOT entry; no side effects.
        unsafe {
            core::arch::asm!(
                "mov {p}, qword ptr fs:[0]",
                "add {p}, qword ptr [rip + __oxmalloc_v0_thread_cache@GOTTPOFF]",
                p = out(reg) p,
                options(pure, nomem, nostack),
            );
        }
        p
    }
}

#[cfg(target_arch = "aarch64")]
mod tls {
    use super::ThreadCache;
    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 6",
        ".globl __oxmalloc_v0_thread_cache",
        ".hidden __oxmalloc_v0_thread_cache",
        ".type __oxmalloc_v0_thread_cache,@object",
        ".size __oxmalloc_v0_thread_cache, {size}",
        "__oxmalloc_v0_thread_cache:",
        ".zero {size}",
        ".popsection",
        size = const core::mem::size_of::<ThreadCache>(),
    );

    /// The address of this thread's cache: thread pointer + initial-exec
    /// offset of the TLS symbol.
    #[inline(always)]
    pub fn slot() -> *mut ThreadCache {
        let p: *mut ThreadCache;
        // SAFETY: reads the thread pointer and a GOT entry; no side effects.
        unsafe {
            core::arch::asm!(
                "mrs {p}, tpidr_el0",
                "adrp {t}, :gottprel:__oxmalloc_v0_thread_cache",
                "ldr {t}, [{t}, #:gottprel_lo12:__oxmalloc_v0_thread_cache]",
                "add {p}, {p}, {t}",
                p = out(reg) p,
                t = out(reg) _,
                options(pure, nomem, nostack),
            );
        }
        p
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("oxmalloc supports x86_64 and aarch64 Linux");
