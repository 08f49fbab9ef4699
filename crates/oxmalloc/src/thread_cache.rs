//! Per-thread caches: for each heap a thread uses, one free list per size
//! class, sized dynamically; and the thread state that finds them.
//!
//! A thread's state lives in a few words of static thread-local storage,
//! reached with one initial-exec TLS access (declared in `global_asm!`,
//! since stable Rust offers no `#[thread_local]`): a pointer to its cache of
//! the global heap, a pointer to its table of caches of other heaps, and a
//! status. Both pointers start at shared sentinels: [`EMPTY`], a cache whose
//! lists are all empty and have room for nothing, and a table whose every
//! entry is [`EMPTY`]. So the fast paths never test for null: the first
//! call of a thread for a heap misses, and the slow path makes the real
//! cache (a record of the metadata arena) and registers it with the heap.
//! The sentinels are never written: a push checks for room first.
//!
//! Sizing follows TCMalloc, with the byte budget kept on the lists' limits
//! rather than on their contents, so that the fast paths count nothing but
//! a list's length: a list's `max_length` starts at 0 and grows by one per
//! miss up to a batch, then by batches (slow start); a list that keeps
//! overflowing shrinks. The sum of `max_length × size` (the capacity) stays
//! within the cache's budget: before a limit grows past it, the cache asks
//! its heap for more budget (stealing from other threads once the total is
//! spent), then scavenges half of each list's low-water mark and shrinks
//! the limits of long lists.
//!
//! At thread exit (a pthread key destructor) every cache of the thread is
//! flushed to its heap and unregistered; the status becomes "dead", and
//! later calls of that thread (other destructors freeing memory) go straight
//! to the heaps, never rebuilding a cache.

use crate::cache_home::CacheHome;
use crate::hardened;
use crate::heap::{self, CacheLink, HeapCore, MAX_HEAPS};
use crate::meta::Pool;
use crate::os::{KeepErrno, ThreadExitKey};
use crate::size_class::{class_size, ClassInfo, CLASSES, MAX_BATCH, NUM_CLASSES};
use crate::span::FreeObject;
use crate::sync::RawLock;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

/// Longest a list may grow.
const MAX_DYNAMIC_LENGTH: u32 = 8192;
/// Overflows tolerated before a list shrinks.
const MAX_OVERAGES: u32 = 3;

/// Raises over the budget refused without a look at it after one failed.
const REFUSALS: u32 = 16;

/// The thread has no caches yet.
const UNINIT: u8 = 0;
/// The thread's caches are in use.
const ACTIVE: u8 = 1;
/// A cache is being set up (calls made meanwhile bypass caches).
const INITIALIZING: u8 = 2;
/// The thread is exiting: its caches were flushed and are bypassed.
const DEAD: u8 = 3;

/// The free list of one class.
#[repr(C)]
struct FreeList {
    head: *mut FreeObject,
    /// Objects on the list (written by the owning thread only; atomic so
    /// that statistics may read it from other threads).
    length: AtomicU32,
    max_length: u32,
    /// The shortest the list got since the last scavenge (kept next to
    /// `length`, so the fast path touches one place per class).
    low_water: u32,
    /// Overflows since the list last shrank.
    overages: u32,
}

impl FreeList {
    const fn new() -> Self {
        FreeList {
            head: ptr::null_mut(),
            length: AtomicU32::new(0),
            max_length: 0,
            low_water: 0,
            overages: 0,
        }
    }
}

/// A thread's cache for one heap.
#[repr(C)]
pub(crate) struct ThreadCache {
    lists: [FreeList; NUM_CLASSES],
    /// Budget and registry links (the heap's registry reads and adjusts
    /// them).
    link: CacheLink,
    /// Bytes the lists may hold: the sum of `max_length × size`, kept within
    /// the budget when a limit grows, so the fast paths count nothing.
    capacity: usize,
    /// Raises over the budget to refuse before trying it again: a thread
    /// at its budget takes the registry lock (and walks every list in a
    /// scavenge) at most once per [`REFUSALS`] such raises, not on every
    /// refill or overflow.
    refused: u32,
    /// The heap this cache serves (set when the cache is made; atomic
    /// because an exiting thread may read a record another thread reuses).
    heap: AtomicPtr<HeapCore>,
    /// The place of the owning thread's state that points at this cache.
    home: *const CacheHome<ThreadCache>,
}

