//! A heap: one page heap, one set of central lists and transfer caches, the
//! regions it carves pages from, and the registry of its threads' caches.
//!
//! The engine is written once, over a [`Source`] of pages; the global heap is
//! the heap whose source is "non-exclusive regions, then the system
//! allocator". Lock order, outermost first: cache registry, a class's transfer
//! cache or central list, page heap, region table, pagemap growth, span
//! records, metadata arena.

use crate::central::{CentralFreeList, Range};
use crate::os::{self, ThreadExitKey};
use crate::page_heap::{PageHeap, RELEASE_RATE_MILLI};
use crate::pagemap::PAGEMAP;
use crate::region::Source;
use crate::size_class::{self, CLASSES, MAX_SMALL_SIZE, NUM_CLASSES, PAGE_SHIFT, PAGE_SIZE};
use crate::span::{FreeObject, Span, SpanState};
use crate::sync::Mutex;
use crate::thread_cache::{self, ThreadCache};
use crate::transfer::TransferCache;
use core::ptr;
use core::sync::atomic::{AtomicU8, Ordering};

/// Default total thread-cache budget of a heap (32 MiB).
pub const DEFAULT_MAX_TOTAL_THREAD_CACHE: usize = 32 << 20;
/// Most one thread's cache may hold (4 MiB).
pub const MAX_THREAD_CACHE: usize = 4 << 20;
/// What a new thread's cache starts with, and the step budgets move by.
pub const MIN_THREAD_CACHE: usize = 64 << 10;

/// The threads' caches of a heap and their shared byte budget.
pub(crate) struct Registry {
    head: *mut ThreadCache,
    /// Caches registered.
    pub count: usize,
    /// Total budget of all caches.
    pub max_total: usize,
    /// Floor of one cache's budget.
    pub min_per_thread: usize,
    /// Budget not yet given to any cache (may go negative).
    unclaimed: isize,
    /// Next cache to steal budget from.
    victim: *mut ThreadCache,
}

// SAFETY: the raw pointers are followed only under the registry's lock, and
// point to caches that unregister before their thread's storage goes away.
unsafe impl Send for Registry {}

impl Registry {
    /// Calls `f` for every registered cache.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&ThreadCache)) {
        let mut c = self.head;
        while !c.is_null() {
            // SAFETY: registered caches are valid until they unregister, which
            // needs this lock.
            unsafe {
                f(&*c);
                c = (*c).next;
            }
        }
    }
}

/// A heap.
pub struct Heap {
    pub(crate) pages: Mutex<PageHeap>,
    pub(crate) central: [CentralFreeList; NUM_CLASSES],
    pub(crate) transfer: [TransferCache; NUM_CLASSES],
    pub(crate) caches: Mutex<Registry>,
}

// SAFETY: all mutable state is behind the heap's locks.
unsafe impl Sync for Heap {}

static GLOBAL: Heap = Heap::new(Source::Global);

/// The global heap.
#[inline(always)]
pub fn global() -> &'static Heap {
    &GLOBAL
}

impl Heap {
    const fn new(source: Source) -> Self {
        Self {
            pages: Mutex::new(PageHeap::new(source)),
            central: [const { CentralFreeList::new() }; NUM_CLASSES],
            transfer: [const { TransferCache::new() }; NUM_CLASSES],
            caches: Mutex::new(Registry {
                head: ptr::null_mut(),
                count: 0,
                max_total: DEFAULT_MAX_TOTAL_THREAD_CACHE,
                min_per_thread: MIN_THREAD_CACHE,
                unclaimed: DEFAULT_MAX_TOTAL_THREAD_CACHE as isize,
                victim: ptr::null_mut(),
            }),
        }
    }

    /// Up to `n` objects of class `c`: a whole batch from the transfer cache
    /// when `n` is the batch size, else from the central list.
    pub(crate) fn fetch(&self, c: usize, n: usize) -> Range {
        if n == CLASSES[c].batch {
            if let Some((head, tail)) = self.transfer[c].pop() {
                return Range {
                    head,
                    tail,
                    count: n,
                };
            }
        }
        self.central[c].remove_range(c, n, &self.pages)
    }

