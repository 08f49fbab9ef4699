//! `fork()`: the child must be able to allocate, nothing may deadlock, and
//! the child must not share the heap's memory with its parent.
//!
//! # Locks
//! The prepare handler takes every lock of the allocator in the documented
//! order, so that no other thread is inside the allocator when the process
//! is copied; the parent and child handlers release them. Two hazards shape
//! how:
//!
//! - **stdio** (gperftools#904): glibc runs the atfork prepare handlers
//!   *before* it takes the lock of the list of all `FILE`s. A thread holding
//!   a `FILE` lock (inside `getline`) may be waiting in `realloc` for one of
//!   our locks, while a `fflush(NULL)` thread holds the list lock and waits
//!   for that `FILE`: if the forking thread held our locks while waiting for
//!   the list lock, the three would wait forever. So the prepare handler
//!   takes the list lock *first* (glibc's own malloc takes its locks after
//!   it too); the lock is recursive, so glibc's own acquisition in `fork()`
//!   passes. The parent handler releases it once more; in the child glibc
//!   resets it.
//! - **signals**: `fork()` is async-signal-safe in a single-threaded
//!   process (glibc's `tst-mallocfork2` forks from a signal handler that
//!   interrupted `fork`, `malloc` or `free`). A single-threaded process
//!   takes the locks only if all are free at once: a busy one is held by
//!   the very thread the signal interrupted, and the child, which resumes
//!   that thread, finds the allocator as consistent as the parent does. A
//!   multi-threaded process blocks signals while it holds the locks, so no
//!   handler can fork in between.
//!
//! # Shared memory
//! A region of shared memory (a `MAP_SHARED` mapping, a memfd, tmpfs or
//! hugetlbfs: `OXMALLOC_MEMFS_PATH`, or an injected shared range) would be
//! written by parent and child alike. The child replaces each one by a
//! private copy of the spans in use (moved into place with `mremap`); its
//! system allocator opens a file of its own. The parent waits (on a word of
//! a shared page) until the child is done, so that it does not change the
//! memory being copied.
//!
//! # Thread caches
//! In the child, the caches of the threads that did not make it are
//! unregistered; their cached objects are lost (as in TCMalloc).

use crate::heap::{self, MAX_HEAPS};
use crate::os;
use crate::page_heap::PageHeap;
use crate::pagemap::PAGEMAP;
use crate::region;
use crate::size_class::PAGE_SHIFT;
use crate::span::SpanState;
use crate::sync::RawLock;
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};

/// Registers the fork handlers (once, from the allocator's initialisation).
pub(crate) fn register() {
    crate::os::register_atfork(prepare, parent, child);
}

/// How a level of a (possibly nested) fork was prepared.
const UNLOCKED: u8 = 0;
/// Single-threaded: every lock was free and is held.
const LOCKED_ALONE: u8 = 1;
/// Multi-threaded: the stdio list lock and every lock are held, signals
/// blocked.
const LOCKED_THREADS: u8 = 2;

/// Forks nest only through signal handlers; deeper ones take no locks.
const MAX_DEPTH: usize = 8;

/// Forks in progress on this process's forking thread.
static DEPTH: AtomicUsize = AtomicUsize::new(0);
/// The mode of each level.
static MODES: [AtomicU8; MAX_DEPTH] = [const { AtomicU8::new(UNLOCKED) }; MAX_DEPTH];
/// Each level: whether a child must copy shared memory (and the parent
/// wait for it).
static COPYING: [AtomicU8; MAX_DEPTH] = [const { AtomicU8::new(0) }; MAX_DEPTH];
/// A page shared with the children, one word per level: 0 while the child
/// copies, 1 once it is done. Made at the first fork that needs it; a child
/// makes its own for its children.
static WORDS: AtomicPtr<AtomicU32> = AtomicPtr::new(ptr::null_mut());