// SAFETY: a cache is used by its owning thread; other threads reach it only
// through its heap's registry, under that registry's lock, for the fields the
// registry owns (atomics) or to drain a cache whose owner cannot touch it.
unsafe impl Sync for ThreadCache {}

/// The empty cache every thread starts with: never written.
static EMPTY: ThreadCache = ThreadCache {
    lists: [const { FreeList::new() }; NUM_CLASSES],
    link: CacheLink::new(),
    capacity: 0,
    refused: 0,
    heap: AtomicPtr::new(ptr::null_mut()),
    home: ptr::null(),
};

#[inline(always)]
fn empty() -> *mut ThreadCache {
    ptr::addr_of!(EMPTY).cast_mut()
}

fn empty_table() -> *mut HeapTable {
    ptr::addr_of!(EMPTY_TABLE).cast_mut()
}

/// A thread's caches of heaps other than the global one, by heap slot.
#[repr(C)]
pub(crate) struct HeapTable {
    caches: [CacheHome<ThreadCache>; MAX_HEAPS],
}

/// The table every thread starts with: every entry is [`EMPTY`]; never
/// written.
static EMPTY_TABLE: HeapTable = HeapTable {
    caches: [const { CacheHome::new(ptr::addr_of!(EMPTY).cast_mut()) }; MAX_HEAPS],
};

/// A thread's state, in static TLS.
#[repr(C)]
pub(crate) struct ThreadState {
    /// The thread's cache of the global heap, or [`EMPTY`].
    cache: CacheHome<ThreadCache>,
    /// The thread's table of caches of other heaps, or [`EMPTY_TABLE`].
    table: AtomicPtr<HeapTable>,
    /// UNINIT, ACTIVE, INITIALIZING or DEAD.
    status: u8,
}

static CACHES: Pool<ThreadCache> = Pool::new();
static TABLES: Pool<HeapTable> = Pool::new();
static THREAD_EXIT: ThreadExitKey = ThreadExitKey::new();

impl ThreadCache {
    /// Takes an object of class `c` from the cache; null when its list is
    /// empty (the caller then takes the slow path).
    ///
    /// # Safety
    /// Called only by the thread owning the cache (or on [`EMPTY`]),
    /// `0 < c < NUM_CLASSES`.
    #[inline(always)]
    pub(crate) unsafe fn pop(&mut self, c: usize) -> *mut u8 {
        debug_assert!(c > 0 && c < NUM_CLASSES);
        // SAFETY: `c < NUM_CLASSES` (caller), so the index is in bounds.
        let l = unsafe { self.lists.get_unchecked_mut(c) };
        let h = l.head;
        if h.is_null() {
            return h.cast();
        }
        // (The hardened build checks the object before following its link.)
        hardened::handed_out(h.cast(), c);
        // SAFETY: a cached object holds the link to the next one.
        l.head = unsafe { FreeObject::next_checked_before(h) };
        let n = l.length.load(Ordering::Relaxed) - 1;
        l.length.store(n, Ordering::Relaxed);
        if n < l.low_water {
            l.low_water = n;
        }
        h.cast()
    }

