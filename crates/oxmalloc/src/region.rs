//! Regions: where a heap may carve pages from.
//!
//! A region is either a contiguous range a program handed to oxmalloc
//! ([`inject`]), or the chunks one [`SysAllocator`] produced. Every region has
//! an id, a kind of memory behind it ([`Backing`]), a release policy, a
//! release granularity and counters; every span belongs to exactly one
//! region, and coalescing never crosses a region boundary, so memory of
//! different kinds never shares a span. Region records live in a static
//! table, never inside the memory they describe; every managed range is in
//! the [address map](crate::address_map), which finds a pointer's region and
//! refuses overlaps.
//!
//! Injection is O(1) in the region's size: the region is carved lazily through
//! a cursor, so no page of it is touched, and pagemap leaves appear only where
//! spans are made.
//!
//! Each region feeds exactly one heap: system regions and non-exclusive
//! injected ones feed the global heap; an exclusive region feeds the heap
//! bound to it (none until one is). A region's counters change only under
//! that heap's page-heap lock.

use crate::address_map::AddressMap;
use crate::backing::{self, Backing, MappingError};
use crate::os;
use crate::pagemap::PAGEMAP;
use crate::release::{Release, ReleaseOutcome};
use crate::size_class::{PAGE_SHIFT, PAGE_SIZE};
use crate::sync::{Mutex, RawLock};
use crate::sys_allocator::{MmapSysAllocator, SysAllocator};
use core::cell::UnsafeCell;
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, AtomicU8, AtomicUsize, Ordering};

/// Maximum length of a region label, in bytes.
pub const LABEL_LEN: usize = 31;

/// Maximum number of regions at once, system allocators included. Slot 0 is
/// kept for the default system allocator, so a full table never stops
/// `malloc`; a retired region's slot is reused.
pub const MAX_REGIONS: usize = 1024;

/// One past the highest address a program can map (x86-64: 47 bits of user
/// space with 4-level paging; aarch64: 48 bits).
#[cfg(target_arch = "x86_64")]
const USER_TOP: usize = 1 << 47;
#[cfg(not(target_arch = "x86_64"))]
const USER_TOP: usize = 1 << ADDRESS_BITS;

/// How an injected region is to be used ([`inject`]). A builder:
/// `RegionOptions::new().release(Release::Never).exclusive(true).label("pool")`.
#[derive(Clone, Copy, Debug)]
pub struct RegionOptions {
    release: Release,
    exclusive: bool,
    zeroed: bool,
    label: Label,
    limit: usize,
    page_size: usize,
}