/// The signal mask of the thread before a multi-threaded prepare (one fork
/// at a time holds the locks, so one slot suffices).
struct SavedMask(UnsafeCell<libc::sigset_t>);
// SAFETY: written only by the thread holding every allocator lock (between
// prepare and parent/child), read by the same thread.
unsafe impl Sync for SavedMask {}
// SAFETY: an all-zero sigset_t is a valid (empty) mask.
static SAVED_MASK: SavedMask = SavedMask(UnsafeCell::new(unsafe { core::mem::zeroed() }));

/// Calls `f` with every lock of the allocator, in the documented order.
fn for_each_lock(f: &mut dyn FnMut(&dyn RawLock)) {
    for l in heap::table_locks() {
        f(l);
    }
    for slot in 0..MAX_HEAPS {
        if let Some(h) = heap::by_slot(slot) {
            h.for_each_lock(f);
        }
    }
    f(region::lock());
    f(PAGEMAP.lock());
    f(crate::span::SPANS.lock());
    for l in crate::thread_cache::locks() {
        f(l);
    }
    f(crate::meta::lock());
}

/// Takes every lock if each is free at once; else takes none. True when
/// they are held.
fn try_lock_everything() -> bool {
    let mut taken = 0usize;
    let mut ok = true;
    for_each_lock(&mut |l| {
        if ok {
            if l.try_raw_lock() {
                taken += 1;
            } else {
                ok = false;
            }
        }
    });
    if !ok {
        let mut n = 0usize;
        for_each_lock(&mut |l| {
            if n < taken {
                // SAFETY: one of the `taken` locks this thread just took.
                unsafe { l.raw_unlock() };
                n += 1;
            }
        });
    }
    ok
}

/// # Safety
/// The calling thread holds every lock (or is the child of the thread that
/// did).
unsafe fn unlock_everything() {
    // SAFETY: forwarded from the caller.
    for_each_lock(&mut |l| unsafe { l.raw_unlock() });
}

/// The handshake word of level `d`, if the page exists.
fn word(d: usize) -> Option<&'static AtomicU32> {
    let p = WORDS.load(Ordering::Acquire);
    // SAFETY: the page holds at least MAX_DEPTH words and is never unmapped.
    (!p.is_null()).then(|| unsafe { &*p.add(d) })
}

unsafe extern "C" fn prepare() {
    let d = DEPTH.fetch_add(1, Ordering::AcqRel);
    if d >= MAX_DEPTH {
        return;
    }
    let mode = if os::single_threaded() {
        if try_lock_everything() {
            LOCKED_ALONE
        } else {
            UNLOCKED
        }
    } else {
        let mask = os::block_signals();
        // SAFETY: see `SavedMask`: no other thread is in a fork's window.
        unsafe { *SAVED_MASK.0.get() = mask };
        os::lock_stdio_list();
        for_each_lock(&mut |l| l.raw_lock());
        LOCKED_THREADS
    };
    MODES[d].store(mode, Ordering::Relaxed);
    let copying = region::has_shared() && {
        if WORDS.load(Ordering::Acquire).is_null() {
            if let Some(p) = os::map_shared_words() {
                WORDS.store(p.as_ptr(), Ordering::Release);
            }
        }
        match word(d) {
            Some(w) => {
                w.store(0, Ordering::Release);
                true
            }
            None => false,
        }
    };
    COPYING[d].store(copying as u8, Ordering::Relaxed);
}

unsafe extern "C" fn parent() {
    let d = DEPTH.fetch_sub(1, Ordering::AcqRel) - 1;
    if d >= MAX_DEPTH {
        return;
    }
    if COPYING[d].load(Ordering::Relaxed) != 0 {
        if let Some(w) = word(d) {
            if !os::wait_shared(w, 0, 30_000) {
                os::write_stderr(
                    b"oxmalloc: fork: the child did not copy its shared memory within 30 s\n",
                );
            }
        }
    }
    match MODES[d].load(Ordering::Relaxed) {
        // SAFETY: this thread took every lock in `prepare`.
        LOCKED_ALONE => unsafe { unlock_everything() },
        LOCKED_THREADS => {
            // SAFETY: as above; then the stdio list lock taken there, and
            // the mask saved there.
            unsafe {
                unlock_everything();
                os::unlock_stdio_list();
                os::restore_signals(&*SAVED_MASK.0.get());
            }
        }
        _ => {}
    }
}

