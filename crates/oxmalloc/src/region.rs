//! Regions: where a heap may carve pages from.
//!
//! A region is either a contiguous range a program handed to oxmalloc
//! ([`inject`]), or the chunks one [`SysAllocator`] produced. Every region has
//! an id, a release policy and counters; every span belongs to exactly one
//! region, and coalescing never crosses a region boundary. Region records live
//! in a static table, never inside the memory they describe.
//!
//! Injection is O(1) in the region's size: the region is carved lazily through
//! a cursor, so no page of it is touched, and pagemap leaves appear only where
//! spans are made.

use crate::os;
use crate::pagemap::{ADDRESS_BITS, PAGEMAP};
use crate::size_class::{PAGE_SHIFT, PAGE_SIZE};
use crate::sync::Mutex;
use core::cell::UnsafeCell;
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

/// Where fresh memory comes from.
///
/// # Contract
/// - Methods are called with oxmalloc's internal locks held: they must not
///   allocate through oxmalloc (no `Box`, `Vec`, `String`, `format!`, no libc
///   `malloc` when oxmalloc is the C allocator), or they deadlock.
/// - Memory returned by [`SysAllocator::alloc`] belongs to oxmalloc from then
///   on and is never unmapped by it; only its physical backing is released,
///   through [`SysAllocator::release`].
///
/// # Safety
/// `alloc` must return memory that is readable, writable, at least `size`
/// bytes long, aligned to `align`, and used by nobody else.
///
/// # Example
/// A system allocator that counts its calls and forwards to the previous one,
/// as gperftools programs do:
/// ```
/// use core::ptr::NonNull;
/// use core::sync::atomic::{AtomicUsize, Ordering};
/// use oxmalloc::{SysAllocator, MmapSysAllocator};
///
/// struct Counting(AtomicUsize, &'static dyn SysAllocator);
/// // SAFETY: forwards to an allocator that keeps the contract.
/// unsafe impl SysAllocator for Counting {
///     fn alloc(&self, size: usize, align: usize) -> Option<NonNull<[u8]>> {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         self.1.alloc(size, align)
///     }
/// }
/// static COUNTING: Counting = Counting(AtomicUsize::new(0), &MmapSysAllocator);
/// oxmalloc::set_system_allocator(&COUNTING);
/// ```
pub unsafe trait SysAllocator: Send + Sync {
    /// At least `size` bytes aligned to `align` (a power of two, at least the
    /// allocator's page size), or `None`. The slice's length says how much was
    /// really given.
    fn alloc(&self, size: usize, align: usize) -> Option<NonNull<[u8]>>;

    /// The physical backing of `[ptr, ptr + len)` is no longer needed.
    /// Returns false if nothing was released. Default: `madvise(MADV_DONTNEED)`.
    ///
    /// # Safety
    /// The range lies in memory this allocator returned, and nothing in it is
    /// live.
    unsafe fn release(&self, ptr: NonNull<u8>, len: usize) -> bool {
        // SAFETY: forwarded from the caller: the range is unused.
        unsafe { os::advise(ptr.as_ptr(), len, libc::MADV_DONTNEED) }
    }

    /// The range is about to be used again after a release. Returns false if
    /// it cannot be (the allocation then fails). Default: nothing to do.
    ///
    /// # Safety
    /// The range lies in memory this allocator returned.
    unsafe fn commit(&self, ptr: NonNull<u8>, len: usize) -> bool {
        let _ = (ptr, len);
        true
    }

    /// True when memory from [`SysAllocator::alloc`] is zero-filled and a
    /// successful release leaves it zero-filled (private anonymous mappings).
    /// Lets `alloc_zeroed` skip clearing. Default: false.
    fn zeroed(&self) -> bool {
        false
    }
}

/// The default system allocator: anonymous `mmap`, released with
/// `madvise(MADV_DONTNEED)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MmapSysAllocator;