impl RegionOptions {
    /// Defaults: the release policy chosen from the memory ([`Release::Auto`]),
    /// not exclusive (feeds the global heap), contents not known to be zero,
    /// no label, no limit, the page size read from the mapping.
    pub const fn new() -> Self {
        Self {
            release: Release::Auto,
            exclusive: false,
            zeroed: false,
            label: Label::EMPTY,
            limit: 0,
            page_size: 0,
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
    /// At most `bytes` of the region are ever carved into spans (0: all of
    /// it): a budget for a large reservation.
    pub const fn limit(mut self, bytes: usize) -> Self {
        self.limit = bytes;
        self
    }
    /// The granularity at which the memory can be released, when reading it
    /// from the mapping is not enough (for example a hugetlb memfd): a power
    /// of two; ranges are released only in whole, aligned units of it.
    pub const fn page_size(mut self, bytes: usize) -> Self {
        self.page_size = bytes;
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

/// Identifies a region. A retired region's slot is reused, but its id is
/// not: the id carries the slot's generation, so a stale id is recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionId {
    idx: u16,
    gen: u16,
}

impl RegionId {
    /// The id of the region now in slot `idx`.
    pub(crate) fn current(idx: u16) -> RegionId {
        RegionId {
            idx,
            gen: TABLE[idx as usize].gen.load(Ordering::Acquire),
        }
    }

    /// The number of the region (its slot in the region table).
    pub fn index(self) -> usize {
        self.idx as usize
    }

    /// The slot, for the engine's records.
    pub(crate) fn slot(self) -> u16 {
        self.idx
    }

    /// The id of region number `i`, if there is such a region now (for
    /// interfaces that pass ids as numbers, such as the C library's).
    pub fn from_index(i: usize) -> Option<RegionId> {
        TABLE.get(i)?.active().then(|| RegionId::current(i as u16))
    }

    /// True while the region this id names exists (it was not retired).
    pub(crate) fn is_live(self) -> bool {
        let s = &TABLE[self.index()];
        s.active() && s.gen.load(Ordering::Acquire) == self.gen
    }

    /// True when this id named a region that was retired since.
    pub(crate) fn is_retired(self) -> bool {
        TABLE
            .get(self.index())
            .is_some_and(|s| s.gen.load(Ordering::Acquire) != self.gen)
    }
}

/// Why [`inject`] (or [`set_system_allocator`]) refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectError {
    /// The start address is null.
    Null,
    /// Nothing is left once the range is trimmed to whole pages.
    TooSmall,
    /// The range overlaps an injected region or memory oxmalloc already manages.
    Overlap,
    /// The range reaches beyond the user address space.
    OutOfRange,
    /// The region table is full ([`MAX_REGIONS`]).
    TooManyRegions,
    /// Some page of the range is not mapped.
    Unmapped,
    /// Some page of the range is not readable and writable (`PROT_NONE`, or
    /// read-only).
    NotWritable,
    /// The range spans mappings of different kinds (private and shared).
    MixedBacking,
    /// A page size that is not a power of two at least 8 KiB.
    BadPageSize,
    /// Metadata memory ran out.
    NoMemory,
}

impl fmt::Display for InjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InjectError::Null => "region start is null",
            InjectError::TooSmall => "nothing left after trimming the region to whole 8 KiB pages",
            InjectError::Overlap => {
                "region overlaps an injected region or memory oxmalloc already manages"
            }
            InjectError::OutOfRange => "region reaches beyond the user address space",
            InjectError::TooManyRegions => "too many regions",
            InjectError::Unmapped => "part of the region is not mapped",
            InjectError::NotWritable => "part of the region is not readable and writable",
            InjectError::MixedBacking => "the region spans private and shared mappings",
            InjectError::BadPageSize => "page size is not a power of two of at least 8 KiB",
            InjectError::NoMemory => "out of metadata memory",
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

/// A snapshot of one region ([`crate::region_info`], [`crate::for_each_region`]).
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
    /// Release policy (for system regions: what the allocator's release does).
    pub release: Release,
    /// The kind of memory.
    pub backing: Backing,
    /// Ranges are released in whole, aligned units of this many bytes.
    pub page_size: usize,
    /// Used only by heaps bound to it.
    pub exclusive: bool,
    /// At most this many bytes are carved (0: no limit).
    pub limit: usize,
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
    /// The label given at injection ("system" for system regions, or the
    /// allocator's name).
    pub fn label(&self) -> &str {
        self.label.as_str()
    }
}

const EMPTY: u8 = 0;
const ACTIVE: u8 = 2;

/// No heap is bound to the region.
pub(crate) const UNBOUND: usize = usize::MAX;
/// No fallback region yet.
const NO_REGION: usize = usize::MAX;

/// What a region is, fixed while it is active.
#[derive(Clone, Copy)]
struct SlotConfig {
    kind: RegionKind,
    /// Injected: the range.
    start: usize,
    len: usize,
    /// Injected: the policy.
    release: Release,
    /// System: the allocator.
    sys: Option<&'static dyn SysAllocator>,
    exclusive: bool,
    zeroed: bool,
    /// Release granularity (a power of two, at least PAGE_SIZE).
    granule: usize,
    label: Label,
}

impl SlotConfig {
    const NONE: SlotConfig = SlotConfig {
        kind: RegionKind::Injected,
        start: 0,
        len: 0,
        release: Release::Never,
        sys: None,
        exclusive: false,
        zeroed: false,
        granule: PAGE_SIZE,
        label: Label::EMPTY,
    };
}

/// One slot of the region table. `config` is written only while the slot is
/// EMPTY under `TABLE_LOCK`, then published by storing ACTIVE with release
/// ordering; readers load `state` with acquire first. The counters change
/// under the owning heap's page-heap lock.
struct Slot {
    state: AtomicU8,
    config: UnsafeCell<SlotConfig>,
    /// The memory behind the region ([`Backing`] as a number): fixed, except
    /// in a forked child, where shared regions become private copies.
    backing: AtomicU8,
    /// Injected: next uncarved byte.
    cursor: AtomicUsize,
    /// Injected: most bytes carved (0: no limit).
    limit: AtomicUsize,
    /// System: bytes obtained so far.
    obtained: AtomicUsize,
    in_use: AtomicUsize,
    free: AtomicUsize,
    released: AtomicUsize,
    /// Exclusive regions: the slot of the heap bound to it, or `UNBOUND`.
    heap: AtomicUsize,
    /// System regions: the region of this allocator's fallback, once used.
    fallback: AtomicUsize,
    /// Bumped each time the slot is freed, so ids of retired regions go
    /// stale.
    gen: AtomicU16,
}

impl Slot {
    const fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            config: UnsafeCell::new(SlotConfig::NONE),
            backing: AtomicU8::new(0),
            cursor: AtomicUsize::new(0),
            limit: AtomicUsize::new(0),
            obtained: AtomicUsize::new(0),
            in_use: AtomicUsize::new(0),
            free: AtomicUsize::new(0),
            released: AtomicUsize::new(0),
            heap: AtomicUsize::new(UNBOUND),
            fallback: AtomicUsize::new(NO_REGION),
            gen: AtomicU16::new(0),
        }
    }
    fn active(&self) -> bool {
        self.state.load(Ordering::Acquire) == ACTIVE
    }
    fn config(&self) -> SlotConfig {
        // SAFETY: see the invariant on `config`: callers saw the slot ACTIVE
        // (or hold TABLE_LOCK).
        unsafe { *self.config.get() }
    }
    fn backing(&self) -> Backing {
        backing_from(self.backing.load(Ordering::Relaxed))
    }
}

