//! A heap's back end: one page heap, one set of central lists and transfer
//! caches, the registry of its threads' caches, and its settings.
//!
//! The engine is written once, over a [`Source`] of pages: the global heap is
//! the heap whose source is "non-exclusive regions, then the system
//! allocator"; a heap bound to regions carves only from them. Heaps live in
//! a table of slots: slot 0 is the global heap (a `static`), the others are
//! records from the metadata arena, reused once a heap is retired.
//!
//! Lock order, outermost first: heap table, cache registry, a class's
//! transfer cache or central list, page heap, region table, pagemap growth,
//! span records, metadata arena.

use crate::central::{CentralFreeList, SpanSource};
use crate::os::{self, Callback, CallbackGuard};
use crate::page_heap::{PageHeap, PageHeapStats};
use crate::region::{self, RegionId, Source};
use crate::settings::{Settings, MAX_THREAD_CACHE, MIN_THREAD_CACHE};
use crate::size_class::{CLASSES, MAX_BATCH, NUM_CLASSES, PAGE_SHIFT, PAGE_SIZE};
use crate::span::{FreeObject, Span};
use crate::sync::{Mutex, RawLock};
use crate::transfer::TransferCaches;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Most heaps that can exist at once (the global heap included).
pub const MAX_HEAPS: usize = 256;

/// What a heap's cache registry knows of one thread cache: its byte count and
/// budget, and the links of the registry's list. A thread cache embeds one.
#[repr(C)]
pub(crate) struct CacheLink {
    /// Byte budget. Lowered by other threads stealing budget (under the
    /// registry's lock).
    max_size: AtomicUsize,
    /// Links in the registry's list (under the registry's lock).
    next: *mut CacheLink,
    prev: *mut CacheLink,
}

impl CacheLink {
    /// An unregistered link with no budget.
    pub(crate) const fn new() -> Self {
        Self {
            max_size: AtomicUsize::new(0),
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
        }
    }

    /// The byte budget.
    #[inline(always)]
    pub(crate) fn max_size(&self) -> usize {
        self.max_size.load(Ordering::Relaxed)
    }

    fn set_max_size(&self, v: usize) {
        self.max_size.store(v, Ordering::Relaxed);
    }
}

/// The threads' caches of a heap and their shared byte budget.
pub(crate) struct CacheRegistry {
    head: *mut CacheLink,
    /// Caches registered.
    count: usize,
    /// Budget not yet given to any cache (may go negative when the total is
    /// lowered).
    unclaimed: isize,
    /// Next cache to steal budget from.
    victim: *mut CacheLink,
}

// SAFETY: the raw pointers are followed only under the registry's lock, and
// point to caches that unregister (under that lock) before they go away.
unsafe impl Send for CacheRegistry {}

impl CacheRegistry {
    const fn new(total: usize) -> Self {
        Self {
            head: ptr::null_mut(),
            count: 0,
            unclaimed: total as isize,
            victim: ptr::null_mut(),
        }
    }

    /// Caches registered.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Calls `f` for every registered cache's link.
    pub(crate) fn for_each(&self, mut f: impl FnMut(*mut CacheLink)) {
        let mut c = self.head;
        while !c.is_null() {
            // SAFETY: registered links are valid until they unregister, which
            // needs the lock the caller holds.
            let next = unsafe { (*c).next };
            f(c);
            c = next;
        }
    }
}

/// Gives a heap bound to regions more memory when its regions are full: as
/// a pool that maps more device memory would, it may inject a new region
/// (exclusive, unbound) and return its id, which oxmalloc then binds to the
/// heap; `None` means no more memory, and the allocation fails.
///
/// Called with some of the heap's locks held: it must not allocate through
/// oxmalloc (one that does is stopped with a message). Any
/// `Fn(usize) -> Option<RegionId>` is a hook; its argument is the number of
/// bytes the allocation needs (a region at least that large, plus a little
/// for alignment, satisfies it).
pub trait GrowthHook: Send + Sync {
    /// Returns a new exclusive region of at least `bytes` bytes, or `None`.
    fn grow(&self, bytes: usize) -> Option<RegionId>;
}