    /// Puts free object `p` of class `c` in the cache; false (and nothing
    /// done) when its list is full, for the caller's slow path.
    ///
    /// # Safety
    /// Called only by the thread owning the cache (or on [`EMPTY`]);
    /// `0 < c < NUM_CLASSES`; `p` is a free object of class `c` of the
    /// cache's heap.
    #[inline(always)]
    pub(crate) unsafe fn push(&mut self, p: *mut u8, c: usize) -> bool {
        debug_assert!(c > 0 && c < NUM_CLASSES);
        // SAFETY: `c < NUM_CLASSES` (caller), so the index is in bounds.
        let l = unsafe { self.lists.get_unchecked_mut(c) };
        let n = l.length.load(Ordering::Relaxed);
        if n >= l.max_length {
            return false;
        }
        let o = p.cast::<FreeObject>();
        // SAFETY: the object is free and at least a word long.
        unsafe { FreeObject::link(o, l.head) };
        l.head = o;
        l.length.store(n + 1, Ordering::Relaxed);
        true
    }

    fn heap(&self) -> &'static HeapCore {
        // SAFETY: set when the cache is made, to a heap record that is never
        // unmapped and outlives the cache's registration.
        unsafe { &*self.heap.load(Ordering::Relaxed) }
    }

    fn link_ptr(&mut self) -> *mut CacheLink {
        &mut self.link
    }

    fn length(&self, c: usize) -> usize {
        self.lists[c].length.load(Ordering::Relaxed) as usize
    }

    /// Lets list `c` hold `delta` more objects, within the byte budget:
    /// asks the heap for more budget, then (if `scavenge`) scavenges idle
    /// lists, when the capacity would pass it. False (nothing changed) when
    /// it still would.
    fn raise(&mut self, c: usize, delta: u32, scavenge: bool) -> bool {
        let add = delta as usize * class_size(c);
        if self.capacity + add > self.link.max_size() {
            if self.refused > 0 {
                self.refused -= 1;
                return false;
            }
            let link = self.link_ptr();
            self.heap().grow_cache_budget(link);
            if self.capacity + add > self.link.max_size() && scavenge {
                self.scavenge();
            }
            if self.capacity + add > self.link.max_size() {
                self.refused = REFUSALS;
                return false;
            }
        }
        self.lists[c].max_length += delta;
        self.capacity += add;
        true
    }

    /// Lets list `c` hold `delta` fewer objects (it holds no more than that).
    fn lower(&mut self, c: usize, delta: u32) {
        self.lists[c].max_length -= delta;
        self.capacity -= delta as usize * class_size(c);
    }

    /// Refills list `c` from the heap and returns one object (null when
    /// memory ran out); the list's length limit grows with each miss (slow
    /// start: by one up to a batch, then by batches).
    fn refill(&mut self, c: usize) -> *mut u8 {
        let ClassInfo {
            batch,
            first_refill: line,
            ..
        } = CLASSES[c];
        let m = self.lists[c].max_length as usize;
        let want = m.clamp(line, batch);
        let mut objs = [ptr::null_mut(); MAX_BATCH];
        let n = self.heap().fetch(c, &mut objs[..want]);
        if n == 0 {
            return ptr::null_mut();
        }
        let l = &mut self.lists[c];
        for &o in objs[1..n].iter().rev() {
            // SAFETY: a free object of class `c`, ours now.
            unsafe { FreeObject::link(o, l.head) };
            l.head = o;
        }
        l.length.store(
            l.length.load(Ordering::Relaxed) + n as u32 - 1,
            Ordering::Relaxed,
        );
        let first = objs[0];
        hardened::handed_out(first.cast(), c);
        let grow = if m < line {
            line - m
        } else if m < batch {
            1
        } else {
            (m + batch).min(MAX_DYNAMIC_LENGTH as usize) / batch * batch - m
        };
        // Up to a batch (so that refills move whole batches) the limit is
        // worth a scavenge; past it only if the budget has room: a thread
        // that only allocates keeps its lists nearly empty, and raising
        // their limits would only crowd out lists that hold objects.
        if grow > 0 {
            self.raise(c, grow as u32, m < batch);
        }
        first.cast()
    }

    /// List `c` is full and `p` is to be freed: makes room by giving a batch
    /// back (shrinking a list that keeps overflowing, growing a short one),
    /// then keeps `p`, or gives it back too when there is still no room.
    ///
    /// # Safety
    /// As for [`ThreadCache::push`], on the thread's own (non-sentinel) cache.
    unsafe fn overflow(&mut self, p: *mut u8, c: usize) {
        let _errno = KeepErrno::new();
        let batch = CLASSES[c].batch as u32;
        if self.length(c) > 0 {
            self.release(c, batch as usize);
        }
        let l = &mut self.lists[c];
        if l.max_length < batch {
            self.raise(c, 1, true);
        } else if l.max_length > batch {
            l.overages += 1;
            if l.overages > MAX_OVERAGES {
                l.overages = 0;
                self.lower(c, batch);
            }
        }
        // SAFETY: forwarded from the caller.
        if !unsafe { self.push(p, c) } {
            // SAFETY: `p` is a free object of class `c` (caller).
            unsafe { self.heap().give(c, &[p.cast()]) };
        }
    }

    /// Gives up to `n` objects of list `c` back to the heap.
    fn release(&mut self, c: usize, n: usize) {
        let len = self.length(c);
        let n = n.min(len);
        let heap = self.heap();
        let l = &mut self.lists[c];
        let mut objs = [ptr::null_mut(); MAX_BATCH];
        let mut left = n;
        while left > 0 {
            let k = left.min(MAX_BATCH);
            for o in &mut objs[..k] {
                *o = l.head;
                // SAFETY: the list holds at least `left` linked objects.
                l.head = unsafe { FreeObject::next(l.head, c) };
            }
            // SAFETY: `k` free objects of class `c`, off the list.
            unsafe { heap.give(c, &objs[..k]) };
            left -= k;
        }
        let rest = (len - n) as u32;
        l.length.store(rest, Ordering::Relaxed);
        if rest < l.low_water {
            l.low_water = rest;
        }
    }

    /// Over budget: give back half of what each list did not need since the
    /// last scavenge, and shrink the limits of lists longer than a batch.
    #[cold]
    #[inline(never)]
    fn scavenge(&mut self) {
        let _errno = KeepErrno::new();
        for (c, info) in CLASSES.iter().enumerate().skip(1) {
            let lw = self.lists[c].low_water;
            if lw > 0 {
                self.release(c, (lw as usize).div_ceil(2));
                let batch = info.batch as u32;
                let m = self.lists[c].max_length;
                if m > batch {
                    self.lower(c, (m - batch).min(batch));
                }
            }
            let l = &mut self.lists[c];
            l.low_water = l.length.load(Ordering::Relaxed);
        }
    }

    /// Gives every cached object back to the heap.
    pub(crate) fn flush(&mut self) {
        for c in 1..NUM_CLASSES {
            self.release(c, self.length(c));
            self.lists[c].low_water = 0;
        }
    }

    /// Bytes held (read by statistics from any thread: each list's length is
    /// read once, atomically).
    pub(crate) fn size(&self) -> usize {
        CLASSES
            .iter()
            .zip(&self.lists)
            .skip(1)
            .map(|(info, l)| l.length.load(Ordering::Relaxed) as usize * info.size)
            .sum()
    }
}