fn backing_to(b: Backing) -> u8 {
    match b {
        Backing::PrivateAnonymous => 0,
        Backing::PrivateFile => 1,
        Backing::Shared => 2,
        Backing::Unknown => 3,
    }
}

fn backing_from(v: u8) -> Backing {
    match v {
        0 => Backing::PrivateAnonymous,
        1 => Backing::PrivateFile,
        2 => Backing::Shared,
        _ => Backing::Unknown,
    }
}

// SAFETY: `config` is immutable while shared (see its invariant); the rest
// are atomics.
unsafe impl Sync for Slot {}

static TABLE: [Slot; MAX_REGIONS] = [const { Slot::new() }; MAX_REGIONS];
/// Serialises changes to the table and every use of the address map.
static TABLE_LOCK: Mutex<AddressMap> = Mutex::new(AddressMap::new());
/// One past the highest slot ever used.
static HIGH: AtomicUsize = AtomicUsize::new(0);
/// The region of the current system allocator; `NO_REGION` until the first
/// growth or `set_system_allocator`.
static CURRENT_SYS: AtomicUsize = AtomicUsize::new(NO_REGION);

/// Claims a slot (from `first` on) for `cfg`. Called with TABLE_LOCK held.
fn claim_slot(first: usize, cfg: SlotConfig, backing: Backing) -> Option<u16> {
    for (i, s) in TABLE.iter().enumerate().skip(first) {
        if s.state.load(Ordering::Relaxed) != EMPTY {
            continue;
        }
        // SAFETY: the slot is EMPTY and TABLE_LOCK is held: nobody reads
        // `config` until `state` is published below.
        unsafe { *s.config.get() = cfg };
        s.backing.store(backing_to(backing), Ordering::Relaxed);
        s.cursor.store(cfg.start, Ordering::Relaxed);
        s.limit.store(0, Ordering::Relaxed);
        s.obtained.store(0, Ordering::Relaxed);
        s.in_use.store(0, Ordering::Relaxed);
        s.free.store(0, Ordering::Relaxed);
        s.released.store(0, Ordering::Relaxed);
        s.heap.store(UNBOUND, Ordering::Relaxed);
        s.fallback.store(NO_REGION, Ordering::Relaxed);
        s.state.store(ACTIVE, Ordering::Release);
        HIGH.fetch_max(i + 1, Ordering::AcqRel);
        return Some(i as u16);
    }
    None
}