impl<F: Fn(usize) -> Option<RegionId> + Send + Sync> GrowthHook for F {
    fn grow(&self, bytes: usize) -> Option<RegionId> {
        self(bytes)
    }
}

/// How often one allocation may call the growth hook.
const MAX_GROWTH_CALLS: usize = 4;

/// Growing large blocks from this size up move their pages with `mremap`
/// instead of copying their bytes (below it, copying is as fast, and each
/// move splits the kernel's mappings).
const MOVE_MIN_BYTES: usize = 1 << 20;

/// Figures of one heap, from a snapshot taken with all its locks held.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Totals {
    /// The page heap's counters.
    pub pages: PageHeapStats,
    /// Bytes of free objects in central lists (and span tails too short for
    /// an object).
    pub central: usize,
    /// Bytes of free objects in transfer caches.
    pub transfer: usize,
    /// Bytes of free objects in thread caches.
    pub thread_caches: usize,
    /// Thread caches registered.
    pub caches: usize,
    /// Bytes in objects the program holds.
    pub allocated: usize,
}

/// A heap's back end.
pub(crate) struct HeapCore {
    pub(crate) pages: Mutex<PageHeap>,
    pub(crate) central: [CentralFreeList; NUM_CLASSES],
    pub(crate) transfer: TransferCaches,
    pub(crate) caches: Mutex<CacheRegistry>,
    pub(crate) settings: Settings,
    /// The heap's slot in the heap table. Written before the heap is
    /// published and never changed while it is in use.
    slot: usize,
    /// Heaps bound to regions: called when they are full. Written before the
    /// heap is published.
    growth: Option<&'static dyn GrowthHook>,
}

// SAFETY: all mutable state is behind the heap's locks or atomic.
unsafe impl Sync for HeapCore {}

static GLOBAL: HeapCore = HeapCore::new(Source::Global, 0);

/// Heaps by slot; slot 0 (the global heap) is not stored here.
static HEAPS: [AtomicPtr<HeapCore>; MAX_HEAPS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_HEAPS];

/// Serialises publishing and unpublishing heaps (slots of `HEAPS`).
static SLOTS_LOCK: Mutex<()> = Mutex::new(());

/// Records of heaps bound to regions.
static RECORDS: crate::meta::Pool<HeapCore> = crate::meta::Pool::new();

impl SpanSource for HeapCore {
    fn alloc_span(&self, n: usize) -> *mut Span {
        self.alloc_span_with(n, 1, false)
    }

    unsafe fn free_span(&self, s: *mut Span) {
        os::check_reentry("free");
        // SAFETY: forwarded from the caller.
        unsafe { self.pages.lock().free(s, &self.settings) };
    }

    fn page_tag(&self) -> Option<usize> {
        Some(self.slot())
    }
}

/// Makes a heap bound to regions and publishes it in a free slot; `None`
/// when every slot is taken or metadata ran out.
pub(crate) fn create(growth: Option<&'static dyn GrowthHook>) -> Option<&'static HeapCore> {
    let _g = SLOTS_LOCK.lock();
    let slot = (1..MAX_HEAPS).find(|&i| HEAPS[i].load(Ordering::Relaxed).is_null())?;
    let p = RECORDS.take()?.as_ptr();
    // SAFETY: a record of the pool, ours alone.
    unsafe { HeapCore::init_at(p, slot, growth) };
    HEAPS[slot].store(p, Ordering::Release);
    // SAFETY: just published; records are never unmapped.
    Some(unsafe { &*p })
}

/// Unpublishes heap `h` and returns its record to the pool.
///
/// # Safety
/// Nothing uses `h` any more: no handle, no span, no registered cache.
pub(crate) unsafe fn dispose(h: &'static HeapCore) {
    let _g = SLOTS_LOCK.lock();
    HEAPS[h.slot].store(ptr::null_mut(), Ordering::Release);
    // SAFETY: the record came from the pool (caller: unused from now on).
    unsafe { RECORDS.give(core::ptr::NonNull::from(h)) };
}

/// The locks of the heap table and the pool of heap records (for fork), in
/// order.
pub(crate) fn table_locks() -> [&'static dyn RawLock; 2] {
    [&SLOTS_LOCK, RECORDS.lock()]
}

/// The global heap.
#[inline(always)]
pub(crate) fn global() -> &'static HeapCore {
    &GLOBAL
}

