//! Heaps bound to regions: "allocate this from that pool, and nowhere else".
//!
//! A [`Heap`] carves pages only from the exclusive regions bound to it
//! ([`Heap::new_in`], [`Heap::add_region`]); when they are full, allocation
//! fails (or a growth hook adds a region), and nothing falls back to the OS
//! or to the global heap. It has its own central lists, page heap and
//! per-thread caches; its metadata lives in oxmalloc's own memory, never in
//! its regions. Its objects may be freed through the heap, through
//! [`crate::OxMalloc`] or through C `free()`, from any thread: the pagemap
//! finds the owning heap.
//!
//! Every thread has its own cache of each heap it uses; the global entry
//! points (`free`, `realloc`, `OxMalloc::dealloc` of a pointer found through
//! the pagemap) use it too, so freeing a heap's objects with plain `free()`
//! costs no lock. Retiring or destroying a heap empties every thread's cache
//! of it: `retire` and `destroy` take the heap by value or `&mut`, so nothing
//! borrows it meanwhile, and every free of its objects must have happened
//! before (a free racing with them is a use of the heap during its retiring,
//! as in C, where the header says so).
//!
//! # Example: a `HashMap` living in a shared-memory pool
//! ```
//! use oxmalloc::{inject, Heap, RegionOptions};
//! let len = 32 << 20;
//! // SAFETY: a fresh shared mapping, handed over for good.
//! let pool = unsafe {
//!     libc::mmap(core::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE,
//!                libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0)
//! };
//! // SAFETY: the mapping is ours and nothing else uses it.
//! let region = unsafe { inject(pool.cast(), len, RegionOptions::new().exclusive(true)) }.unwrap();
//! let heap = Heap::new_in(region).unwrap();
//! let mut map = hashbrown::HashMap::with_capacity_and_hasher_in(
//!     1000, hashbrown::DefaultHashBuilder::default(), &heap);
//! for i in 0..1000u32 {
//!     map.insert(i, i * 2);
//! }
//! assert_eq!(map[&500], 1000);
//! let range = pool as usize..pool as usize + len;
//! assert!(map.iter().all(|(k, _)| range.contains(&(k as *const u32 as usize))));
//! drop(map);
//! let retired = heap.retire().unwrap();
//! assert_eq!(retired.iter().count(), 1);
//! ```
//!
//! # Example: device memory that is never released
//! ```
//! use oxmalloc::{inject, Heap, RegionOptions, Release};
//! let len = 4 << 20;
//! // Stands for a window of device memory: pinned, never given back.
//! let window = unsafe {
//!     libc::mmap(core::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE,
//!                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
//! };
//! let opts = RegionOptions::new().exclusive(true).release(Release::Never).label("device");
//! // SAFETY: the window is ours and nothing else uses it.
//! let region = unsafe { inject(window.cast(), len, opts) }.unwrap();
//! let heap = Heap::new_in(region).unwrap();
//! let buf: allocator_api2::vec::Vec<u8, &Heap> =
//!     allocator_api2::vec::Vec::with_capacity_in(1 << 20, &heap);
//! assert!(buf.capacity() >= 1 << 20);
//! // The window is full: no fallback to the OS.
//! let mut too_big = allocator_api2::vec::Vec::<u8, &Heap>::new_in(&heap);
//! assert!(too_big.try_reserve(8 << 20).is_err());
//! drop(buf);
//! assert_eq!(heap.release_free_memory(), 0, "Release::Never keeps the pages");
//! ```
//!
//! # Example: retiring a region and unmapping it
//! ```
//! use oxmalloc::{inject, Heap, RegionOptions};
//! let len = 8 << 20;
//! let p = unsafe {
//!     libc::mmap(core::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE,
//!                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
//! };
//! // SAFETY: the mapping is ours and nothing else uses it.
//! let region = unsafe { inject(p.cast(), len, RegionOptions::new().exclusive(true)) }.unwrap();
//! let heap = Heap::new_in(region).unwrap();
//! let layout = core::alloc::Layout::from_size_align(1000, 8).unwrap();
//! // SAFETY: a non-zero layout.
//! let obj = unsafe { core::alloc::GlobalAlloc::alloc(&heap, layout) };
//! // A live object: retiring is refused, and the heap comes back.
//! let (heap, err) = heap.retire().unwrap_err();
//! assert!(err.live_bytes() >= 1000);
//! // Any entry point frees a heap's object: the pagemap finds its heap.
//! // SAFETY: `obj` is live, allocated with `layout`.
//! unsafe { core::alloc::GlobalAlloc::dealloc(&oxmalloc::OxMalloc, obj, layout) };
//! let retired = heap.retire().unwrap();
//! for r in retired.iter() {
//!     // SAFETY: the range is ours again; nothing of oxmalloc's is in it.
//!     unsafe { libc::munmap(r.start.cast(), r.len) };
//! }
//! assert!(oxmalloc::region_of(p.cast()).is_none());
//! ```