// SAFETY: fresh anonymous mappings are private, aligned by `map_aligned`.
unsafe impl SysAllocator for MmapSysAllocator {
    fn alloc(&self, size: usize, align: usize) -> Option<NonNull<[u8]>> {
        let p = os::map_aligned(size, align)?;
        Some(NonNull::slice_from_raw_parts(p, size))
    }
    fn zeroed(&self) -> bool {
        true
    }
}

/// A function that releases the physical backing of a range of an injected
/// region ([`Release::Custom`]). Any `Fn(NonNull<u8>, usize) -> bool` is one.
pub trait ReleaseHook: Send + Sync {
    /// Release `[ptr, ptr + len)`; false if nothing was released. Called with
    /// internal locks held: must not allocate through oxmalloc.
    fn release(&self, ptr: NonNull<u8>, len: usize) -> bool;
}

impl<F: Fn(NonNull<u8>, usize) -> bool + Send + Sync> ReleaseHook for F {
    fn release(&self, ptr: NonNull<u8>, len: usize) -> bool {
        self(ptr, len)
    }
}

/// How the physical backing of free pages of an injected region is given back.
#[derive(Clone, Copy)]
pub enum Release {
    /// Never: pinned, registered or device memory. Contents and residency stay.
    Never,
    /// `madvise(MADV_DONTNEED)`: private anonymous memory (reads back as zero).
    DontNeed,
    /// `madvise(MADV_FREE)`: lazily reclaimed private anonymous memory.
    Free,
    /// `madvise(MADV_REMOVE)`: shared, tmpfs, memfd and hugetlbfs mappings; the
    /// file's pages really go back (a hole is punched).
    Remove,
    /// A user function.
    Custom(&'static dyn ReleaseHook),
}

impl Release {
    /// A short name, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Release::Never => "never",
            Release::DontNeed => "dontneed",
            Release::Free => "free",
            Release::Remove => "remove",
            Release::Custom(_) => "custom",
        }
    }

    /// True when a range released this way reads back as zero.
    fn zeroes(&self) -> bool {
        matches!(self, Release::DontNeed | Release::Remove)
    }
}

impl fmt::Debug for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Maximum length of a region label, in bytes.
pub const LABEL_LEN: usize = 31;

/// How an injected region is to be used ([`inject`]). A builder:
/// `RegionOptions::new().release(Release::Never).exclusive(true).label("pool")`.
#[derive(Clone, Copy, Debug)]
pub struct RegionOptions {
    release: Release,
    exclusive: bool,
    zeroed: bool,
    label: Label,
}

impl RegionOptions {
    /// Defaults: release with `MADV_DONTNEED`, not exclusive (feeds the global
    /// heap), contents not known to be zero, no label.
    pub const fn new() -> Self {
        Self {
            release: Release::DontNeed,
            exclusive: false,
            zeroed: false,
            label: Label::EMPTY,
        }
    }
    /// The release policy.
    pub const fn release(mut self, r: Release) -> Self {
        self.release = r;
        self
    }
    /// Exclusive regions are used only by heaps bound to them, never by the
    /// global heap.
    pub const fn exclusive(mut self, yes: bool) -> Self {
        self.exclusive = yes;
        self
    }
    /// The memory is known to be zero-filled (a fresh mapping).
    pub const fn zeroed(mut self, yes: bool) -> Self {
        self.zeroed = yes;
        self
    }
    /// A name for reports (cut at [`LABEL_LEN`] bytes, on a character boundary).
    pub fn label(mut self, s: &str) -> Self {
        self.label = Label::from_str(s);
        self
    }
}

impl Default for RegionOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// A short fixed-size string.
#[derive(Clone, Copy)]
struct Label {
    bytes: [u8; LABEL_LEN],
    len: u8,
}