/// The heap in `slot`, if any.
pub(crate) fn by_slot(slot: usize) -> Option<&'static HeapCore> {
    if slot == 0 {
        return Some(&GLOBAL);
    }
    // SAFETY: published heaps are records of the metadata arena, never
    // unmapped.
    unsafe { HEAPS.get(slot)?.load(Ordering::Acquire).as_ref() }
}

impl HeapCore {
    const fn new(source: Source, slot: usize) -> Self {
        Self {
            pages: Mutex::new(PageHeap::new(source)),
            central: [const { CentralFreeList::new() }; NUM_CLASSES],
            transfer: TransferCaches::new(),
            caches: Mutex::new(CacheRegistry::new(
                crate::settings::DEFAULT_MAX_TOTAL_THREAD_CACHE,
            )),
            settings: Settings::new(),
            slot,
            growth: None,
        }
    }

    /// Makes a heap bound to regions in record `p`, for slot `slot`.
    ///
    /// # Safety
    /// `p` is a record of the metadata arena that nobody else uses.
    pub(crate) unsafe fn init_at(
        p: *mut HeapCore,
        slot: usize,
        growth: Option<&'static dyn GrowthHook>,
    ) {
        // SAFETY: `p` is valid and ours (caller); the value is built in
        // place field by field, as it is too large for small thread stacks
        // (and the transfer caches' slots are left untouched).
        unsafe {
            ptr::addr_of_mut!((*p).pages).write(Mutex::new(PageHeap::new(Source::Bound(slot))));
            for c in 0..NUM_CLASSES {
                ptr::addr_of_mut!((*p).central[c]).write(CentralFreeList::new());
            }
            TransferCaches::init_at(ptr::addr_of_mut!((*p).transfer));
            ptr::addr_of_mut!((*p).caches).write(Mutex::new(CacheRegistry::new(
                crate::settings::DEFAULT_MAX_TOTAL_THREAD_CACHE,
            )));
            ptr::addr_of_mut!((*p).settings).write(Settings::new());
            ptr::addr_of_mut!((*p).slot).write(slot);
            ptr::addr_of_mut!((*p).growth).write(growth);
        }
    }

    /// The heap's slot (0 for the global heap).
    #[inline(always)]
    pub(crate) fn slot(&self) -> usize {
        self.slot
    }

    /// True for the global heap.
    #[inline(always)]
    pub(crate) fn is_global(&self) -> bool {
        ptr::eq(self, &GLOBAL)
    }

    /// Takes up to `out.len()` objects of class `c` into `out`: from the
    /// transfer cache when it has any, else from the central list. Returns
    /// how many; none only when memory ran out.
    pub(crate) fn fetch(&self, c: usize, out: &mut [*mut FreeObject]) -> usize {
        os::check_reentry("malloc");
        match self.transfer.remove(c, out) {
            0 => self.central[c].remove_range(c, out, self),
            n => n,
        }
    }

    /// Takes back `objs`, free objects of class `c`: into the transfer cache
    /// as far as it has room, the rest onto their spans.
    ///
    /// # Safety
    /// The objects are free objects of class `c` of this heap, each given
    /// once.
    pub(crate) unsafe fn give(&self, c: usize, objs: &[*mut FreeObject]) {
        os::check_reentry("free");
        let n = self.transfer.insert(c, objs);
        if n < objs.len() {
            // SAFETY: forwarded from the caller.
            unsafe { self.central[c].insert_range(c, &objs[n..], self) };
        }
    }

    /// One object of class `c` without a thread cache (the thread is exiting,
    /// or a call re-entered while its cache was being set up).
    pub(crate) fn alloc_uncached(&self, c: usize) -> *mut u8 {
        let mut o = [ptr::null_mut()];
        if self.fetch(c, &mut o) == 0 {
            return ptr::null_mut();
        }
        crate::hardened::handed_out(o[0].cast(), c);
        o[0].cast()
    }