    /// Takes back `n` linked objects of class `c`.
    ///
    /// # Safety
    /// `head..tail` are `n` free objects of class `c` of this heap, linked,
    /// with `tail.next` null.
    pub(crate) unsafe fn give(
        &self,
        c: usize,
        head: *mut FreeObject,
        tail: *mut FreeObject,
        n: usize,
    ) {
        if n == CLASSES[c].batch && self.transfer[c].push(c, head, tail) {
            return;
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.central[c].insert_range(c, head, n, &self.pages) };
    }

    /// One object of class `c` without a thread cache (the thread is exiting,
    /// or a call re-entered while its cache was being set up).
    pub(crate) fn alloc_uncached(&self, c: usize) -> *mut u8 {
        self.fetch(c, 1).head.cast()
    }

    /// A large allocation: a whole span. Returns the pointer and whether its
    /// memory is known to be zero.
    pub(crate) fn alloc_large(&self, size: usize, align: usize) -> (*mut u8, bool) {
        init();
        let Some(bytes) = size.checked_add(PAGE_SIZE - 1) else {
            return (ptr::null_mut(), false);
        };
        let n = (bytes >> PAGE_SHIFT).max(1);
        let align_pages = (align >> PAGE_SHIFT).max(1);
        let s = self.pages.lock().alloc_aligned(n, align_pages);
        if s.is_null() {
            return (ptr::null_mut(), false);
        }
        // SAFETY: a fresh in-use span.
        unsafe { ((*s).addr() as *mut u8, (*s).zeroed) }
    }

    /// Frees the large allocation whose span is `s`.
    ///
    /// # Safety
    /// `s` is the in-use large span of a live allocation of this heap.
    pub(crate) unsafe fn free_large(&self, s: *mut Span) {
        let _errno = os::KeepErrno::new();
        // SAFETY: forwarded from the caller.
        unsafe { self.pages.lock().free(s) };
    }

    /// Registers a new thread cache and gives it a starting budget.
    pub(crate) fn register_cache(&self, tc: &mut ThreadCache) {
        init();
        // The key must exist before any cache registers (whoever runs `init`),
        // or the cache would never be retired at thread exit.
        THREAD_EXIT.init(thread_cache::on_thread_exit);
        let mut r = self.caches.lock();
        let start = if r.unclaimed > 0 {
            (r.unclaimed as usize).min(MIN_THREAD_CACHE)
        } else {
            r.min_per_thread
        };
        r.unclaimed -= start as isize;
        tc.set_max_size(start);
        tc.prev = ptr::null_mut();
        tc.next = r.head;
        if !r.head.is_null() {
            // SAFETY: registered caches are valid under the lock.
            unsafe { (*r.head).prev = tc };
        }
        r.head = tc;
        r.count += 1;
        drop(r);
        THREAD_EXIT.set((tc as *mut ThreadCache).cast());
    }

    /// Removes an exiting thread's (flushed) cache and returns its budget.
    pub(crate) fn unregister_cache(&self, tc: &mut ThreadCache) {
        let mut r = self.caches.lock();
        let me = tc as *mut ThreadCache;
        // SAFETY: registered caches are valid under the lock.
        unsafe {
            if tc.prev.is_null() {
                r.head = tc.next;
            } else {
                (*tc.prev).next = tc.next;
            }
            if !tc.next.is_null() {
                (*tc.next).prev = tc.prev;
            }
        }
        if r.victim == me {
            r.victim = ptr::null_mut();
        }
        r.unclaimed += tc.max_size() as isize;
        r.count -= 1;
    }

    /// Raises `tc`'s budget by one step: from the unclaimed budget, else by
    /// taking a step from another thread's cache.
    pub(crate) fn grow_cache_budget(&self, tc: &ThreadCache) {
        let mut r = self.caches.lock();
        if tc.max_size() >= MAX_THREAD_CACHE {
            return;
        }
        if r.unclaimed > 0 {
            let step = (r.unclaimed as usize).min(MIN_THREAD_CACHE);
            r.unclaimed -= step as isize;
            tc.set_max_size(tc.max_size() + step);
            return;
        }
        let me = tc as *const ThreadCache as *mut ThreadCache;
        for _ in 0..10 {
            let v = if r.victim.is_null() { r.head } else { r.victim };
            if v.is_null() {
                return;
            }
            // SAFETY: registered caches are valid under the lock.
            let victim = unsafe { &*v };
            r.victim = victim.next;
            if v == me || victim.max_size() <= r.min_per_thread {
                continue;
            }
            victim.set_max_size(victim.max_size() - MIN_THREAD_CACHE);
            tc.set_max_size(tc.max_size() + MIN_THREAD_CACHE);
            return;
        }
    }