impl Label {
    const EMPTY: Label = Label {
        bytes: [0; LABEL_LEN],
        len: 0,
    };
    fn from_str(s: &str) -> Self {
        let mut n = s.len().min(LABEL_LEN);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        let mut l = Label::EMPTY;
        l.bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
        l.len = n as u8;
        l
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Identifies a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionId(pub(crate) u16);

impl RegionId {
    /// The number of the region (its slot in the region table).
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The id of region number `i`, if there is such a region now (for
    /// interfaces that pass ids as numbers, such as the C library's).
    pub fn from_index(i: usize) -> Option<RegionId> {
        TABLE.get(i)?.active().then_some(RegionId(i as u16))
    }
}

/// Why [`inject`] refused a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectError {
    /// The start address is null.
    Null,
    /// Nothing is left once the range is trimmed to whole pages.
    TooSmall,
    /// The range overlaps an injected region or memory oxmalloc already manages.
    Overlap,
    /// The range reaches beyond the address space the pagemap covers.
    OutOfRange,
    /// The region table is full.
    TooManyRegions,
}

impl fmt::Display for InjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InjectError::Null => "region start is null",
            InjectError::TooSmall => "nothing left after trimming the region to whole 8 KiB pages",
            InjectError::Overlap => {
                "region overlaps an injected region or memory oxmalloc already manages"
            }
            InjectError::OutOfRange => "region reaches beyond the 48-bit address space",
            InjectError::TooManyRegions => "too many regions",
        })
    }
}

impl core::error::Error for InjectError {}

/// What kind of region a record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// Chunks from a system allocator (not one contiguous range).
    System,
    /// A contiguous range a program injected.
    Injected,
}

/// A snapshot of one region ([`region_info`], [`for_each_region`]).
#[derive(Clone, Copy, Debug)]
pub struct RegionInfo {
    /// Its id.
    pub id: RegionId,
    /// System chunks or an injected range.
    pub kind: RegionKind,
    /// First byte (injected regions; 0 for system regions).
    pub start: usize,
    /// Length in bytes (for system regions: bytes obtained so far).
    pub len: usize,
    /// Release policy.
    pub release: Release,
    /// Used only by heaps bound to it.
    pub exclusive: bool,
    /// Bytes carved into spans so far (the rest is untouched).
    pub carved_bytes: usize,
    /// Bytes in spans in use.
    pub in_use_bytes: usize,
    /// Bytes in free spans backed by memory.
    pub free_bytes: usize,
    /// Bytes in free spans whose backing was released.
    pub released_bytes: usize,
    label: Label,
}

impl RegionInfo {
    /// The label given at injection ("system" for system regions).
    pub fn label(&self) -> &str {
        self.label.as_str()
    }
}

/// Maximum number of regions (system allocators included).
pub const MAX_REGIONS: usize = 256;

const EMPTY: u8 = 0;
const ACTIVE: u8 = 2;

/// One slot of the region table. Fields other than `state` are written only
/// while the slot is EMPTY under `TABLE_LOCK`, then published by storing
/// ACTIVE with release ordering; readers load `state` with acquire first.
struct Slot {
    state: AtomicU8,
    kind: AtomicU8,
    start: AtomicUsize,
    len: AtomicUsize,
    /// Injected: next uncarved byte. Advanced by CAS, so heaps carve without
    /// a shared lock.
    cursor: AtomicUsize,
    /// System regions: the allocator (a `&'static dyn SysAllocator` boxed
    /// as a thin pointer to a static fat pointer).
    sys: AtomicPtr<&'static dyn SysAllocator>,
    /// Written only while the slot is EMPTY (under `TABLE_LOCK`), read only
    /// after `state` was seen ACTIVE: immutable while anyone reads it.
    info: UnsafeCell<SlotConfig>,
    in_use: AtomicUsize,
    free: AtomicUsize,
    released: AtomicUsize,
    /// Exclusive regions: the slot of the heap bound to it, or `UNBOUND`.
    heap: AtomicUsize,
}

/// No heap is bound to the region.
const UNBOUND: usize = usize::MAX;

#[derive(Clone, Copy)]
struct SlotConfig {
    release: Release,
    exclusive: bool,
    zeroed: bool,
    label: Label,
}