    /// Frees one object of class `c` without a thread cache.
    ///
    /// # Safety
    /// `p` is a live object of class `c` of this heap.
    pub(crate) unsafe fn free_uncached(&self, p: *mut u8, c: usize) {
        let _errno = os::KeepErrno::new();
        // SAFETY: a live object (caller), now free.
        unsafe { self.give(c, &[p.cast()]) };
    }

    /// A span of `n` pages in use whose start is a multiple of `align_pages`
    /// pages, or null when memory ran out.
    /// When memory ran out, a heap first takes back the objects parked in
    /// its transfer caches (whose spans may then be free) if `may_flush`
    /// (the caller holds no central list's lock); a heap bound to regions
    /// whose regions are full then asks its growth hook for another (with the
    /// page-heap lock released).
    pub(crate) fn alloc_span_with(
        &self,
        n: usize,
        align_pages: usize,
        may_flush: bool,
    ) -> *mut Span {
        os::check_reentry("malloc");
        let s = self
            .pages
            .lock()
            .alloc_aligned(n, align_pages, &self.settings);
        if !s.is_null() {
            return s;
        }
        if may_flush {
            self.flush_transfer_caches();
        }
        for _ in 0..=MAX_GROWTH_CALLS {
            let s = self
                .pages
                .lock()
                .alloc_aligned(n, align_pages, &self.settings);
            if !s.is_null() {
                return s;
            }
            let Some(hook) = self.growth else {
                return s;
            };
            let bytes = n.saturating_add(align_pages).saturating_mul(PAGE_SIZE);
            let id = {
                let _guard = CallbackGuard::enter(Callback::GrowthHook);
                hook.grow(bytes)
            };
            match id {
                Some(id) if region::bind(id, self.slot).is_ok() => {}
                _ => return ptr::null_mut(),
            }
        }
        ptr::null_mut()
    }

    /// A span of `n` pages in use, aligned to `align_pages`, for a large
    /// allocation (no central lock held): see [`HeapCore::alloc_span_with`].
    pub(crate) fn alloc_span(&self, n: usize, align_pages: usize) -> *mut Span {
        self.alloc_span_with(n, align_pages, true)
    }

    /// A large allocation: a whole span. Returns the pointer and whether its
    /// memory is known to be zero.
    pub(crate) fn alloc_large(&self, size: usize, align: usize) -> (*mut u8, bool) {
        let Some(bytes) = size.checked_add(PAGE_SIZE - 1) else {
            return (ptr::null_mut(), false);
        };
        let n = (bytes >> PAGE_SHIFT).max(1);
        let align_pages = (align >> PAGE_SHIFT).max(1);
        let s = self.alloc_span(n, align_pages);
        if s.is_null() {
            return (ptr::null_mut(), false);
        }
        // SAFETY: a fresh in-use span.
        unsafe { ((*s).addr() as *mut u8, (*s).zeroed) }
    }