/// Bytes held in the caches registered with a heap; the caller holds the
/// heap's registry lock, given as `r`.
pub(crate) fn cached_bytes(r: &heap::CacheRegistry) -> usize {
    let mut n = 0;
    for_each_cache(r, |tc| n += tc.size());
    n
}

/// Makes a cache for `heap`, pointed at by `home`, and registers it.
fn make_cache(heap: &'static HeapCore, home: *const CacheHome<ThreadCache>) -> *mut ThreadCache {
    let Some(rec) = CACHES.take() else {
        return ptr::null_mut();
    };
    let tc = rec.as_ptr();
    // SAFETY: a record of the pool, ours alone, but for `heap`: a thread
    // exiting may still read it from this reused record (`CacheHome::claim`),
    // so it is stored atomically rather than written over; a fresh record's
    // is zero, a valid null. Every other field is written.
    unsafe {
        ptr::addr_of_mut!((*tc).lists).write([const { FreeList::new() }; NUM_CLASSES]);
        ptr::addr_of_mut!((*tc).link).write(CacheLink::new());
        ptr::addr_of_mut!((*tc).capacity).write(0);
        ptr::addr_of_mut!((*tc).refused).write(0);
        ptr::addr_of_mut!((*tc).home).write(home);
        (*tc)
            .heap
            .store(ptr::from_ref(heap).cast_mut(), Ordering::Relaxed);
        heap.register_cache(ptr::addr_of_mut!((*tc).link));
    }
    tc
}

