//! The region API of `include/oxmalloc.h`: injecting memory, installing a
//! system allocator written in C, and reading region records.
//!
//! The engine holds C callbacks as `&'static dyn` objects; they live in fixed
//! static tables ([`MAX_C_SYS_ALLOCATORS`] system allocators,
//! [`MAX_C_RELEASE_HOOKS`] custom release policies), so nothing here
//! allocates.

use crate::slots::Slots;
use core::ffi::{c_char, c_int, c_uint, c_void, CStr};
use core::ptr::NonNull;
use engine::{
    Backing, RegionInfo, RegionKind, RegionOptions, Release, ReleaseHook, ReleaseOutcome,
    SysAllocator,
};

/// How many system allocators C code may install over the process's life.
pub const MAX_C_SYS_ALLOCATORS: usize = 16;
/// How many injected regions may have a C release function at once.
pub const MAX_C_RELEASE_HOOKS: usize = 64;

/// `enum oxmalloc_release`: release policies (0, the default, is AUTO).
const RELEASE_AUTO: c_int = 0;
const RELEASE_NEVER: c_int = 1;
const RELEASE_FREE: c_int = 2;
const RELEASE_REMOVE: c_int = 3;
const RELEASE_CUSTOM: c_int = 4;
const RELEASE_DONTNEED: c_int = 5;

/// `enum oxmalloc_released`: what a C release function reports.
/// (`OXMALLOC_RELEASED_UNDEFINED`, 1, and any other value: released, contents
/// undefined.)
const RELEASED_KEPT: c_int = 0;
const RELEASED_ZEROED: c_int = 2;

/// `enum oxmalloc_inject_result`: what [`oxmalloc_inject`] returns.
const INJECT_OK: c_int = 0;
const INJECT_NULL: c_int = 1;
const INJECT_TOO_SMALL: c_int = 2;
const INJECT_OVERLAP: c_int = 3;
const INJECT_OUT_OF_RANGE: c_int = 4;
const INJECT_TOO_MANY_REGIONS: c_int = 5;
const INJECT_BAD_OPTIONS: c_int = 6;
const INJECT_TOO_MANY_HOOKS: c_int = 7;
const INJECT_UNMAPPED: c_int = 8;
const INJECT_NOT_WRITABLE: c_int = 9;
const INJECT_MIXED_BACKING: c_int = 10;
const INJECT_BAD_PAGE_SIZE: c_int = 11;
const INJECT_NO_MEMORY: c_int = 12;

/// `oxmalloc_release_fn`: releases `[ptr, ptr + len)`; returns an `enum
/// oxmalloc_released` (0: nothing released, 1: released, contents undefined,
/// 2: released and reads as zero).
pub type ReleaseFn = unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void, len: usize) -> c_int;
/// `oxmalloc_commit_fn`: makes `[ptr, ptr + len)` usable again; non-zero on
/// success.
pub type CommitFn = unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void, len: usize) -> c_int;
/// `oxmalloc_sys_alloc_fn`: at least `size` bytes aligned to `align`, or
/// null; may raise `*actual` to say how much it really gave.
pub type SysAllocFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    size: usize,
    align: usize,
    actual: *mut usize,
) -> *mut c_void;

/// `struct oxmalloc_region_options`. All zero (or a null pointer) means the
/// defaults: the release policy chosen from the memory (AUTO), not
/// exclusive, not known to be zero, no label, no limit, the page size read
/// from the mapping.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CRegionOptions {
    /// `enum oxmalloc_release`.
    pub release: c_int,
    /// For `OXMALLOC_RELEASE_CUSTOM`: the function, called with `release_ctx`.
    pub release_fn: Option<ReleaseFn>,
    /// Passed to `release_fn`.
    pub release_ctx: *mut c_void,
    /// Non-zero: only heaps bound to the region use it.
    pub exclusive: c_int,
    /// Non-zero: the memory is known to be zero-filled.
    pub zeroed: c_int,
    /// A NUL-terminated name for reports, or null (cut at 31 bytes).
    pub label: *const c_char,
    /// For `OXMALLOC_RELEASE_CUSTOM`: called (with `release_ctx`) before
    /// released memory is used again; null: nothing to do.
    pub commit_fn: Option<CommitFn>,
    /// At most this many bytes of the region are carved (0: no limit).
    pub limit: usize,
    /// The release granularity (0: read from the mapping).
    pub page_size: usize,
}