unsafe extern "C" fn child() {
    let d = DEPTH.fetch_sub(1, Ordering::AcqRel) - 1;
    if d >= MAX_DEPTH {
        return;
    }
    let mode = MODES[d].load(Ordering::Relaxed);
    match mode {
        // SAFETY: the child's only thread is the one that took the locks.
        LOCKED_ALONE => unsafe { unlock_everything() },
        LOCKED_THREADS => {
            // SAFETY: as above.
            unsafe {
                unlock_everything();
                os::reset_stdio_list();
                os::restore_signals(&*SAVED_MASK.0.get());
            }
        }
        _ => {}
    }
    // From here on the child has one thread and every lock is free (unless
    // a signal handler forked from inside the allocator: then nothing is
    // touched that needs a lock).
    if mode == LOCKED_THREADS {
        for slot in 0..MAX_HEAPS {
            if let Some(h) = heap::by_slot(slot) {
                crate::thread_cache::forget_other_threads(h);
            }
        }
    }
    if COPYING[d].load(Ordering::Relaxed) != 0 {
        if mode == UNLOCKED {
            os::write_stderr(
                b"oxmalloc: fork: a child forked from a signal handler inside the allocator keeps sharing its parent's shared memory\n",
            );
        } else {
            region::for_each_shared(privatize);
        }
        if let Some(w) = word(d) {
            w.store(1, Ordering::Release);
            os::wake_shared(w);
        }
    }
    // The page is shared with the parent: the child's own children get
    // another one.
    WORDS.store(ptr::null_mut(), Ordering::Release);
}

/// Replaces the memory of shared region `id` by a private copy of its spans
/// in use (see the module docs).
fn privatize(id: u16) {
    let slot = region::heap_slot(id);
    let Some(h) = heap::by_slot(slot) else {
        // An exclusive region no heap uses: only its mapping changes.
        region::privatized(id);
        return;
    };
    let mut pages = h.pages.lock();
    region::for_each_chunk(id, copy_in_use);
    if let Some(copy) = region::privatized(id) {
        region::for_each_chunk(copy, |a, b| {
            // SAFETY: a chunk of this heap's region, under its page-heap
            // lock, in the child's only thread.
            unsafe { pages.retag_range(a >> PAGE_SHIFT, b >> PAGE_SHIFT, copy) };
        });
    }
}

/// Copies the spans in use of `[a, b)` (bytes of a chunk whose spans tile
/// it) into fresh private memory and moves that over the chunk.
/// The caller holds the page-heap lock of the chunk's heap.
fn copy_in_use(a: usize, b: usize) {
    let len = b - a;
    let Some(copy) = os::map_sparse(len) else {
        os::fatal(format_args!(
            "fork: no memory for a private copy of the shared memory at {a:#x} ({len} bytes)"
        ));
    };
    // SAFETY: the chunk's spans tile it and nothing changes them (the heap's
    // page-heap lock is held, the child has one thread); in-use spans are
    // readable memory of the chunk, and the copy is as long as the chunk.
    unsafe {
        PageHeap::for_each_span_in(a >> PAGE_SHIFT, b >> PAGE_SHIFT, |s| {
            if (*s).state == SpanState::InUse {
                let off = (*s).addr() - a;
                ptr::copy_nonoverlapping(
                    (*s).addr() as *const u8,
                    copy.as_ptr().add(off),
                    (*s).bytes(),
                );
            }
        });
    }
    if !os::move_mapping(copy, a, len) {
        os::fatal(format_args!(
            "fork: cannot move the private copy over the shared memory at {a:#x}"
        ));
    }
}