    /// Grows the large allocation of span `s` to hold `size` bytes (more
    /// than its span has), allocated with alignment `align`: into the free
    /// pages right after it when it can, else into a new span with a quarter
    /// more room (a block that grew tends to grow again, and this keeps a
    /// run of growing reallocs linear). A big block of movable memory moves
    /// with `mremap`, which moves page-table entries instead of bytes.
    /// Returns the block's new address, or null with `s` untouched when
    /// memory ran out.
    ///
    /// # Safety
    /// `s` is the in-use large span of a live allocation of this heap, which
    /// starts at the span's start.
    pub(crate) unsafe fn grow_large(&self, s: *mut Span, size: usize, align: usize) -> *mut u8 {
        os::check_reentry("realloc");
        let need = size.div_ceil(PAGE_SIZE);
        // SAFETY: `s` is in use and ours (caller).
        if unsafe { self.pages.lock().grow_in_place(s, need) } {
            // SAFETY: as above.
            return unsafe { (*s).addr() } as *mut u8;
        }
        let align_pages = (align >> PAGE_SHIFT).max(1);
        let mut t = self.alloc_span(need.saturating_add(need / 4), align_pages);
        if t.is_null() {
            t = self.alloc_span(need, align_pages);
        }
        if t.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: `s` (caller) and `t` (fresh) are distinct in-use spans.
        unsafe {
            let (src, dst, len) = ((*s).addr(), (*t).addr(), (*s).bytes());
            if len >= MOVE_MIN_BYTES
                && region::movable((*s).region)
                && region::movable((*t).region)
                && os::move_pages(src, dst, len)
            {
                // The old range stays mapped, without pages.
                self.pages.lock().free_moved(s);
            } else {
                ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, len);
                let _errno = os::KeepErrno::new();
                let mut pages = self.pages.lock();
                if len >= MOVE_MIN_BYTES {
                    // Never two resident copies of a big block.
                    pages.free_and_release(s);
                } else {
                    pages.free(s, &self.settings);
                }
            }
            dst as *mut u8
        }
    }

    /// Frees the large allocation whose span is `s`.
    ///
    /// # Safety
    /// `s` is the in-use large span of a live allocation of this heap.
    pub(crate) unsafe fn free_large(&self, s: *mut Span) {
        let _errno = os::KeepErrno::new();
        // SAFETY: forwarded from the caller.
        unsafe { SpanSource::free_span(self, s) };
    }

    /// Registers a new thread cache and gives it a starting budget.
    ///
    /// # Safety
    /// `link` is valid and stays valid until [`HeapCore::unregister_cache`].
    pub(crate) unsafe fn register_cache(&self, link: *mut CacheLink) {
        let mut r = self.caches.lock();
        let start = if r.unclaimed > 0 {
            (r.unclaimed as usize).min(MIN_THREAD_CACHE)
        } else {
            self.settings.min_per_thread_cache()
        };
        r.unclaimed -= start as isize;
        // SAFETY: `link` is valid (caller); registered links are valid under
        // the lock.
        unsafe {
            (*link).set_max_size(start);
            (*link).prev = ptr::null_mut();
            (*link).next = r.head;
            if !r.head.is_null() {
                (*r.head).prev = link;
            }
        }
        r.head = link;
        r.count += 1;
    }

    /// Removes a (flushed) cache and returns its budget.
    ///
    /// # Safety
    /// `link` is registered with this heap; the caller holds `r`, this heap's
    /// registry lock.
    pub(crate) unsafe fn unregister_cache_locked(r: &mut CacheRegistry, link: *mut CacheLink) {
        // SAFETY: registered links are valid under the lock.
        unsafe {
            let l = &mut *link;
            if l.prev.is_null() {
                r.head = l.next;
            } else {
                (*l.prev).next = l.next;
            }
            if !l.next.is_null() {
                (*l.next).prev = l.prev;
            }
            if r.victim == link {
                r.victim = ptr::null_mut();
            }
            r.unclaimed += l.max_size() as isize;
            l.next = ptr::null_mut();
            l.prev = ptr::null_mut();
        }
        r.count -= 1;
    }

    /// Raises the budget of `link` by one step: from the unclaimed budget,
    /// else by taking a step from another thread's cache.
    pub(crate) fn grow_cache_budget(&self, link: *mut CacheLink) {
        let mut r = self.caches.lock();
        // SAFETY: `link` is registered, so valid under the lock.
        let me = unsafe { &*link };
        if me.max_size() >= MAX_THREAD_CACHE {
            return;
        }
        if r.unclaimed > 0 {
            let step = (r.unclaimed as usize).min(MIN_THREAD_CACHE);
            r.unclaimed -= step as isize;
            me.set_max_size(me.max_size() + step);
            return;
        }
        let floor = self.settings.min_per_thread_cache();
        for _ in 0..10 {
            let v = if r.victim.is_null() { r.head } else { r.victim };
            if v.is_null() {
                return;
            }
            // SAFETY: registered links are valid under the lock.
            let victim = unsafe { &*v };
            r.victim = victim.next;
            if v == link || victim.max_size() <= floor {
                continue;
            }
            victim.set_max_size(victim.max_size() - MIN_THREAD_CACHE);
            me.set_max_size(me.max_size() + MIN_THREAD_CACHE);
            return;
        }
    }

    /// Changes the total thread-cache budget.
    pub(crate) fn set_max_total_thread_cache(&self, bytes: usize) {
        let mut r = self.caches.lock();
        let old = self.settings.swap_max_total_thread_cache(bytes);
        r.unclaimed += bytes as isize - old as isize;
    }

    /// The heap's figures; the caller holds every lock of the heap through
    /// [`HeapCore::lock_all`]. `cached` tells the bytes held in the caches of
    /// a registry.
    ///
    /// # Safety
    /// As above.
    pub(crate) unsafe fn totals_held(&self, cached: impl Fn(&CacheRegistry) -> usize) -> Totals {
        let mut t = Totals::default();
        for (c, info) in CLASSES.iter().enumerate().skip(1) {
            // SAFETY: forwarded from the caller.
            let ((objects, spans), parked) =
                unsafe { (self.central[c].counts_held(), self.transfer.len_held(c)) };
            let tail = info.pages * PAGE_SIZE - info.objects_per_span() * info.size;
            t.central += objects * info.size + spans * tail;
            t.transfer += parked * info.size;
        }
        // SAFETY: forwarded from the caller.
        let (r, p) = unsafe { (self.caches.held(), self.pages.held()) };
        t.thread_caches = cached(r);
        t.caches = r.count();
        t.pages = p.stats();
        // A thread's fast path updates its cache's size without a lock: clamp
        // so the derived figures never underflow mid-update.
        let in_use = t.pages.in_use_bytes;
        let free_small = (t.central + t.transfer).min(in_use);
        t.thread_caches = t.thread_caches.min(in_use - free_small);
        t.allocated = in_use - free_small - t.thread_caches;
        t
    }

    /// [`HeapCore::totals_held`], taking and releasing the locks.
    pub(crate) fn totals(&self, cached: impl Fn(&CacheRegistry) -> usize) -> Totals {
        self.lock_all();
        // SAFETY: `lock_all` holds every lock `totals_held` reads through.
        let t = unsafe { self.totals_held(cached) };
        // SAFETY: taken by `lock_all` on this thread just above.
        unsafe { self.unlock_all() };
        t
    }

    /// Moves every object of the transfer caches back to the central lists
    /// (so that spans whose objects all came back return to the page heap).
    pub(crate) fn flush_transfer_caches(&self) {
        let mut objs = [ptr::null_mut(); MAX_BATCH];
        for c in 1..NUM_CLASSES {
            loop {
                let n = self.transfer.remove(c, &mut objs);
                if n == 0 {
                    break;
                }
                // SAFETY: free objects of class `c` of this heap.
                unsafe { self.central[c].insert_range(c, &objs[..n], self) };
            }
        }
    }

    /// Gives every free page back (as each region's policy allows), after
    /// moving the transfer caches' objects to their spans so that spans
    /// whose objects all came back are free too. Returns the pages released.
    pub(crate) fn release_free_memory(&self) -> usize {
        self.flush_transfer_caches();
        self.pages.lock().release_at_least(usize::MAX)
    }

    /// Forgets every object of the transfer caches and central lists at once
    /// (for destroying a heap: its spans are reclaimed wholesale).
    pub(crate) fn forget_small_objects(&self) {
        self.transfer.clear();
        for c in 1..NUM_CLASSES {
            self.central[c].clear();
        }
    }

    /// Calls `f` with every lock of the heap in the documented order.
    pub(crate) fn for_each_lock(&self, f: &mut dyn FnMut(&dyn RawLock)) {
        f(&self.caches);
        for c in 0..NUM_CLASSES {
            f(self.transfer.lock(c));
            f(self.central[c].lock());
        }
        f(&self.pages);
    }

    /// Takes every lock of the heap in the documented order (for fork, and
    /// for consistent statistics).
    pub(crate) fn lock_all(&self) {
        self.for_each_lock(&mut |l| l.raw_lock());
    }

    /// # Safety
    /// Paired with `lock_all` on the same thread (or its forked child).
    pub(crate) unsafe fn unlock_all(&self) {
        // SAFETY: forwarded: this thread (or its parent) holds them all.
        self.for_each_lock(&mut |l| unsafe { l.raw_unlock() });
    }
}