fn system_config(a: &'static dyn SysAllocator, label: &str) -> SlotConfig {
    SlotConfig {
        kind: RegionKind::System,
        start: 0,
        len: 0,
        release: a.release_policy(),
        sys: Some(a),
        exclusive: false,
        zeroed: a.zeroed(),
        granule: a.page_size().max(PAGE_SIZE).next_power_of_two(),
        label: Label::from_str(label),
    }
}

fn system_backing(a: &dyn SysAllocator) -> Backing {
    if a.shared() {
        Backing::Shared
    } else {
        Backing::PrivateAnonymous
    }
}

/// Registers system allocator `a` as a region (slot 0 for the default
/// allocator).
fn register_system(a: &'static dyn SysAllocator, first: usize, label: &str) -> Option<u16> {
    claim_slot(first, system_config(a, label), system_backing(a))
}

/// Installs the allocator that supplies fresh memory from now on, as a
/// region of its own. Memory the previous one gave stays in use (and is
/// released through it).
///
/// Call it before the first allocation to have all memory come from `a`
/// (in a program whose global allocator is `OxMalloc`, from a function in
/// `.init_array`, or at the top of `main` before anything allocates).
/// Fails with [`InjectError::TooManyRegions`] when the region table is full;
/// the previous allocator then stays in use.
pub fn set_system_allocator(a: &'static dyn SysAllocator) -> Result<RegionId, InjectError> {
    let _g = TABLE_LOCK.lock();
    let id = register_system(a, 1, "system").ok_or(InjectError::TooManyRegions)?;
    CURRENT_SYS.store(id as usize, Ordering::Release);
    Ok(RegionId::current(id))
}

/// The allocator that currently supplies fresh memory.
pub fn system_allocator() -> &'static dyn SysAllocator {
    match TABLE
        .get(CURRENT_SYS.load(Ordering::Acquire))
        .and_then(|s| s.config().sys)
    {
        Some(a) => a,
        None => &MmapSysAllocator,
    }
}

/// The region of the current system allocator, registering the default one
/// (in its reserved slot 0) at the first call.
fn current_system() -> Option<u16> {
    let id = CURRENT_SYS.load(Ordering::Acquire);
    if id != NO_REGION {
        return Some(id as u16);
    }
    let _g = TABLE_LOCK.lock();
    let id = CURRENT_SYS.load(Ordering::Acquire);
    if id != NO_REGION {
        return Some(id as u16);
    }
    let id = register_system(&MmapSysAllocator, 0, "system")?;
    CURRENT_SYS.store(id as usize, Ordering::Release);
    Some(id)
}

/// The region of the fallback `f` of system region `id`, registered at the
/// first use.
fn fallback_region(id: u16, f: &'static dyn SysAllocator) -> Option<u16> {
    let s = &TABLE[id as usize];
    let r = s.fallback.load(Ordering::Acquire);
    if r != NO_REGION {
        return Some(r as u16);
    }
    let _g = TABLE_LOCK.lock();
    let r = s.fallback.load(Ordering::Acquire);
    if r != NO_REGION {
        return Some(r as u16);
    }
    let r = register_system(f, 1, "system fallback")?;
    s.fallback.store(r as usize, Ordering::Release);
    Some(r)
}