/// Free bytes in the calling thread's cache of the global heap; 0 when it
/// has none.
pub(crate) fn current_size() -> usize {
    // SAFETY: the calling thread's own cache, or the sentinel (size 0).
    unsafe { (*global_cache()).size() }
}

/// Flushes and unregisters `tc`, points its home back at [`EMPTY`], and
/// returns the record to the pool.
///
/// # Safety
/// `tc` is a registered cache that its owner cannot use meanwhile (it is the
/// calling thread's own, or its owner holds no reference to its heap); the
/// caller holds `r`, the registry lock of the cache's heap.
unsafe fn retire_locked(r: &mut heap::CacheRegistry, tc: *mut ThreadCache) {
    // SAFETY: forwarded from the caller.
    unsafe {
        (*tc).flush();
        HeapCore::unregister_cache_locked(r, ptr::addr_of_mut!((*tc).link));
        (*(*tc).home).clear(empty());
        CACHES.give(NonNull::new_unchecked(tc));
    }
}

/// Flushes every thread's cache of `heap` back to the heap and unregisters
/// it (for retiring the heap).
///
/// # Safety
/// No thread can use a cache of `heap` meanwhile: nothing holds a handle to
/// the heap, and the global entry points never use its caches.
pub(crate) unsafe fn retire_caches_of(heap: &'static HeapCore) {
    let mut r = heap.caches.lock();
    let off = core::mem::offset_of!(ThreadCache, link);
    let mut all: [*mut ThreadCache; 64] = [ptr::null_mut(); 64];
    loop {
        let mut n = 0;
        r.for_each(|l| {
            if n < all.len() {
                // SAFETY: every registered link is the `link` field of a cache.
                all[n] = unsafe { l.cast::<u8>().sub(off).cast::<ThreadCache>() };
                n += 1;
            }
        });
        if n == 0 {
            return;
        }
        for &tc in &all[..n] {
            // SAFETY: registered with `heap`, unusable by its owner (caller).
            unsafe { retire_locked(&mut r, tc) };
        }
    }
}

/// In a forked child: unregisters the caches of the threads that did not
/// make it into the child (their objects are lost, as in TCMalloc: a cache
/// its owner was changing at the fork may be inconsistent), so the counts and
/// budgets describe the child's one thread.
pub(crate) fn forget_other_threads(heap: &'static HeapCore) {
    let mine = if heap.is_global() {
        global_cache()
    } else {
        heap_cache(heap.slot())
    };
    let mut r = heap.caches.lock();
    let off = core::mem::offset_of!(ThreadCache, link);
    loop {
        let mut other: *mut ThreadCache = ptr::null_mut();
        r.for_each(|l| {
            // SAFETY: every registered link is the `link` field of a cache.
            let tc = unsafe { l.cast::<u8>().sub(off).cast::<ThreadCache>() };
            if tc != mine && other.is_null() {
                other = tc;
            }
        });
        if other.is_null() {
            return;
        }
        // SAFETY: a registered cache whose thread does not exist here.
        unsafe {
            HeapCore::unregister_cache_locked(&mut r, ptr::addr_of_mut!((*other).link));
            CACHES.give(NonNull::new_unchecked(other));
        }
    }
}