use crate::global::{self, init};
use crate::heap::{self, GrowthHook, HeapCore};
use crate::os;
use crate::pagemap::PAGEMAP;
use crate::region::{self, BindError, RegionId};
use crate::size_class::{self, PAGE_SHIFT};
use crate::span::Span;
use crate::thread_cache;
use core::alloc::{GlobalAlloc, Layout};
use core::fmt;
use core::ptr::{self, NonNull};

/// Most regions one heap may have.
pub const MAX_HEAP_REGIONS: usize = 64;

/// The ids of the regions bound to heap `h`, and how many there are.
fn bound_regions(h: &HeapCore) -> ([u16; MAX_HEAP_REGIONS], usize) {
    let mut ids = [0u16; MAX_HEAP_REGIONS];
    let mut n = 0;
    region::for_each_bound(h.slot(), |r| {
        if n < ids.len() {
            ids[n] = r;
            n += 1;
        }
    });
    (ids, n)
}

/// A heap bound to exclusive regions (see the module docs).
///
/// `&Heap` is an [`allocator_api2::alloc::Allocator`], and `Heap` a
/// [`GlobalAlloc`]. Dropping a heap retires it when nothing in it is live;
/// otherwise the heap is abandoned: its objects stay valid (they can still be
/// freed through `free()` or `OxMalloc`), and its regions stay bound.
pub struct Heap {
    core: &'static HeapCore,
}

/// How a [`Heap`] is built ([`Heap::with_options`]).
#[derive(Clone, Copy, Default)]
pub struct HeapOptions {
    growth: Option<&'static dyn GrowthHook>,
}

impl HeapOptions {
    /// No growth hook: the heap fails once its regions are full.
    pub const fn new() -> Self {
        Self { growth: None }
    }

    /// Calls `hook` when the heap's regions are full: it may inject a new
    /// exclusive region and return its id, which is then bound to the heap.
    pub fn growth(mut self, hook: &'static dyn GrowthHook) -> Self {
        self.growth = Some(hook);
        self
    }
}

impl fmt::Debug for HeapOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeapOptions")
            .field("growth", &self.growth.is_some())
            .finish()
    }
}

/// Why a heap could not be made or given a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapError {
    /// No such region.
    UnknownRegion,
    /// The region was retired.
    RetiredRegion,
    /// The region is not exclusive (the global heap uses it).
    NotExclusive,
    /// Another heap is bound to the region.
    AlreadyBound,
    /// The heap has [`MAX_HEAP_REGIONS`] regions already.
    TooManyRegions,
    /// [`crate::MAX_HEAPS`] heaps exist already.
    TooManyHeaps,
    /// Metadata memory ran out.
    NoMemory,
}

impl fmt::Display for HeapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeapError::UnknownRegion => "no such region",
            HeapError::RetiredRegion => "the region was retired",
            HeapError::NotExclusive => "the region is not exclusive",
            HeapError::AlreadyBound => "another heap is bound to the region",
            HeapError::TooManyRegions => "the heap has too many regions",
            HeapError::TooManyHeaps => "too many heaps",
            HeapError::NoMemory => "out of metadata memory",
        })
    }
}

impl core::error::Error for HeapError {}

impl From<BindError> for HeapError {
    fn from(e: BindError) -> Self {
        match e {
            BindError::Unknown => HeapError::UnknownRegion,
            BindError::Retired => HeapError::RetiredRegion,
            BindError::NotExclusive => HeapError::NotExclusive,
            BindError::AlreadyBound => HeapError::AlreadyBound,
        }
    }
}