/// Hands the range `[start, start + len)` to oxmalloc.
///
/// Unaligned edges are trimmed to whole 8 KiB pages. The range is checked
/// against `/proc/self/maps` (it must be mapped readable and writable, and of
/// one kind: private or shared), which also tells what kind of memory it is
/// and so what releasing it does; where `/proc` cannot be read the range is
/// taken as it is, and released memory is not assumed to be zero. No byte of
/// the range is touched, and metadata grows only as the region is used. A
/// non-exclusive region feeds the global heap and is used before the system
/// allocator is asked for more memory.
///
/// The cost does not depend on the region's size: a 1 TiB reservation is
/// one line of `/proc/self/maps` and one entry of the address map.
///
/// # Safety
/// The range must be readable and writable memory that stays mapped for the
/// rest of the process (or until the region is retired) and that nothing
/// else uses from now on.
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
    if b > USER_TOP {
        return Err(InjectError::OutOfRange);
    }
    let ps = options.page_size;
    if ps != 0 && (!ps.is_power_of_two() || ps < PAGE_SIZE) {
        return Err(InjectError::BadPageSize);
    }
    let mapping = backing::inspect(a, b).map_err(|e| match e {
        MappingError::Unmapped => InjectError::Unmapped,
        MappingError::NotWritable => InjectError::NotWritable,
        MappingError::Mixed => InjectError::MixedBacking,
    })?;
    let cfg = SlotConfig {
        kind: RegionKind::Injected,
        start: a,
        len: b - a,
        release: options.release,
        sys: None,
        exclusive: options.exclusive,
        zeroed: options.zeroed,
        granule: ps.max(mapping.page_size).next_power_of_two(),
        label: options.label,
    };
    let mut map = TABLE_LOCK.lock();
    if map.overlapping(a, b).is_some() {
        return Err(InjectError::Overlap);
    }
    let id = claim_slot(1, cfg, mapping.backing).ok_or(InjectError::TooManyRegions)?;
    TABLE[id as usize]
        .limit
        .store(options.limit, Ordering::Relaxed);
    if !matches!(map.insert(a, b, id), Ok(true)) {
        TABLE[id as usize].state.store(EMPTY, Ordering::Release);
        return Err(InjectError::NoMemory);
    }
    Ok(RegionId::current(id))
}

/// The region `ptr` belongs to, if oxmalloc manages it: a search of the
/// address map, O(log n) in the number of managed ranges.
pub fn region_of(ptr: *const u8) -> Option<RegionId> {
    let map = TABLE_LOCK.lock();
    map.find(ptr as usize).map(|e| RegionId::current(e.region))
}

/// A snapshot of region `i`'s record. Consistent only when the caller holds
/// the page-heap lock of the heap the region feeds.
pub(crate) fn info_of(i: usize) -> Option<RegionInfo> {
    let s = TABLE.get(i)?;
    if !s.active() {
        return None;
    }
    let cfg = s.config();
    let (start, len, carved) = match cfg.kind {
        RegionKind::System => {
            let n = s.obtained.load(Ordering::Relaxed);
            (0, n, n)
        }
        RegionKind::Injected => (
            cfg.start,
            cfg.len,
            s.cursor.load(Ordering::Relaxed) - cfg.start,
        ),
    };
    Some(RegionInfo {
        id: RegionId::current(i as u16),
        kind: cfg.kind,
        start,
        len,
        release: cfg.release,
        backing: s.backing(),
        page_size: cfg.granule,
        exclusive: cfg.exclusive,
        limit: s.limit.load(Ordering::Relaxed),
        carved_bytes: carved,
        in_use_bytes: s.in_use.load(Ordering::Relaxed),
        free_bytes: s.free.load(Ordering::Relaxed),
        released_bytes: s.released.load(Ordering::Relaxed),
        label: cfg.label,
    })
}

/// One past the highest region slot ever used.
pub(crate) fn high() -> usize {
    HIGH.load(Ordering::Acquire)
}

/// Pages handed to a page heap by [`carve_injected`] or [`carve_system`].
pub(crate) struct Carved {
    /// First page.
    pub start: usize,
    /// Pages.
    pub npages: usize,
    /// Owning region.
    pub region: u16,
    /// Known to be zero-filled.
    pub zeroed: bool,
    /// Carved from a system allocator (counts toward the heap limit).
    pub system: bool,
}

/// Which regions a heap may carve from. Every region feeds exactly one heap,
/// so spans of one region are always in the same page heap.
#[derive(Clone, Copy)]
pub(crate) enum Source {
    /// Non-exclusive injected regions, then the system allocator.
    Global,
    /// Only the exclusive regions bound to the heap in this slot.
    Bound(usize),
}