/// Empties every thread's cache of `heap` without giving the objects back
/// (for destroying the heap: their spans are reclaimed wholesale).
///
/// # Safety
/// As for [`retire_caches_of`].
pub(crate) unsafe fn discard_caches_of(heap: &'static HeapCore) {
    let r = heap.caches.lock();
    let off = core::mem::offset_of!(ThreadCache, link);
    r.for_each(|l| {
        // SAFETY: every registered link is the `link` field of a cache that
        // its owner cannot use meanwhile (caller).
        let tc = unsafe { &mut *l.cast::<u8>().sub(off).cast::<ThreadCache>() };
        for l in tc.lists.iter_mut() {
            l.head = ptr::null_mut();
            l.length.store(0, Ordering::Relaxed);
            l.low_water = 0;
        }
    });
}

/// The calling thread's cache for `heap`, made if needed; `None` when the
/// thread is exiting or is setting up a cache (a re-entrant call), or
/// metadata ran out: the caller then bypasses caches.
fn own_cache(heap: &'static HeapCore) -> Option<NonNull<ThreadCache>> {
    // SAFETY: the calling thread's own state.
    let st = unsafe { &mut *tls::state() };
    let mut home: *const CacheHome<ThreadCache> = if heap.is_global() {
        &st.cache
    } else {
        // SAFETY: the thread's table or the sentinel, `MAX_HEAPS` long.
        unsafe { &(*st.table.load(Ordering::Relaxed)).caches[heap.slot()] }
    };
    // SAFETY: `home` is a word of the thread's state or table.
    let c = unsafe { (*home).get() };
    if c != empty() {
        return NonNull::new(c);
    }
    match st.status {
        DEAD | INITIALIZING => return None,
        UNINIT => {
            st.status = INITIALIZING;
            // The key must exist before any cache registers, or the cache
            // would never be retired at thread exit.
            if THREAD_EXIT.init(on_thread_exit) {
                THREAD_EXIT.set((st as *mut ThreadState).cast());
            }
        }
        _ => st.status = INITIALIZING,
    }
    if !heap.is_global() && st.table.load(Ordering::Relaxed) == empty_table() {
        match TABLES.take() {
            Some(t) => {
                let t = t.as_ptr();
                // SAFETY: a record of the pool, ours alone: every entry is
                // written before the table is published.
                unsafe {
                    for e in (*t).caches.iter_mut() {
                        ptr::from_mut(e).write(CacheHome::new(empty()));
                    }
                    home = &(*t).caches[heap.slot()];
                }
                st.table.store(t, Ordering::Release);
            }
            None => home = ptr::null(),
        }
    }
    let tc = if home.is_null() {
        ptr::null_mut()
    } else {
        make_cache(heap, home)
    };
    st.status = ACTIVE;
    if tc.is_null() {
        return None;
    }
    // SAFETY: `home` is the thread's own state word or table entry.
    unsafe { (*home).set(tc) };
    NonNull::new(tc)
}

/// The slow path of allocation: list `c` of the calling thread's cache for
/// `heap` was empty (or the cache does not exist yet).
pub(crate) fn alloc_slow(c: usize, heap: &'static HeapCore) -> *mut u8 {
    match own_cache(heap) {
        // SAFETY: the calling thread's own cache.
        Some(mut tc) => unsafe { tc.as_mut() }.refill(c),
        None => heap.alloc_uncached(c),
    }
}

/// The slow path of freeing: list `c` of the calling thread's cache for
/// `heap` was full (or the cache does not exist yet).
///
/// # Safety
/// `p` is a live object of class `c` of `heap`.
pub(crate) unsafe fn dealloc_slow(p: *mut u8, c: usize, heap: &'static HeapCore) {
    match own_cache(heap) {
        // SAFETY: forwarded from the caller; the thread's own cache.
        Some(mut tc) => unsafe { tc.as_mut().overflow(p, c) },
        // SAFETY: forwarded from the caller.
        None => unsafe { heap.free_uncached(p, c) },
    }
}

/// The calling thread's cache of the global heap (possibly [`EMPTY`]).
#[inline(always)]
pub(crate) fn global_cache() -> *mut ThreadCache {
    tls::global_cache()
}