impl Slot {
    const fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            kind: AtomicU8::new(0),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            cursor: AtomicUsize::new(0),
            sys: AtomicPtr::new(core::ptr::null_mut()),
            info: UnsafeCell::new(SlotConfig {
                release: Release::Never,
                exclusive: false,
                zeroed: false,
                label: Label::EMPTY,
            }),
            in_use: AtomicUsize::new(0),
            free: AtomicUsize::new(0),
            released: AtomicUsize::new(0),
            heap: AtomicUsize::new(UNBOUND),
        }
    }
    fn active(&self) -> bool {
        self.state.load(Ordering::Acquire) == ACTIVE
    }
    fn config(&self) -> SlotConfig {
        // SAFETY: see the invariant on `info`: callers saw the slot ACTIVE.
        unsafe { *self.info.get() }
    }
}

// SAFETY: `info` is immutable while shared (see its invariant); the rest are
// atomics.
unsafe impl Sync for Slot {}

static TABLE: [Slot; MAX_REGIONS] = [const { Slot::new() }; MAX_REGIONS];
static TABLE_LOCK: Mutex<()> = Mutex::new(());
/// One past the highest slot ever used.
static HIGH: AtomicUsize = AtomicUsize::new(0);
/// The region of the current system allocator; `usize::MAX` until the first
/// growth or `set_system_allocator`.
static CURRENT_SYS: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Storage for the fat `&dyn SysAllocator` of each system region (a thin
/// pointer into this table is what `Slot::sys` holds).
static SYS_REFS: Mutex<[Option<&'static dyn SysAllocator>; MAX_REGIONS]> =
    Mutex::new([None; MAX_REGIONS]);

fn claim_slot(kind: RegionKind, start: usize, len: usize, cfg: SlotConfig) -> Option<u16> {
    // Called with TABLE_LOCK held.
    for (i, s) in TABLE.iter().enumerate() {
        if s.state.load(Ordering::Relaxed) == EMPTY {
            s.kind.store(kind as u8, Ordering::Relaxed);
            s.start.store(start, Ordering::Relaxed);
            s.len.store(len, Ordering::Relaxed);
            s.cursor.store(start, Ordering::Relaxed);
            // SAFETY: the slot is EMPTY and TABLE_LOCK is held: nobody reads
            // `info` until `state` is published below.
            unsafe { *s.info.get() = cfg };
            s.state.store(ACTIVE, Ordering::Release);
            HIGH.fetch_max(i + 1, Ordering::AcqRel);
            return Some(i as u16);
        }
    }
    None
}

fn register_system(a: &'static dyn SysAllocator, only_if_none: bool) -> Option<u16> {
    let _g = TABLE_LOCK.lock();
    let cur = CURRENT_SYS.load(Ordering::Acquire);
    if only_if_none && cur != usize::MAX {
        return Some(cur as u16);
    }
    let cfg = SlotConfig {
        release: Release::DontNeed,
        exclusive: false,
        zeroed: a.zeroed(),
        label: Label::from_str("system"),
    };
    let id = claim_slot(RegionKind::System, 0, 0, cfg)?;
    let mut refs = SYS_REFS.lock();
    let slot = &mut refs[id as usize];
    let p = slot.insert(a) as *mut &'static dyn SysAllocator;
    TABLE[id as usize].sys.store(p, Ordering::Release);
    CURRENT_SYS.store(id as usize, Ordering::Release);
    Some(id)
}

/// Installs the allocator that supplies fresh memory from now on. Memory the
/// previous one gave stays in use (and is released through it).
///
/// Call it before the first allocation to have all memory come from `a`
/// (in a program whose global allocator is `OxMalloc`, from a function in
/// `.init_array`, or at the top of `main` before anything allocates).
/// Returns quietly if the region table is full.
pub fn set_system_allocator(a: &'static dyn SysAllocator) {
    register_system(a, false);
}

/// The allocator that currently supplies fresh memory.
pub fn system_allocator() -> &'static dyn SysAllocator {
    match sys_of(CURRENT_SYS.load(Ordering::Acquire)) {
        Some(a) => a,
        None => &MmapSysAllocator,
    }
}

fn sys_of(id: usize) -> Option<&'static dyn SysAllocator> {
    let p = TABLE.get(id)?.sys.load(Ordering::Acquire);
    // SAFETY: published pointers point into SYS_REFS, whose entries are never
    // overwritten once set.
    unsafe { p.as_ref().copied() }
}