/// Why [`Heap::retire`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetireError {
    /// Objects of the heap are still live.
    Live {
        /// Bytes in live objects (at class granularity).
        bytes: usize,
    },
}

impl RetireError {
    /// Bytes still live.
    pub fn live_bytes(&self) -> usize {
        match self {
            RetireError::Live { bytes } => *bytes,
        }
    }
}

impl fmt::Display for RetireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetireError::Live { bytes } => {
                write!(f, "the heap still has {bytes} bytes of live objects")
            }
        }
    }
}

impl core::error::Error for RetireError {}

/// A range handed back by [`Heap::retire`]: the caller may unmap it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetiredRange {
    /// First byte (the region's start, trimmed to 8 KiB as at injection).
    pub start: *mut u8,
    /// Length in bytes.
    pub len: usize,
}

/// The ranges of a retired heap's regions.
#[derive(Clone, Copy, Debug)]
pub struct RetiredRegions {
    ranges: [RetiredRange; MAX_HEAP_REGIONS],
    len: usize,
}

impl RetiredRegions {
    /// The ranges, in the order of the regions' slots.
    pub fn iter(&self) -> impl Iterator<Item = &RetiredRange> {
        self.ranges[..self.len].iter()
    }
}

/// One region of a heap, in [`HeapStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapRegionStats {
    /// The region.
    pub id: RegionId,
    /// Its length.
    pub len: usize,
    /// Bytes carved into spans so far.
    pub carved_bytes: usize,
    /// Bytes in spans in use.
    pub in_use_bytes: usize,
    /// Bytes in free spans backed by memory.
    pub free_bytes: usize,
    /// Bytes in free spans whose backing was released.
    pub released_bytes: usize,
}

/// A consistent snapshot of a heap ([`Heap::stats`]): every figure taken with
/// all of the heap's locks held. `carved_bytes = in_use_bytes + free_bytes +
/// central_bytes + cached_bytes + released_bytes`.
#[derive(Clone, Copy, Debug)]
pub struct HeapStats {
    /// Bytes in objects the program holds (at class granularity).
    pub in_use_bytes: usize,
    /// Free bytes of the page heap, backed by memory.
    pub free_bytes: usize,
    /// Free objects in the heap's central lists and transfer caches.
    pub central_bytes: usize,
    /// Free objects in threads' caches of this heap.
    pub cached_bytes: usize,
    /// Free bytes whose backing was released.
    pub released_bytes: usize,
    /// Bytes carved from the heap's regions.
    pub carved_bytes: usize,
    /// Threads with a cache of this heap.
    pub thread_caches: usize,
    regions: [Option<HeapRegionStats>; MAX_HEAP_REGIONS],
    nregions: usize,
}

impl HeapStats {
    /// Per region.
    pub fn regions(&self) -> impl Iterator<Item = &HeapRegionStats> {
        self.regions[..self.nregions].iter().flatten()
    }
}

impl Heap {
    /// A heap bound to exclusive region `region`.
    pub fn new_in(region: RegionId) -> Result<Heap, HeapError> {
        Heap::with_options(region, HeapOptions::new())
    }

    /// A heap bound to exclusive region `region`, with `options`.
    pub fn with_options(region: RegionId, options: HeapOptions) -> Result<Heap, HeapError> {
        init();
        let core = heap::create(options.growth).ok_or(HeapError::TooManyHeaps)?;
        let h = Heap { core };
        if let Err(e) = region::bind(region, core.slot()) {
            h.forget();
            return Err(e.into());
        }
        Ok(h)
    }

    /// Gives the heap another exclusive region.
    pub fn add_region(&self, region: RegionId) -> Result<(), HeapError> {
        let mut n = 0;
        region::for_each_bound(self.core.slot(), |_| n += 1);
        if n >= MAX_HEAP_REGIONS {
            return Err(HeapError::TooManyRegions);
        }
        Ok(region::bind(region, self.core.slot())?)
    }