/// The calling thread's cache of the heap in `slot` (possibly [`EMPTY`]).
#[inline(always)]
pub(crate) fn heap_cache(slot: usize) -> *mut ThreadCache {
    let t = tls::table();
    // SAFETY: the table is the thread's own or the sentinel, both
    // `MAX_HEAPS` long; slots are below MAX_HEAPS.
    unsafe { (*t).caches.get_unchecked(slot).get() }
}

/// Flushes the calling thread's cache of the global heap
/// (`mark_thread_idle`).
pub(crate) fn flush_current() {
    let tc = global_cache();
    if tc != empty() {
        // SAFETY: the calling thread's own cache.
        unsafe { (*tc).flush() };
    }
}

/// The locks of the record pools (for fork), in order.
pub(crate) fn locks() -> [&'static dyn RawLock; 2] {
    [CACHES.lock(), TABLES.lock()]
}

/// Calls `f` with every cache registered with `heap`; the caller holds the
/// heap's registry lock, given as `r`.
pub(crate) fn for_each_cache(r: &heap::CacheRegistry, mut f: impl FnMut(&ThreadCache)) {
    let off = core::mem::offset_of!(ThreadCache, link);
    r.for_each(|l| {
        // SAFETY: every registered link is the `link` field of a cache.
        f(unsafe { &*(l.cast::<u8>().sub(off).cast::<ThreadCache>()) })
    });
}

/// The thread-exit hook: flushes and retires every cache of the exiting
/// thread.
///
/// # Safety
/// Called by pthread with the value set in `own_cache`: the exiting thread's
/// own state.
unsafe extern "C" fn on_thread_exit(p: *mut libc::c_void) {
    // SAFETY: `p` is the exiting thread's state, still mapped.
    let st = unsafe { &mut *p.cast::<ThreadState>() };
    if st.status == DEAD {
        return;
    }
    st.status = DEAD;
    let c = st.cache.get();
    if c != empty() {
        let g = heap::global();
        let mut r = g.caches.lock();
        // SAFETY: the thread's own cache, registered with the global heap.
        unsafe { retire_locked(&mut r, c) };
    }
    let t = st.table.load(Ordering::Relaxed);
    if t == empty_table() {
        return;
    }
    for slot in 1..MAX_HEAPS {
        // SAFETY: the thread's own table.
        let e = unsafe { &(*t).caches[slot] };
        // The heap may be retiring this very cache: read the heap its record
        // serves (records are never unmapped, and `heap` is atomic even in a
        // reused one), take that heap's registry lock, and look again.
        // SAFETY: cache records stay mapped even when reused.
        let lock_of =
            |c: *mut ThreadCache| unsafe { &*(*c).heap.load(Ordering::Relaxed) }.caches.lock();
        if let Some((c, mut r)) = e.claim(empty(), lock_of) {
            // SAFETY: still the thread's own cache, of the heap whose
            // registry lock is held.
            unsafe { retire_locked(&mut r, c) };
        }
    }
    st.table.store(empty_table(), Ordering::Release);
    // SAFETY: the table was the thread's own, and no cache points into it.
    unsafe { TABLES.give(NonNull::new_unchecked(t)) };
}

#[cfg(target_arch = "x86_64")]
mod tls {
    use super::{HeapTable, ThreadCache, ThreadState, EMPTY, EMPTY_TABLE};
    // The thread state: three words, the two pointers starting at the
    // sentinels (relocated in the TLS image before any thread copies it).
    core::arch::global_asm!(
        ".pushsection .tdata,\"awT\",@progbits",
        ".p2align 4",
        ".globl __oxmalloc_v1_thread",
        ".hidden __oxmalloc_v1_thread",
        ".type __oxmalloc_v1_thread,@object",
        ".size __oxmalloc_v1_thread, {size}",
        "__oxmalloc_v1_thread:",
        ".quad {empty}",
        ".quad {table}",
        ".zero {rest}",
        ".popsection",
        empty = sym EMPTY,
        table = sym EMPTY_TABLE,
        size = const core::mem::size_of::<ThreadState>(),
        rest = const core::mem::size_of::<ThreadState>() - 16,
    );