/// Carves at least `npages` (preferably `want`) pages of an injected region
/// that feeds `source`, or `None` when none has room.
pub(crate) fn carve_injected(source: Source, npages: usize, want: usize) -> Option<Carved> {
    for (i, s) in TABLE.iter().enumerate().take(high()) {
        if !s.active() {
            continue;
        }
        let cfg = s.config();
        if cfg.kind != RegionKind::Injected {
            continue;
        }
        let ours = match source {
            Source::Global => !cfg.exclusive,
            Source::Bound(slot) => cfg.exclusive && s.heap.load(Ordering::Acquire) == slot,
        };
        if !ours {
            continue;
        }
        if let Some(c) = carve_from(i, npages, want) {
            return Some(c);
        }
    }
    None
}

/// Carves at least `npages` (preferably `want`) pages of injected region
/// `id` right at `page`, where its carved part ends (for a span there that
/// grows in place). The caller holds the page-heap lock of the heap the
/// region feeds.
pub(crate) fn carve_after(id: u16, page: usize, npages: usize, want: usize) -> Option<Carved> {
    let s = &TABLE[id as usize];
    let at_cursor = s.active()
        && s.config().kind == RegionKind::Injected
        && s.cursor.load(Ordering::Relaxed) == page << PAGE_SHIFT;
    if at_cursor {
        carve_from(id as usize, npages, want)
    } else {
        None
    }
}

/// Carves at least `npages` (preferably `want`) pages at the cursor of
/// active injected region `i`, within its limit; `None` when fewer are left.
fn carve_from(i: usize, npages: usize, want: usize) -> Option<Carved> {
    let s = &TABLE[i];
    let cfg = s.config();
    let mut end = cfg.start + cfg.len;
    let limit = s.limit.load(Ordering::Relaxed);
    if limit != 0 {
        end = end.min(cfg.start.saturating_add(limit & !(PAGE_SIZE - 1)));
    }
    let cur = s.cursor.load(Ordering::Relaxed);
    let left = end.saturating_sub(cur) >> PAGE_SHIFT;
    if left < npages {
        return None;
    }
    let n = want.max(npages).min(left);
    // The cursor moves only under the page-heap lock of the heap the region
    // feeds, which the caller holds.
    s.cursor.store(cur + (n << PAGE_SHIFT), Ordering::Relaxed);
    Some(Carved {
        start: cur >> PAGE_SHIFT,
        npages: n,
        region: i as u16,
        zeroed: cfg.zeroed,
        system: false,
    })
}

/// Carves at least `npages` (preferably `want`) pages from the system
/// allocator, asking for `want` first and then for exactly `npages`, then the
/// same of its fallback (and the fallback's fallback). `None` when all of them
/// fail.
pub(crate) fn carve_system(npages: usize, want: usize) -> Option<Carved> {
    let mut id = current_system()?;
    loop {
        let sys = TABLE[id as usize].config().sys?;
        let align = sys.page_size().max(PAGE_SIZE).next_power_of_two();
        // The preferred chunk, then exactly what the request needs (asked
        // again even when it is the same size: a failure may be passing).
        for n in [want.max(npages), npages] {
            let Some(bytes) = n.checked_mul(PAGE_SIZE) else {
                continue;
            };
            let got = {
                let _guard = os::CallbackGuard::enter(os::Callback::SysAlloc);
                sys.alloc(bytes, align)
            };
            if let Some(got) = got {
                return register_chunk(id, sys, got, bytes);
            }
        }
        id = fallback_region(id, sys.fallback()?)?;
    }
}

/// Records a chunk `got` (asked: `bytes`) of system region `id`.
fn register_chunk(
    id: u16,
    sys: &dyn SysAllocator,
    got: NonNull<[u8]>,
    bytes: usize,
) -> Option<Carved> {
    let addr = got.as_ptr() as *mut u8 as usize;
    let len = got.len() & !(PAGE_SIZE - 1);
    if !addr.is_multiple_of(PAGE_SIZE) || len < bytes || addr.checked_add(len)? > USER_TOP {
        os::fatal(format_args!(
            "system allocator returned misaligned or short memory (address {addr:#x}, {len} bytes, {bytes} asked)"
        ));
    }
    let (start, n) = (addr >> PAGE_SHIFT, len >> PAGE_SHIFT);
    {
        let mut map = TABLE_LOCK.lock();
        match map.insert(addr, addr + len, id) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(o) => os::fatal(format_args!(
                "system allocator returned memory oxmalloc already manages (address {addr:#x}, {len} bytes, overlapping region {} at {:#x})",
                o.0.region, o.0.start
            )),
        }
    }
    if !PAGEMAP.ensure(start, n) {
        return None;
    }
    TABLE[id as usize]
        .obtained
        .fetch_add(len, Ordering::Relaxed);
    Some(Carved {
        start,
        npages: n,
        region: id,
        zeroed: sys.zeroed(),
        system: true,
    })
}