    /// The heap's figures, one consistent snapshot.
    pub fn stats(&self) -> HeapStats {
        let h = self.core;
        h.lock_all();
        // SAFETY: `lock_all` holds every lock `totals_held` reads through.
        let t = unsafe { h.totals_held(thread_cache::cached_bytes) };
        let mut regions = [None; MAX_HEAP_REGIONS];
        let mut n = 0;
        region::for_each_bound(h.slot(), |r| {
            if let (Some(slot), Some(info)) = (regions.get_mut(n), region::info_of(r as usize)) {
                *slot = Some(HeapRegionStats {
                    id: info.id,
                    len: info.len,
                    carved_bytes: info.carved_bytes,
                    in_use_bytes: info.in_use_bytes,
                    free_bytes: info.free_bytes,
                    released_bytes: info.released_bytes,
                });
                n += 1;
            }
        });
        // SAFETY: taken by `lock_all` on this thread just above.
        unsafe { h.unlock_all() };
        HeapStats {
            in_use_bytes: t.allocated,
            free_bytes: t.pages.free_bytes,
            central_bytes: t.central + t.transfer,
            cached_bytes: t.thread_caches,
            released_bytes: t.pages.unmapped_bytes,
            carved_bytes: t.pages.system_bytes,
            thread_caches: t.caches,
            regions,
            nregions: n,
        }
    }

    /// Gives the heap's free pages back as its regions' policies allow;
    /// returns the bytes released.
    pub fn release_free_memory(&self) -> usize {
        self.core.release_free_memory() << PAGE_SHIFT
    }

    /// Retires the heap: when nothing in its regions is live, every thread's
    /// cached objects of the heap are drained, the regions leave the pagemap
    /// and the region table (their slots are reused), and their ranges are
    /// handed back; the caller may then unmap them. While anything is live
    /// it refuses, says how many bytes are live, and gives the heap back.
    pub fn retire(self) -> Result<RetiredRegions, (Heap, RetireError)> {
        let h = self.core;
        let live = h.totals(thread_cache::cached_bytes).allocated;
        if live > 0 {
            return Err((self, RetireError::Live { bytes: live }));
        }
        // SAFETY: `self` is owned, so nothing borrows the heap: no thread can
        // be in one of its caches (see the module docs).
        unsafe { thread_cache::retire_caches_of(h) };
        h.flush_transfer_caches();
        let mut out = RetiredRegions {
            ranges: [RetiredRange {
                start: ptr::null_mut(),
                len: 0,
            }; MAX_HEAP_REGIONS],
            len: 0,
        };
        {
            let mut pages = h.pages.lock();
            if pages.stats().in_use_bytes != 0 {
                os::fatal(format_args!(
                    "retiring a heap: {} bytes in spans in use although nothing is live",
                    pages.stats().in_use_bytes
                ));
            }
            let (ids, n) = bound_regions(h);
            for &r in &ids[..n] {
                let (start, cursor) = region::carved_range(r);
                // SAFETY: the carved range of one of the heap's regions,
                // whose spans are all free (checked above), under the heap's
                // page-heap lock.
                let ok = unsafe { pages.remove_range(start >> PAGE_SHIFT, cursor >> PAGE_SHIFT) };
                if !ok {
                    os::fatal(format_args!(
                        "retiring a heap: a span of region {r} is still in use"
                    ));
                }
                let (s, len) = region::remove(r);
                out.ranges[out.len] = RetiredRange {
                    start: s as *mut u8,
                    len,
                };
                out.len += 1;
            }
        }
        self.forget();
        Ok(out)
    }

    /// Frees everything in the heap at once, arena style: every object
    /// becomes invalid, in time proportional to the heap's spans (not its
    /// objects). The heap stays usable; its pages stay carved (their
    /// contents undefined) and are reused.
    pub fn destroy(&mut self) {
        let h = self.core;
        // SAFETY: `&mut self`: nothing borrows the heap, so no thread can be
        // in one of its caches (see the module docs).
        unsafe { thread_cache::discard_caches_of(h) };
        h.forget_small_objects();
        let mut pages = h.pages.lock();
        let (ids, n) = bound_regions(h);
        for &r in &ids[..n] {
            let (start, cursor) = region::carved_range(r);
            // SAFETY: the carved range of one of the heap's regions, whose
            // objects are all forgotten, under the heap's page-heap lock.
            unsafe { pages.reclaim_range(start >> PAGE_SHIFT, cursor >> PAGE_SHIFT, r) };
        }
    }

    /// Unpublishes the heap without looking at its regions (a heap that got
    /// none, or whose regions were all removed).
    fn forget(self) {
        let core = self.core;
        core::mem::forget(self);
        // SAFETY: the handle is gone and nothing else refers to the heap.
        unsafe { heap::dispose(core) };
    }