/// `struct oxmalloc_sys_allocator`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CSysAllocator {
    /// Required.
    pub alloc: Option<SysAllocFn>,
    /// Null: `madvise(MADV_DONTNEED)`.
    pub release: Option<ReleaseFn>,
    /// Null: nothing to do before reuse. Returns non-zero on success.
    pub commit: Option<CommitFn>,
    /// Non-zero when fresh memory reads as zero.
    pub zeroed: c_int,
    /// Passed to every function.
    pub ctx: *mut c_void,
    /// Non-zero when chunks are shared mappings (a forked child gets private
    /// copies of them).
    pub shared: c_int,
    /// The release granularity (0: 8 KiB).
    pub page_size: usize,
}

/// `struct oxmalloc_region_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CRegionInfo {
    /// The region's number.
    pub id: c_uint,
    /// `OXMALLOC_REGION_SYSTEM` (0) or `OXMALLOC_REGION_INJECTED` (1).
    pub kind: c_int,
    /// First byte (null for system regions).
    pub start: *mut c_void,
    /// Length (system regions: bytes obtained so far).
    pub len: usize,
    /// `enum oxmalloc_release`.
    pub release: c_int,
    /// Non-zero when exclusive.
    pub exclusive: c_int,
    /// `enum oxmalloc_backing`.
    pub backing: c_int,
    /// The release granularity in bytes.
    pub page_size: usize,
    /// At most this many bytes are carved (0: no limit).
    pub limit: usize,
    /// Bytes carved into spans so far.
    pub carved_bytes: usize,
    /// Bytes in spans in use.
    pub in_use_bytes: usize,
    /// Bytes in free spans backed by memory.
    pub free_bytes: usize,
    /// Bytes in free spans whose backing was released.
    pub released_bytes: usize,
    /// The label, NUL-terminated.
    pub label: [c_char; 32],
}

/// What a C release function's result means.
fn outcome(code: c_int) -> ReleaseOutcome {
    match code {
        RELEASED_KEPT => ReleaseOutcome::Kept,
        RELEASED_ZEROED => ReleaseOutcome::Zeroed,
        // RELEASED_UNDEFINED, and any value the header does not name.
        _ => ReleaseOutcome::Released,
    }
}

/// A C release function (and its commit function) with its context.
#[derive(Clone, Copy)]
struct CReleaseHook {
    f: ReleaseFn,
    commit: Option<CommitFn>,
    ctx: *mut c_void,
}

// SAFETY: the header requires release functions to be callable from any
// thread with their context.
unsafe impl Send for CReleaseHook {}
// SAFETY: as above.
unsafe impl Sync for CReleaseHook {}

impl ReleaseHook for CReleaseHook {
    fn release(&self, ptr: NonNull<u8>, len: usize) -> ReleaseOutcome {
        // SAFETY: the function and context C gave for this region; the
        // engine passes a free range of it.
        outcome(unsafe { (self.f)(self.ctx, ptr.as_ptr().cast(), len) })
    }

    fn commit(&self, ptr: NonNull<u8>, len: usize) -> bool {
        match self.commit {
            // SAFETY: C's function, on a released range of its region.
            Some(f) => unsafe { f(self.ctx, ptr.as_ptr().cast(), len) != 0 },
            None => true,
        }
    }
}

/// A C system allocator (with a non-null `alloc`).
#[derive(Clone, Copy)]
struct CSys {
    alloc: SysAllocFn,
    release: Option<ReleaseFn>,
    commit: Option<CommitFn>,
    zeroed: bool,
    shared: bool,
    page_size: usize,
    ctx: *mut c_void,
}

// SAFETY: the header requires the functions to be callable from any thread.
unsafe impl Send for CSys {}
// SAFETY: as above.
unsafe impl Sync for CSys {}