fn current_system() -> Option<u16> {
    let id = CURRENT_SYS.load(Ordering::Acquire);
    if id != usize::MAX {
        return Some(id as u16);
    }
    register_system(&MmapSysAllocator, true)
}

/// Hands the range `[start, start + len)` to oxmalloc.
///
/// Unaligned edges are trimmed to whole 8 KiB pages. No byte of the range is
/// touched, and metadata grows only as the region is used. A non-exclusive
/// region feeds the global heap and is used before the system allocator is
/// asked for more memory.
///
/// # Safety
/// The range must be readable and writable memory that stays mapped for the
/// rest of the process and that nothing else uses from now on.
///
/// # Example
/// ```
/// use oxmalloc::{inject, Release, RegionOptions};
/// let len = 64 << 20;
/// // SAFETY: a fresh private mapping, used for nothing else.
/// let p = unsafe {
///     libc::mmap(core::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE,
///                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1, 0)
/// };
/// let opts = RegionOptions::new().release(Release::DontNeed).zeroed(true).label("pool");
/// // SAFETY: the mapping is ours and handed over for good.
/// let id = unsafe { inject(p.cast(), len, opts) }.unwrap();
/// assert_eq!(oxmalloc::region_info(id).unwrap().label(), "pool");
/// ```
pub unsafe fn inject(
    start: *mut u8,
    len: usize,
    options: RegionOptions,
) -> Result<RegionId, InjectError> {
    if start.is_null() {
        return Err(InjectError::Null);
    }
    let raw = start as usize;
    let end = raw.checked_add(len).ok_or(InjectError::OutOfRange)?;
    let a = raw
        .checked_add(PAGE_SIZE - 1)
        .ok_or(InjectError::OutOfRange)?
        & !(PAGE_SIZE - 1);
    let b = end & !(PAGE_SIZE - 1);
    if b <= a {
        return Err(InjectError::TooSmall);
    }
    if b > 1usize << ADDRESS_BITS {
        return Err(InjectError::OutOfRange);
    }
    let _g = TABLE_LOCK.lock();
    for s in TABLE.iter().take(HIGH.load(Ordering::Acquire)) {
        if s.active() && s.kind.load(Ordering::Relaxed) == RegionKind::Injected as u8 {
            let (s0, s1) = (
                s.start.load(Ordering::Relaxed),
                s.start.load(Ordering::Relaxed) + s.len.load(Ordering::Relaxed),
            );
            if a < s1 && s0 < b {
                return Err(InjectError::Overlap);
            }
        }
    }
    if PAGEMAP.any_region_in(a >> PAGE_SHIFT, (b - a) >> PAGE_SHIFT) {
        return Err(InjectError::Overlap);
    }
    let cfg = SlotConfig {
        release: options.release,
        exclusive: options.exclusive,
        zeroed: options.zeroed,
        label: options.label,
    };
    claim_slot(RegionKind::Injected, a, b - a, cfg)
        .map(RegionId)
        .ok_or(InjectError::TooManyRegions)
}

/// The region `ptr` belongs to, if oxmalloc manages it. O(1) for memory from a
/// system allocator (a pagemap read); for injected memory a scan of the region
/// table, whose length is bounded by [`MAX_REGIONS`].
pub fn region_of(ptr: *const u8) -> Option<RegionId> {
    let addr = ptr as usize;
    let r = PAGEMAP.region(addr >> PAGE_SHIFT);
    if r != 0 {
        return Some(RegionId((r - 1) as u16));
    }
    for (i, s) in TABLE.iter().enumerate().take(HIGH.load(Ordering::Acquire)) {
        if s.active() && s.kind.load(Ordering::Relaxed) == RegionKind::Injected as u8 {
            let s0 = s.start.load(Ordering::Relaxed);
            if addr >= s0 && addr - s0 < s.len.load(Ordering::Relaxed) {
                return Some(RegionId(i as u16));
            }
        }
    }
    None
}