    /// The handle as an opaque pointer, for the C library (`oxmalloc_heap *`).
    #[doc(hidden)]
    pub fn into_raw(self) -> *mut core::ffi::c_void {
        let p = ptr::from_ref(self.core).cast_mut().cast();
        core::mem::forget(self);
        p
    }

    /// The handle back from [`Heap::into_raw`].
    ///
    /// # Safety
    /// `p` came from `into_raw` and is not used as a handle elsewhere.
    #[doc(hidden)]
    pub unsafe fn from_raw(p: *mut core::ffi::c_void) -> Heap {
        // SAFETY: a published heap record (caller).
        Heap {
            core: unsafe { &*p.cast::<HeapCore>() },
        }
    }

    /// A handle made from a raw pointer that is not dropped, for the C
    /// library's calls that only use the heap.
    ///
    /// # Safety
    /// `p` came from [`Heap::into_raw`] and the heap was not retired.
    #[doc(hidden)]
    pub unsafe fn borrow_raw(p: *mut core::ffi::c_void) -> core::mem::ManuallyDrop<Heap> {
        // SAFETY: forwarded from the caller.
        core::mem::ManuallyDrop::new(unsafe { Heap::from_raw(p) })
    }

    /// `size` zero bytes aligned to `align`, not cleared again when the
    /// pages are known to be zero; null when the heap's regions are full.
    #[doc(hidden)]
    pub fn alloc_zeroed_raw(&self, size: usize, align: usize) -> *mut u8 {
        global::zeroed_in(self.core, size, align, |s, a| self.alloc_raw(s, a))
    }

    /// `realloc` of `p` into this heap (C's `oxmalloc_heap_realloc`): in
    /// place when it fits, else moved to a new block of this heap.
    ///
    /// # Safety
    /// `p` is a live allocation of oxmalloc's.
    #[doc(hidden)]
    pub unsafe fn realloc_unsized(&self, p: *mut u8, new_size: usize) -> *mut u8 {
        let (c, s) = global::owned(p, "realloc");
        // SAFETY: `p` is live with class `c` / span `s` (caller).
        unsafe { global::realloc_in(self.core, p, c, s, new_size, 1, true) }
    }

    /// `size` bytes aligned to `align` (a power of two); null when the
    /// heap's regions are full.
    #[inline]
    #[doc(hidden)]
    pub fn alloc_raw(&self, size: usize, align: usize) -> *mut u8 {
        alloc_cached(self.core, size, align)
    }

    /// Frees `p`, allocated from this heap with `layout`.
    ///
    /// # Safety
    /// `p` is a live allocation of this heap made with `layout`.
    #[inline]
    pub(crate) unsafe fn dealloc_raw(&self, p: *mut u8, layout: Layout) {
        crate::hardened::check_size("dealloc", p, layout.size(), layout.align(), true);
        let c = size_class::class_for(layout.size(), layout.align());
        if c == 0 {
            // SAFETY: a live large allocation (caller).
            return unsafe { free_large(self.core, p) };
        }
        // SAFETY: a live object of class `c` of this heap (caller).
        unsafe { free_small(self.core, p, c) }
    }

    /// Resizes `p` (allocated from this heap with `layout`) to `new_size`:
    /// in place when it can, else moved within the heap.
    ///
    /// # Safety
    /// `p` is a live allocation of this heap made with `layout`.
    pub(crate) unsafe fn realloc_raw(
        &self,
        p: *mut u8,
        layout: Layout,
        new_size: usize,
    ) -> *mut u8 {
        let (c, s) = global::owned(p, "realloc");
        // SAFETY: `p` is live with class `c` / span `s` (caller).
        unsafe { global::realloc_in(self.core, p, c, s, new_size, layout.align(), false) }
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        let me = Heap { core: self.core };
        if let Err((abandoned, _)) = me.retire() {
            // Live objects: leave the heap (and its regions) be.
            core::mem::forget(abandoned);
        }
    }
}

impl fmt::Debug for Heap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heap")
            .field("slot", &self.core.slot())
            .finish()
    }
}