// SAFETY: the header passes the `SysAllocator` contract on to the C code.
unsafe impl SysAllocator for CSys {
    fn alloc(&self, size: usize, align: usize) -> Option<NonNull<[u8]>> {
        let mut actual = size;
        // SAFETY: C's function, with a valid out-pointer for `actual`.
        let p = unsafe { (self.alloc)(self.ctx, size, align, &mut actual) };
        Some(NonNull::slice_from_raw_parts(
            NonNull::new(p.cast())?,
            actual,
        ))
    }

    unsafe fn release(&self, ptr: NonNull<u8>, len: usize) -> ReleaseOutcome {
        match self.release {
            // SAFETY: C's function, on a free range of its memory (caller).
            Some(f) => outcome(unsafe { f(self.ctx, ptr.as_ptr().cast(), len) }),
            None if self.shared => ReleaseOutcome::Kept,
            // SAFETY: the range is unused (caller).
            None => match unsafe { engine::os::advise(ptr.as_ptr(), len, libc::MADV_DONTNEED) } {
                false => ReleaseOutcome::Kept,
                true if self.zeroed => ReleaseOutcome::Zeroed,
                true => ReleaseOutcome::Released,
            },
        }
    }

    unsafe fn commit(&self, ptr: NonNull<u8>, len: usize) -> bool {
        match self.commit {
            // SAFETY: C's function, on a range of its memory (caller).
            Some(f) => unsafe { f(self.ctx, ptr.as_ptr().cast(), len) != 0 },
            None => true,
        }
    }

    fn zeroed(&self) -> bool {
        self.zeroed
    }

    fn shared(&self) -> bool {
        self.shared
    }

    fn page_size(&self) -> usize {
        self.page_size.max(8192)
    }

    fn release_policy(&self) -> Release {
        match self.release {
            Some(_) => Release::Custom(&C_SYS_RELEASE),
            None if self.shared => Release::Never,
            None => Release::DontNeed,
        }
    }
}

/// What reports show as the policy of a C system allocator's release
/// function (it is never called: the allocator's own function is).
struct CSysRelease;

impl ReleaseHook for CSysRelease {
    fn release(&self, _ptr: NonNull<u8>, _len: usize) -> ReleaseOutcome {
        ReleaseOutcome::Kept
    }
}

static C_SYS_RELEASE: CSysRelease = CSysRelease;

static SYS_ALLOCATORS: Slots<CSys, MAX_C_SYS_ALLOCATORS> = Slots::new();
static RELEASE_HOOKS: Slots<CReleaseHook, MAX_C_RELEASE_HOOKS> = Slots::new();

/// The `&str` of a C label: its longest valid UTF-8 prefix.
///
/// # Safety
/// `label` is null or NUL-terminated.
unsafe fn label_str<'a>(label: *const c_char) -> &'a str {
    if label.is_null() {
        return "";
    }
    // SAFETY: NUL-terminated (caller).
    let bytes = unsafe { CStr::from_ptr(label) }.to_bytes();
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => bytes
            .get(..e.valid_up_to())
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or(""),
    }
}

/// Converts C options, with the release hook slot they took (if any); `Err`
/// carries the `oxmalloc_inject` result code.
///
/// # Safety
/// `o.label` is null or NUL-terminated.
unsafe fn options(
    o: &CRegionOptions,
) -> Result<(RegionOptions, Option<&'static CReleaseHook>), c_int> {
    let mut hook = None;
    let release = match o.release {
        RELEASE_AUTO => Release::Auto,
        RELEASE_DONTNEED => Release::DontNeed,
        RELEASE_NEVER => Release::Never,
        RELEASE_FREE => Release::Free,
        RELEASE_REMOVE => Release::Remove,
        RELEASE_CUSTOM => {
            let f = o.release_fn.ok_or(INJECT_BAD_OPTIONS)?;
            let h = RELEASE_HOOKS
                .claim(CReleaseHook {
                    f,
                    commit: o.commit_fn,
                    ctx: o.release_ctx,
                })
                .ok_or(INJECT_TOO_MANY_HOOKS)?;
            hook = Some(h);
            Release::Custom(h)
        }
        _ => return Err(INJECT_BAD_OPTIONS),
    };
    let opts = RegionOptions::new()
        .release(release)
        .exclusive(o.exclusive != 0)
        .zeroed(o.zeroed != 0)
        .limit(o.limit)
        .page_size(o.page_size)
        // SAFETY: forwarded from the caller.
        .label(unsafe { label_str(o.label) });
    Ok((opts, hook))
}