    /// Changes the total thread-cache budget.
    pub(crate) fn set_max_total_thread_cache(&self, bytes: usize) {
        let mut r = self.caches.lock();
        r.unclaimed += bytes as isize - r.max_total as isize;
        r.max_total = bytes;
    }

    /// Takes every lock of the heap in the documented order (for fork, and
    /// for consistent statistics).
    pub(crate) fn lock_all(&self) {
        self.caches.raw_lock();
        for c in 0..NUM_CLASSES {
            self.transfer[c].fork_lock();
            self.central[c].fork_lock();
        }
        self.pages.raw_lock();
    }

    /// # Safety
    /// Paired with `lock_all` on the same thread (or its forked child).
    pub(crate) unsafe fn unlock_all(&self) {
        // SAFETY: forwarded: this thread (or its parent) holds them all.
        unsafe {
            self.pages.raw_unlock();
            for c in (0..NUM_CLASSES).rev() {
                self.central[c].fork_unlock();
                self.transfer[c].fork_unlock();
            }
            self.caches.raw_unlock();
        }
    }
}

static THREAD_EXIT: ThreadExitKey = ThreadExitKey::new();
static INIT: AtomicU8 = AtomicU8::new(0);

/// One-time setup: thread-exit key, fork handlers, settings from the
/// environment. Runs on the first slow path of the first thread.
#[inline]
pub(crate) fn init() {
    if INIT.load(Ordering::Acquire) != 2 {
        init_slow();
    }
}

/// Runs once. A call that finds initialisation under way (another thread's,
/// or its own re-entered through a libc call that allocates) goes on without
/// waiting: settings only tune behaviour.
#[cold]
fn init_slow() {
    if INIT
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    os::register_atfork(fork_prepare, fork_parent, fork_child);
    crate::config::apply_environment();
    INIT.store(2, Ordering::Release);
}

unsafe extern "C" fn fork_prepare() {
    GLOBAL.lock_all();
    crate::region::fork_lock();
    PAGEMAP.fork_lock();
    crate::span::SPANS.fork_lock();
    crate::meta::fork_lock();
}

unsafe extern "C" fn fork_parent() {
    // SAFETY: this thread took every lock in `fork_prepare`.
    unsafe { fork_release() };
}

unsafe extern "C" fn fork_child() {
    // SAFETY: the child's only thread is the one that took the locks.
    unsafe { fork_release() };
}

/// # Safety
/// The caller holds every lock `fork_prepare` takes.
unsafe fn fork_release() {
    // SAFETY: forwarded.
    unsafe {
        crate::meta::fork_unlock();
        crate::span::SPANS.fork_unlock();
        PAGEMAP.fork_unlock();
        crate::region::fork_unlock();
        GLOBAL.unlock_all();
    }
}

/// Sets the release rate (gperftools' `TCMALLOC_RELEASE_RATE`), in
/// thousandths: 1000 is the default, 0 never releases incrementally.
pub(crate) fn set_release_rate_milli(v: usize) {
    RELEASE_RATE_MILLI.store(v, Ordering::Relaxed);
}

/// The class and span of a pointer oxmalloc handed out: `(class, span)`,
/// class 0 for a large allocation. `None` when the pointer is not the start
/// of a live allocation of oxmalloc's.
#[inline]
pub(crate) fn lookup(p: *const u8) -> Option<(usize, *mut Span)> {
    let page = p as usize >> PAGE_SHIFT;
    let c = PAGEMAP.class(page);
    if c != 0 {
        return Some((c, ptr::null_mut()));
    }
    let s = PAGEMAP.get(page);
    // SAFETY: pagemap entries point at span records, which are never unmapped.
    if s.is_null() || unsafe { (*s).state != SpanState::InUse || (*s).addr() != p as usize } {
        return None;
    }
    Some((0, s))
}

/// Allocates `size` bytes aligned to `align` (a power of two) from the global
/// heap; null when memory ran out.
#[inline(always)]
pub(crate) fn alloc(size: usize, align: usize) -> *mut u8 {
    let c = size_class::class_for(size, align);
    if c != 0 {
        // SAFETY: the calling thread's own cache; `c` is a valid class.
        return unsafe { (*thread_cache::current()).alloc(c) };
    }
    alloc_large_or_fail(size, align)
}