/// Allocates `size` bytes aligned to `align` from heap `h` through the
/// calling thread's cache of it; null when the heap's regions are full.
#[inline]
fn alloc_cached(h: &'static HeapCore, size: usize, align: usize) -> *mut u8 {
    let c = size_class::class_for(size, align);
    if c == 0 {
        return h.alloc_large(size, align).0;
    }
    let tc = thread_cache::heap_cache(h.slot());
    // SAFETY: the calling thread's cache of `h` (or the sentinel).
    let p = unsafe { (*tc).pop(c) };
    if !p.is_null() {
        return p;
    }
    alloc_cached_slow(h, c)
}

#[cold]
#[inline(never)]
fn alloc_cached_slow(h: &'static HeapCore, c: usize) -> *mut u8 {
    init();
    thread_cache::alloc_slow(c, h)
}

/// Frees the large allocation at `p` of heap `h`.
///
/// # Safety
/// `p` is a live large allocation of `h`.
unsafe fn free_large(h: &'static HeapCore, p: *mut u8) {
    let s: *mut Span = PAGEMAP.get(p as usize >> PAGE_SHIFT);
    // SAFETY: a live large allocation's first page maps to its span (caller).
    unsafe { h.free_large(s) };
}

/// Allocates from heap `h` (for the global entry points' realloc).
pub(crate) fn alloc_in(h: &'static HeapCore, size: usize, align: usize) -> *mut u8 {
    alloc_cached(h, size, align)
}

/// Frees small object `p` of class `c` of heap `h` through the calling
/// thread's cache of it (for the global entry points).
///
/// # Safety
/// `p` is a live object of class `c` of `h`.
pub(crate) unsafe fn free_small(h: &'static HeapCore, p: *mut u8, c: usize) {
    crate::hardened::taken_back(p, c);
    let tc = thread_cache::heap_cache(h.slot());
    // SAFETY: the calling thread's cache of `h` (or the sentinel); `p` is a
    // live object of class `c` of `h` (caller).
    if !unsafe { (*tc).push(p, c) } {
        // SAFETY: forwarded.
        unsafe { thread_cache::dealloc_slow(p, c, h) };
    }
}

// SAFETY: blocks satisfy their layouts, are unique until freed, and come from
// the heap's regions only; `deallocate` recomputes the class from the layout.
unsafe impl allocator_api2::alloc::Allocator for &Heap {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        let p = self.alloc_raw(layout.size(), layout.align());
        NonNull::new(p)
            .map(|p| NonNull::slice_from_raw_parts(p, layout.size()))
            .ok_or(allocator_api2::alloc::AllocError)
    }

    fn allocate_zeroed(
        &self,
        layout: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        let p = self.alloc_zeroed_raw(layout.size(), layout.align());
        NonNull::new(p)
            .map(|p| NonNull::slice_from_raw_parts(p, layout.size()))
            .ok_or(allocator_api2::alloc::AllocError)
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: allocated by this heap with `layout` (caller).
        unsafe { self.dealloc_raw(ptr.as_ptr(), layout) }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { resize(self, ptr, old, new) }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { resize(self, ptr, old, new) }
    }
}

/// `grow` and `shrink` of `&Heap`: a realloc when the alignment stays.
///
/// # Safety
/// As for `Allocator::grow`.
unsafe fn resize(
    heap: &Heap,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
    let q = if new.align() <= old.align() {
        // SAFETY: forwarded from the caller.
        unsafe { heap.realloc_raw(ptr.as_ptr(), old, new.size()) }
    } else {
        let q = heap.alloc_raw(new.size(), new.align());
        if !q.is_null() {
            // SAFETY: distinct live blocks; then the old one is freed.
            unsafe {
                ptr::copy_nonoverlapping(ptr.as_ptr(), q, old.size().min(new.size()));
                heap.dealloc_raw(ptr.as_ptr(), old);
            }
        }
        q
    };
    NonNull::new(q)
        .map(|p| NonNull::slice_from_raw_parts(p, new.size()))
        .ok_or(allocator_api2::alloc::AllocError)
}

// SAFETY: as for `Allocator for &Heap`.
unsafe impl GlobalAlloc for Heap {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.alloc_raw(layout.size(), layout.align())
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.dealloc_raw(p, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.alloc_zeroed_raw(layout.size(), layout.align())
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        unsafe { self.realloc_raw(p, layout, new_size) }
    }
}