fn info_of(i: usize) -> Option<RegionInfo> {
    let s = TABLE.get(i)?;
    if !s.active() {
        return None;
    }
    let cfg = s.config();
    let kind = if s.kind.load(Ordering::Relaxed) == RegionKind::System as u8 {
        RegionKind::System
    } else {
        RegionKind::Injected
    };
    let start = s.start.load(Ordering::Relaxed);
    let len = s.len.load(Ordering::Relaxed);
    let carved = match kind {
        RegionKind::System => len,
        RegionKind::Injected => s.cursor.load(Ordering::Relaxed) - start,
    };
    Some(RegionInfo {
        id: RegionId(i as u16),
        kind,
        start,
        len,
        release: cfg.release,
        exclusive: cfg.exclusive,
        carved_bytes: carved,
        in_use_bytes: s.in_use.load(Ordering::Relaxed),
        free_bytes: s.free.load(Ordering::Relaxed),
        released_bytes: s.released.load(Ordering::Relaxed),
        label: cfg.label,
    })
}

/// A snapshot of region `id`.
pub fn region_info(id: RegionId) -> Option<RegionInfo> {
    info_of(id.index())
}

/// Calls `f` for every region, without allocating.
pub fn for_each_region(mut f: impl FnMut(&RegionInfo)) {
    for i in 0..HIGH.load(Ordering::Acquire) {
        if let Some(info) = info_of(i) {
            f(&info);
        }
    }
}

/// Pages handed to a page heap by [`carve`].
pub(crate) struct Carved {
    /// First page.
    pub start: usize,
    /// Pages.
    pub npages: usize,
    /// Owning region.
    pub region: u16,
    /// Known to be zero-filled.
    pub zeroed: bool,
}

/// Which regions a heap may carve from. Every region feeds exactly one heap,
/// so spans of one region are always in the same page heap.
#[derive(Clone, Copy)]
pub(crate) enum Source {
    /// Non-exclusive injected regions, then the system allocator.
    Global,
    /// Only this (exclusive) region; no fallback.
    #[cfg_attr(not(test), allow(dead_code))]
    Bound(u16),
}

/// Carves at least `npages` (preferably `want` pages) for a heap fed by
/// `source`, or `None` when no region has room and the system allocator fails.
pub(crate) fn carve(source: Source, npages: usize, want: usize) -> Option<Carved> {
    for (i, s) in TABLE.iter().enumerate().take(HIGH.load(Ordering::Acquire)) {
        if !s.active() || s.kind.load(Ordering::Relaxed) != RegionKind::Injected as u8 {
            continue;
        }
        let cfg = s.config();
        let ours = match source {
            Source::Global => !cfg.exclusive,
            Source::Bound(id) => id as usize == i,
        };
        if !ours {
            continue;
        }
        let end = s.start.load(Ordering::Relaxed) + s.len.load(Ordering::Relaxed);
        let mut cur = s.cursor.load(Ordering::Relaxed);
        loop {
            let left = (end - cur) >> PAGE_SHIFT;
            if left < npages {
                break;
            }
            let n = want.max(npages).min(left);
            let next = cur + (n << PAGE_SHIFT);
            match s
                .cursor
                .compare_exchange(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(Carved {
                        start: cur >> PAGE_SHIFT,
                        npages: n,
                        region: i as u16,
                        zeroed: cfg.zeroed,
                    })
                }
                Err(c) => cur = c,
            }
        }
    }
    if let Source::Bound(_) = source {
        return None;
    }
    let id = current_system()?;
    let sys = sys_of(id as usize)?;
    let bytes = want.max(npages).checked_mul(PAGE_SIZE)?;
    let got = sys.alloc(bytes, PAGE_SIZE)?;
    let addr = got.as_ptr() as *mut u8 as usize;
    let len = got.len() & !(PAGE_SIZE - 1);
    if !addr.is_multiple_of(PAGE_SIZE) || len < bytes || addr + len > 1usize << ADDRESS_BITS {
        os::fatal(format_args!(
            "system allocator returned misaligned or short memory (address {:#x})",
            addr
        ));
    }
    let (start, n) = (addr >> PAGE_SHIFT, len >> PAGE_SHIFT);
    if !PAGEMAP.ensure(start, n) {
        return None;
    }
    PAGEMAP.set_region(start, n, id as usize + 1);
    TABLE[id as usize].len.fetch_add(len, Ordering::Relaxed);
    Some(Carved {
        start,
        npages: n,
        region: id,
        zeroed: sys.zeroed(),
    })
}