/// The release granularity of region `id` in pages.
pub(crate) fn granule_pages(id: u16) -> usize {
    TABLE[id as usize].config().granule >> PAGE_SHIFT
}

/// True when region `id` is a system region (its memory counts toward the
/// heap limit).
pub(crate) fn is_system(id: u16) -> bool {
    TABLE[id as usize].config().kind == RegionKind::System
}

/// True when pages of region `id` may be moved with `mremap` (its system
/// allocator says so, and its memory is still private).
pub(crate) fn movable(id: u16) -> bool {
    let s = &TABLE[id as usize];
    os::page_size() <= PAGE_SIZE
        && s.backing() == Backing::PrivateAnonymous
        && s.config().sys.is_some_and(|a| a.movable())
}

/// True when free pages of region `id` can never be released (its policy
/// keeps them).
pub(crate) fn never_releases(id: u16) -> bool {
    let s = &TABLE[id as usize];
    let cfg = s.config();
    cfg.kind == RegionKind::Injected && cfg.release.never_releases(s.backing())
}

/// Releases the backing of a free range of region `id` (aligned to its
/// granule) by its policy.
pub(crate) fn release(id: u16, addr: usize, len: usize) -> ReleaseOutcome {
    let s = &TABLE[id as usize];
    let cfg = s.config();
    let _guard = os::CallbackGuard::enter(os::Callback::Release);
    if let Some(sys) = cfg.sys {
        // SAFETY: page heap memory is never at address 0; the page heap
        // passes only free ranges of this allocator's memory.
        return unsafe { sys.release(NonNull::new_unchecked(addr as *mut u8), len) };
    }
    // SAFETY: the page heap passes only free ranges inside the region.
    unsafe { cfg.release.apply(s.backing(), addr, len) }
}

/// Readies a released range for use again.
pub(crate) fn commit(id: u16, addr: usize, len: usize) -> bool {
    let cfg = TABLE[id as usize].config();
    let _guard = os::CallbackGuard::enter(os::Callback::Commit);
    match cfg.sys {
        // SAFETY: the page heap passes ranges of this allocator's memory;
        // addresses of page heap memory are never 0.
        Some(sys) => unsafe { sys.commit(NonNull::new_unchecked(addr as *mut u8), len) },
        None => cfg.release.commit(addr, len),
    }
}

/// The slot of the heap region `id` feeds (0: the global heap; `UNBOUND` for
/// an exclusive region no heap is bound to).
pub(crate) fn heap_slot(id: u16) -> usize {
    let s = &TABLE[id as usize];
    let cfg = s.config();
    if cfg.kind == RegionKind::System || !cfg.exclusive {
        return 0;
    }
    s.heap.load(Ordering::Acquire)
}

/// Why a region cannot be bound to a heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BindError {
    /// No such region.
    Unknown,
    /// The region was retired.
    Retired,
    /// The region is not exclusive.
    NotExclusive,
    /// Another heap is bound to it.
    AlreadyBound,
}

/// Binds exclusive region `id` to the heap in `slot`.
pub(crate) fn bind(id: RegionId, slot: usize) -> Result<(), BindError> {
    let _g = TABLE_LOCK.lock();
    let s = TABLE.get(id.index()).ok_or(BindError::Unknown)?;
    if id.is_retired() {
        return Err(BindError::Retired);
    }
    if !s.active() {
        return Err(BindError::Unknown);
    }
    let cfg = s.config();
    if cfg.kind != RegionKind::Injected || !cfg.exclusive {
        return Err(BindError::NotExclusive);
    }
    s.heap
        .compare_exchange(UNBOUND, slot, Ordering::AcqRel, Ordering::Acquire)
        .map(|_| ())
        .map_err(|_| BindError::AlreadyBound)
}