    /// This thread's state: thread pointer + initial-exec offset.
    #[inline(always)]
    pub fn state() -> *mut ThreadState {
        let p: *mut ThreadState;
        // SAFETY: reads the thread pointer and a GOT entry; no side effects.
        unsafe {
            core::arch::asm!(
                "mov {p}, qword ptr fs:[0]",
                "add {p}, qword ptr [rip + __oxmalloc_v1_thread@GOTTPOFF]",
                p = out(reg) p,
                options(pure, nomem, nostack),
            );
        }
        p
    }

    /// This thread's cache of the global heap (one TLS load).
    #[inline(always)]
    pub fn global_cache() -> *mut ThreadCache {
        let p: *mut ThreadCache;
        // SAFETY: reads a GOT entry and the thread's own state word.
        unsafe {
            core::arch::asm!(
                "mov {p}, qword ptr [rip + __oxmalloc_v1_thread@GOTTPOFF]",
                "mov {p}, qword ptr fs:[{p}]",
                p = out(reg) p,
                options(pure, readonly, nostack),
            );
        }
        p
    }

    /// This thread's table of caches of other heaps.
    #[inline(always)]
    pub fn table() -> *mut HeapTable {
        let p: *mut HeapTable;
        // SAFETY: reads a GOT entry and the thread's own state word.
        unsafe {
            core::arch::asm!(
                "mov {p}, qword ptr [rip + __oxmalloc_v1_thread@GOTTPOFF]",
                "mov {p}, qword ptr fs:[{p} + 8]",
                p = out(reg) p,
                options(pure, readonly, nostack),
            );
        }
        p
    }
}

#[cfg(target_arch = "aarch64")]
mod tls {
    use super::{HeapTable, ThreadCache, ThreadState, EMPTY, EMPTY_TABLE};
    core::arch::global_asm!(
        ".pushsection .tdata,\"awT\",@progbits",
        ".p2align 4",
        ".globl __oxmalloc_v1_thread",
        ".hidden __oxmalloc_v1_thread",
        ".type __oxmalloc_v1_thread,%object",
        ".size __oxmalloc_v1_thread, {size}",
        "__oxmalloc_v1_thread:",
        ".quad {empty}",
        ".quad {table}",
        ".zero {rest}",
        ".popsection",
        empty = sym EMPTY,
        table = sym EMPTY_TABLE,
        size = const core::mem::size_of::<ThreadState>(),
        rest = const core::mem::size_of::<ThreadState>() - 16,
    );

    /// This thread's state: thread pointer + initial-exec offset.
    #[inline(always)]
    pub fn state() -> *mut ThreadState {
        let p: *mut ThreadState;
        // SAFETY: reads the thread pointer and a GOT entry; no side effects.
        unsafe {
            core::arch::asm!(
                "mrs {p}, tpidr_el0",
                "adrp {t}, :gottprel:__oxmalloc_v1_thread",
                "ldr {t}, [{t}, #:gottprel_lo12:__oxmalloc_v1_thread]",
                "add {p}, {p}, {t}",
                p = out(reg) p,
                t = out(reg) _,
                options(pure, nomem, nostack),
            );
        }
        p
    }

    /// This thread's cache of the global heap.
    #[inline(always)]
    pub fn global_cache() -> *mut ThreadCache {
        // SAFETY: the thread's own state word.
        unsafe { (*state()).cache.get() }
    }

    /// This thread's table of caches of other heaps.
    #[inline(always)]
    pub fn table() -> *mut HeapTable {
        // SAFETY: the thread's own state word.
        unsafe { (*state()).table.load(core::sync::atomic::Ordering::Relaxed) }
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("oxmalloc supports x86_64 and aarch64 Linux");