/// Hands `[start, start + len)` to oxmalloc (see `oxmalloc_inject` in the
/// header). Returns 0 and stores the region's id in `*id` (when `id` is not
/// null), or an `enum oxmalloc_inject_result` code.
///
/// # Safety
/// The range is read-write memory that stays mapped for the rest of the
/// process and that nothing else uses from now on; `opts` is null or valid,
/// its label null or NUL-terminated; `id` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_inject(
    start: *mut c_void,
    len: usize,
    opts: *const CRegionOptions,
    id: *mut c_uint,
) -> c_int {
    // SAFETY: null or valid (caller).
    let (opts, hook) = match unsafe { opts.as_ref() } {
        // SAFETY: the label is null or NUL-terminated (caller).
        Some(o) => match unsafe { options(o) } {
            Ok(r) => r,
            Err(code) => return code,
        },
        None => (RegionOptions::new(), None),
    };
    // SAFETY: the range is the caller's to give (caller).
    match unsafe { engine::inject(start.cast(), len, opts) } {
        Ok(r) => {
            // SAFETY: null or writable (caller).
            if let Some(out) = unsafe { id.as_mut() } {
                *out = r.index() as c_uint;
            }
            INJECT_OK
        }
        Err(e) => {
            if let Some(h) = hook {
                // SAFETY: the region was refused, so the engine kept no copy
                // of the hook, and `opts` is not used again.
                unsafe { RELEASE_HOOKS.give_back(h) };
            }
            match e {
                engine::InjectError::Null => INJECT_NULL,
                engine::InjectError::TooSmall => INJECT_TOO_SMALL,
                engine::InjectError::Overlap => INJECT_OVERLAP,
                engine::InjectError::OutOfRange => INJECT_OUT_OF_RANGE,
                engine::InjectError::TooManyRegions => INJECT_TOO_MANY_REGIONS,
                engine::InjectError::Unmapped => INJECT_UNMAPPED,
                engine::InjectError::NotWritable => INJECT_NOT_WRITABLE,
                engine::InjectError::MixedBacking => INJECT_MIXED_BACKING,
                engine::InjectError::BadPageSize => INJECT_BAD_PAGE_SIZE,
                engine::InjectError::NoMemory => INJECT_NO_MEMORY,
            }
        }
    }
}

/// A short English description of an `oxmalloc_inject` result code.
#[no_mangle]
pub extern "C" fn oxmalloc_inject_strerror(code: c_int) -> *const c_char {
    let s: &CStr = match code {
        INJECT_OK => c"success",
        INJECT_NULL => c"region start is null",
        INJECT_TOO_SMALL => c"nothing left after trimming the region to whole 8 KiB pages",
        INJECT_OVERLAP => c"region overlaps an injected region or memory oxmalloc already manages",
        INJECT_OUT_OF_RANGE => c"region reaches beyond the user address space",
        INJECT_TOO_MANY_REGIONS => c"too many regions",
        INJECT_BAD_OPTIONS => {
            c"unknown release policy, or OXMALLOC_RELEASE_CUSTOM without a function"
        }
        INJECT_TOO_MANY_HOOKS => c"too many custom release functions or system allocators",
        INJECT_UNMAPPED => c"part of the region is not mapped",
        INJECT_NOT_WRITABLE => c"part of the region is not readable and writable",
        INJECT_MIXED_BACKING => c"the region spans private and shared mappings",
        INJECT_BAD_PAGE_SIZE => c"page size is not a power of two of at least 8 KiB",
        INJECT_NO_MEMORY => c"out of metadata memory",
        _ => c"unknown oxmalloc_inject result",
    };
    s.as_ptr()
}