/// The slots of the regions bound to the heap in `slot`, in slot order:
/// `f(region)` for each.
pub(crate) fn for_each_bound(slot: usize, mut f: impl FnMut(u16)) {
    for (i, s) in TABLE.iter().enumerate().take(high()) {
        if s.active() && s.config().exclusive && s.heap.load(Ordering::Acquire) == slot {
            f(i as u16);
        }
    }
}

/// The range `[start, cursor)` carved so far of injected region `id`.
pub(crate) fn carved_range(id: u16) -> (usize, usize) {
    let s = &TABLE[id as usize];
    (s.config().start, s.cursor.load(Ordering::Relaxed))
}

/// Removes injected region `id` from the table and the address map (its
/// spans must be gone from the pagemap already); its slot is reused. Returns
/// the range it covered.
pub(crate) fn remove(id: u16) -> (usize, usize) {
    let mut map = TABLE_LOCK.lock();
    let s = &TABLE[id as usize];
    let cfg = s.config();
    map.remove_region(id);
    s.heap.store(UNBOUND, Ordering::Relaxed);
    s.gen.fetch_add(1, Ordering::AcqRel);
    s.state.store(EMPTY, Ordering::Release);
    (cfg.start, cfg.len)
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

/// True when some region's memory is shared (a forked child must then get
/// private copies of it).
pub(crate) fn has_shared() -> bool {
    TABLE
        .iter()
        .take(high())
        .any(|s| s.active() && s.backing() == Backing::Shared)
}

/// Calls `f` for every region whose memory is shared.
pub(crate) fn for_each_shared(mut f: impl FnMut(u16)) {
    for (i, s) in TABLE.iter().enumerate().take(high()) {
        if s.active() && s.backing() == Backing::Shared {
            f(i as u16);
        }
    }
}

/// Calls `f(start, end)` (bytes) for every range of region `id` that holds
/// spans: the chunks of a system region, the carved part of an injected one.
/// `f` must not call back into the region table.
pub(crate) fn for_each_chunk(id: u16, mut f: impl FnMut(usize, usize)) {
    let s = &TABLE[id as usize];
    if s.config().kind == RegionKind::Injected {
        let (a, b) = carved_range(id);
        if b > a {
            f(a, b);
        }
        return;
    }
    let map = TABLE_LOCK.lock();
    map.for_each_of(id, |e| f(e.start, e.end));
}

/// In a forked child, once the chunks of shared region `id` were replaced
/// by private copies: an injected region becomes private anonymous memory
/// (its uncarved rest too, mapped fresh); a system region's chunks move to a
/// new region of private anonymous memory (returned, to retag their spans),
/// and its allocator is told to stop sharing (the region stays its own, for
/// new chunks). `None` for an injected region, or when no slot is left (the
/// region is then marked private, its allocator's releases failing
/// harmlessly).
pub(crate) fn privatized(id: u16) -> Option<u16> {
    let s = &TABLE[id as usize];
    let cfg = s.config();
    s.backing
        .store(backing_to(Backing::PrivateAnonymous), Ordering::Relaxed);
    if cfg.kind == RegionKind::Injected {
        let cursor = s.cursor.load(Ordering::Relaxed);
        let end = cfg.start + cfg.len;
        if end > cursor && !os::map_fresh_at(cursor, end - cursor) {
            os::fatal(format_args!(
                "fork: cannot replace the shared region at {:#x} by private memory",
                cfg.start
            ));
        }
        return None;
    }
    let copy = {
        let mut map = TABLE_LOCK.lock();
        let copy = register_system(&MmapSysAllocator, 1, "forked copy");
        if let Some(c) = copy {
            map.retag(id, c);
            let t = &TABLE[c as usize];
            t.obtained
                .store(s.obtained.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        } else {
            s.backing
                .store(backing_to(Backing::Shared), Ordering::Relaxed);
        }
        copy
    };
    if let Some(sys) = cfg.sys {
        sys.after_fork_in_child();
    }
    copy
}

/// The region table's lock (for fork).
pub(crate) fn lock() -> &'static dyn RawLock {
    &TABLE_LOCK
}
