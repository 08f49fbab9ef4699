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
use engine::{RegionInfo, RegionKind, RegionOptions, Release, ReleaseHook, SysAllocator};

/// How many system allocators C code may install over the process's life.
pub const MAX_C_SYS_ALLOCATORS: usize = 16;
/// How many injected regions may have a C release function at once.
pub const MAX_C_RELEASE_HOOKS: usize = 64;

/// `enum oxmalloc_release`: release policies (0, the default, is DONTNEED).
const RELEASE_DONTNEED: c_int = 0;
const RELEASE_NEVER: c_int = 1;
const RELEASE_FREE: c_int = 2;
const RELEASE_REMOVE: c_int = 3;
const RELEASE_CUSTOM: c_int = 4;

/// `enum oxmalloc_inject_result`: what [`oxmalloc_inject`] returns.
const INJECT_OK: c_int = 0;
const INJECT_NULL: c_int = 1;
const INJECT_TOO_SMALL: c_int = 2;
const INJECT_OVERLAP: c_int = 3;
const INJECT_OUT_OF_RANGE: c_int = 4;
const INJECT_TOO_MANY_REGIONS: c_int = 5;
const INJECT_BAD_OPTIONS: c_int = 6;
const INJECT_TOO_MANY_HOOKS: c_int = 7;

/// `oxmalloc_release_fn`: releases `[ptr, ptr + len)`; non-zero when it did.
pub type ReleaseFn = unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void, len: usize) -> c_int;
/// `oxmalloc_sys_alloc_fn`: at least `size` bytes aligned to `align`, or
/// null; may raise `*actual` to say how much it really gave.
pub type SysAllocFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    size: usize,
    align: usize,
    actual: *mut usize,
) -> *mut c_void;

/// `struct oxmalloc_region_options`. All zero (or a null pointer) means the
/// defaults: release with `MADV_DONTNEED`, not exclusive, not known to be
/// zero, no label.
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
    pub commit: Option<ReleaseFn>,
    /// Non-zero when fresh and released memory reads as zero.
    pub zeroed: c_int,
    /// Passed to every function.
    pub ctx: *mut c_void,
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

/// A C release function with its context.
#[derive(Clone, Copy)]
struct CReleaseHook {
    f: ReleaseFn,
    ctx: *mut c_void,
}

// SAFETY: the header requires release functions to be callable from any
// thread with their context.
unsafe impl Send for CReleaseHook {}
// SAFETY: as above.
unsafe impl Sync for CReleaseHook {}

impl ReleaseHook for CReleaseHook {
    fn release(&self, ptr: NonNull<u8>, len: usize) -> bool {
        // SAFETY: the function and context C gave for this region; the
        // engine passes a free range of it.
        unsafe { (self.f)(self.ctx, ptr.as_ptr().cast(), len) != 0 }
    }
}

/// A C system allocator (with a non-null `alloc`).
#[derive(Clone, Copy)]
struct CSys {
    alloc: SysAllocFn,
    release: Option<ReleaseFn>,
    commit: Option<ReleaseFn>,
    zeroed: bool,
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

    unsafe fn release(&self, ptr: NonNull<u8>, len: usize) -> bool {
        match self.release {
            // SAFETY: C's function, on a free range of its memory (caller).
            Some(f) => unsafe { f(self.ctx, ptr.as_ptr().cast(), len) != 0 },
            // SAFETY: the range is unused (caller).
            None => unsafe { engine::os::advise(ptr.as_ptr(), len, libc::MADV_DONTNEED) },
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
}

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
        RELEASE_DONTNEED => Release::DontNeed,
        RELEASE_NEVER => Release::Never,
        RELEASE_FREE => Release::Free,
        RELEASE_REMOVE => Release::Remove,
        RELEASE_CUSTOM => {
            let f = o.release_fn.ok_or(INJECT_BAD_OPTIONS)?;
            let h = RELEASE_HOOKS
                .claim(CReleaseHook {
                    f,
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
        INJECT_OUT_OF_RANGE => c"region reaches beyond the address space oxmalloc covers",
        INJECT_TOO_MANY_REGIONS => c"too many regions",
        INJECT_BAD_OPTIONS => {
            c"unknown release policy, or OXMALLOC_RELEASE_CUSTOM without a function"
        }
        INJECT_TOO_MANY_HOOKS => c"too many regions with a custom release function",
        _ => c"unknown oxmalloc_inject result",
    };
    s.as_ptr()
}

/// Installs a system allocator written in C: fresh memory comes from it from
/// now on. Returns 0, or -1 when `a` is null, has no `alloc` function, or
/// the table of C system allocators is full.
///
/// # Safety
/// `a` is null or valid; its functions keep the contract written in the
/// header (thread-safe, never allocate through malloc).
#[no_mangle]
pub unsafe extern "C" fn oxmalloc_set_system_allocator(a: *const CSysAllocator) -> c_int {
    // SAFETY: null or valid (caller).
    let Some(a) = (unsafe { a.as_ref() }) else {
        return -1;
    };
    let Some(alloc) = a.alloc else {
        return -1;
    };
    let sys = CSys {
        alloc,
        release: a.release,
        commit: a.commit,
        zeroed: a.zeroed != 0,
        ctx: a.ctx,
    };
    match SYS_ALLOCATORS.claim(sys) {
        Some(s) => {
            engine::set_system_allocator(s);
            0
        }
        None => -1,
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
            Release::DontNeed => RELEASE_DONTNEED,
            Release::Never => RELEASE_NEVER,
            Release::Free => RELEASE_FREE,
            Release::Remove => RELEASE_REMOVE,
            Release::Custom(_) => RELEASE_CUSTOM,
        },
        exclusive: r.exclusive as c_int,
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