/// Installs a system allocator written in C: fresh memory comes from it from
/// now on. Returns 0; `OXMALLOC_INJECT_BAD_OPTIONS` when `a` is null or has
/// no `alloc` function; `OXMALLOC_INJECT_TOO_MANY_HOOKS` when
/// [`MAX_C_SYS_ALLOCATORS`] were installed already;
/// `OXMALLOC_INJECT_TOO_MANY_REGIONS` when the region table is full. On
/// failure the previous allocator stays in use.
///
/// # Safety
/// `a` is null or valid; its functions keep the contract written in the
/// header (thread-safe, never allocate through malloc).
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_set_system_allocator(a: *const CSysAllocator) -> c_int {
    // SAFETY: null or valid (caller).
    let Some(a) = (unsafe { a.as_ref() }) else {
        return INJECT_BAD_OPTIONS;
    };
    let Some(alloc) = a.alloc else {
        return INJECT_BAD_OPTIONS;
    };
    let sys = CSys {
        alloc,
        release: a.release,
        commit: a.commit,
        zeroed: a.zeroed != 0,
        shared: a.shared != 0,
        page_size: a.page_size,
        ctx: a.ctx,
    };
    let Some(s) = SYS_ALLOCATORS.claim(sys) else {
        return INJECT_TOO_MANY_HOOKS;
    };
    match engine::set_system_allocator(s) {
        Ok(_) => INJECT_OK,
        Err(_) => {
            // SAFETY: the engine refused it and kept no reference.
            unsafe { SYS_ALLOCATORS.give_back(s) };
            INJECT_TOO_MANY_REGIONS
        }
    }
}

/// The C form of a region record.
fn c_info(r: &RegionInfo) -> CRegionInfo {
    let mut label = [0 as c_char; 32];
    for (d, s) in label.iter_mut().zip(r.label().bytes().take(31)) {
        *d = s as c_char;
    }
    CRegionInfo {
        id: r.id.index() as c_uint,
        kind: match r.kind {
            RegionKind::System => 0,
            RegionKind::Injected => 1,
        },
        start: r.start as *mut c_void,
        len: r.len,
        release: match r.release {
            Release::Auto => RELEASE_AUTO,
            Release::DontNeed => RELEASE_DONTNEED,
            Release::Never => RELEASE_NEVER,
            Release::Free => RELEASE_FREE,
            Release::Remove => RELEASE_REMOVE,
            Release::Custom(_) => RELEASE_CUSTOM,
        },
        exclusive: r.exclusive as c_int,
        backing: match r.backing {
            Backing::PrivateAnonymous => 0,
            Backing::PrivateFile => 1,
            Backing::Shared => 2,
            Backing::Unknown => 3,
        },
        page_size: r.page_size,
        limit: r.limit,
        carved_bytes: r.carved_bytes,
        in_use_bytes: r.in_use_bytes,
        free_bytes: r.free_bytes,
        released_bytes: r.released_bytes,
        label,
    }
}

/// Fills `*out` with region `id`'s record. Returns 0, or -1 when there is no
/// such region.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_get_region_info(id: c_uint, out: *mut CRegionInfo) -> c_int {
    let found = engine::RegionId::from_index(id as usize)
        .and_then(engine::region_info)
        .map(|r| c_info(&r));
    match (found, out.is_null()) {
        (Some(info), false) => {
            // SAFETY: writable (caller).
            unsafe { out.write(info) };
            0
        }
        _ => -1,
    }
}

/// Stores the id of the region `p` lies in. Returns 0, or -1 when oxmalloc
/// does not manage `p`.
///
/// # Safety
/// `id` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_region_of(p: *const c_void, id: *mut c_uint) -> c_int {
    match engine::region_of(p.cast()) {
        Some(r) => {
            // SAFETY: null or writable (caller).
            if let Some(out) = unsafe { id.as_mut() } {
                *out = r.index() as c_uint;
            }
            0
        }
        None => -1,
    }
}

/// `oxmalloc_region_fn`: called once per region.
pub type RegionFn = unsafe extern "C" fn(info: *const CRegionInfo, ctx: *mut c_void);

/// Calls `f(info, ctx)` for every region. `f` must not allocate.
///
/// # Safety
/// `f` is a valid function (or null: nothing is called).
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_for_each_region(f: Option<RegionFn>, ctx: *mut c_void) {
    let Some(f) = f else { return };
    engine::for_each_region(|r| {
        let info = c_info(r);
        // SAFETY: C's function with a record valid for the call.
        unsafe { f(&info, ctx) };
    });
}