#[inline(never)]
fn alloc_large_or_fail(size: usize, align: usize) -> *mut u8 {
    GLOBAL.alloc_large(size, align).0
}

/// Frees an object of class `c` (non-zero) into the calling thread's cache.
///
/// # Safety
/// `p` is a live object of class `c` of the global heap.
#[inline(always)]
pub(crate) unsafe fn dealloc_small(p: *mut u8, c: usize) {
    // SAFETY: forwarded from the caller; the calling thread's own cache.
    unsafe { (*thread_cache::current()).dealloc(p, c) };
}

/// [`lookup`] for a pointer the caller promises is live: stops the program
/// with a message naming `op` and the address when oxmalloc did not hand it
/// out.
#[inline]
pub(crate) fn owned(p: *const u8, op: &str) -> (usize, *mut Span) {
    match lookup(p) {
        Some(found) => found,
        None => os::fatal(format_args!(
            "{op} of a pointer oxmalloc does not own (address {:#x})",
            p as usize
        )),
    }
}

/// Frees `p`, of class `c` (or, for `c == 0`, the large allocation of span
/// `s`).
///
/// # Safety
/// `p` is a live allocation of the global heap with that class or span.
#[inline(always)]
unsafe fn free_known(p: *mut u8, c: usize, s: *mut Span) {
    if c != 0 {
        // SAFETY: a live object of class `c` (caller).
        unsafe { dealloc_small(p, c) }
    } else {
        // SAFETY: the in-use large span of `p` (caller).
        unsafe { GLOBAL.free_large(s) }
    }
}

/// Frees any pointer of the global heap, found through the pagemap.
///
/// # Safety
/// `p` is a live allocation of oxmalloc's (or null).
#[inline]
pub(crate) unsafe fn free(p: *mut u8) {
    if p.is_null() {
        return;
    }
    let (c, s) = owned(p, "free");
    // SAFETY: live (caller), with the class or span the pagemap gives.
    unsafe { free_known(p, c, s) }
}

/// Bytes usable at `p` (the class size, or the span length).
pub(crate) fn usable_size(p: *const u8) -> Option<usize> {
    match lookup(p)? {
        // SAFETY: `lookup` returns valid span records (never unmapped).
        (0, s) => Some(unsafe { (*s).bytes() }),
        (c, _) => Some(CLASSES[c].size),
    }
}

/// Resizes `p` (class `c`, or the large allocation of span `s`; `old` bytes
/// worth keeping; allocated with alignment `align`) to `new_size`: in place
/// when it can, else moved (the contents copied, `p` freed). Null, with `p`
/// untouched, when memory ran out.
///
/// # Safety
/// `p` is a live allocation of the global heap with that class or span.
pub(crate) unsafe fn realloc(
    p: *mut u8,
    c: usize,
    s: *mut Span,
    old: usize,
    new_size: usize,
    align: usize,
) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    if unsafe { resize_in_place(c, s, new_size, align) } {
        return p;
    }
    let q = alloc(new_size, align);
    if !q.is_null() {
        // SAFETY: distinct live blocks; copy what both hold, then free `p`
        // (live, with class `c` / span `s`).
        unsafe {
            ptr::copy_nonoverlapping(p, q, old.min(new_size));
            free_known(p, c, s);
        }
    }
    q
}

/// Resizes in place when possible: same class, or a large span that still
/// fits (shrinking it when the new size needs fewer pages). Returns true if
/// `p` now holds `new_size` bytes.
///
/// # Safety
/// `p` is a live allocation of the global heap of class `c` (0 = large, with
/// span `s`), allocated with alignment `align`.
unsafe fn resize_in_place(c: usize, s: *mut Span, new_size: usize, align: usize) -> bool {
    let nc = size_class::class_for(new_size, align);
    if c != 0 {
        return nc == c;
    }
    if nc != 0 || new_size <= MAX_SMALL_SIZE {
        return false;
    }
    let need = new_size.div_ceil(PAGE_SIZE);
    // SAFETY: `s` is the live span (caller).
    let have = unsafe { (*s).npages };
    if need > have {
        return false;
    }
    if need < have {
        // SAFETY: the span is in use and `0 < need < have`.
        return unsafe { GLOBAL.pages.lock().shrink(s, need) };
    }
    true
}