/// Releases the backing of a free range of region `id` by its policy.
/// Returns `Some(zeroed)` when released (and whether it now reads as zero),
/// `None` when the policy keeps it.
pub(crate) fn release(id: u16, addr: usize, len: usize) -> Option<bool> {
    let s = &TABLE[id as usize];
    // SAFETY: page heap memory is never at address 0.
    let p = unsafe { NonNull::new_unchecked(addr as *mut u8) };
    if s.kind.load(Ordering::Relaxed) == RegionKind::System as u8 {
        let sys = sys_of(id as usize)?;
        // SAFETY: the page heap passes only free ranges of this allocator.
        return unsafe { sys.release(p, len) }.then_some(sys.zeroed());
    }
    let policy = s.config().release;
    // SAFETY: the page heap passes only free ranges inside the region.
    let ok = unsafe {
        match policy {
            Release::Never => false,
            Release::DontNeed => os::advise(addr as *mut u8, len, libc::MADV_DONTNEED),
            Release::Free => os::advise(addr as *mut u8, len, libc::MADV_FREE),
            Release::Remove => os::advise(addr as *mut u8, len, libc::MADV_REMOVE),
            Release::Custom(h) => h.release(p, len),
        }
    };
    ok.then_some(policy.zeroes())
}

/// Readies a released range for use again.
pub(crate) fn commit(id: u16, addr: usize, len: usize) -> bool {
    match sys_of(id as usize) {
        // SAFETY: the page heap passes ranges of this allocator's memory;
        // addresses of page heap memory are never 0.
        Some(sys) => unsafe { sys.commit(NonNull::new_unchecked(addr as *mut u8), len) },
        None => true,
    }
}

/// The slot of the heap region `id` feeds (0: the global heap).
pub(crate) fn heap_slot(id: u16) -> usize {
    let s = &TABLE[id as usize];
    if s.kind.load(Ordering::Relaxed) == RegionKind::System as u8 || !s.config().exclusive {
        return 0;
    }
    s.heap.load(Ordering::Acquire)
}

/// Moves `bytes` of region `id` between its counters.
pub(crate) fn account(
    id: u16,
    from: Option<crate::span::SpanState>,
    to: Option<crate::span::SpanState>,
    bytes: usize,
) {
    use crate::span::SpanState;
    let s = &TABLE[id as usize];
    let counter = |st: SpanState| match st {
        SpanState::InUse => &s.in_use,
        SpanState::Free => &s.free,
        SpanState::Released => &s.released,
    };
    if let Some(f) = from {
        counter(f).fetch_sub(bytes, Ordering::Relaxed);
    }
    if let Some(t) = to {
        counter(t).fetch_add(bytes, Ordering::Relaxed);
    }
}

pub(crate) fn fork_lock() {
    TABLE_LOCK.raw_lock();
}

/// # Safety
/// Paired with `fork_lock`.
pub(crate) unsafe fn fork_unlock() {
    // SAFETY: forwarded.
    unsafe { TABLE_LOCK.raw_unlock() };
}
