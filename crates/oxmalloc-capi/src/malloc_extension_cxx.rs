//! gperftools' C++ interface, `MallocExtension::instance()`, built without a
//! C++ compiler: the object, its virtual table and type information laid out
//! by the Itanium C++ ABI for gperftools 2.10's `class MallocExtension`
//! (`<gperftools/malloc_extension.h>`), and every member function by its
//! mangled name, so that a gperftools program relinks against `-loxmalloc`
//! unchanged, including one that derives from `MallocExtension` or
//! `SysAllocator`.
//!
//! - `MallocExtension::instance()` returns a static object whose virtual
//!   functions are oxmalloc's; `MallocExtension::Register(p)` makes it return
//!   `p` instead (the C functions `MallocExtension_*` keep answering for
//!   oxmalloc). In gperftools, tcmalloc's implementation is a subclass of a
//!   class of do-nothing defaults; here the base class is the implementation,
//!   so a subclass inherits oxmalloc's behaviour.
//! - `Ranges` reports every span (gperftools' `base::MallocRange`: address,
//!   length, `INUSE`/`FREE`/`UNMAPPED`, the fraction of a small-object span
//!   carved out), in batches copied out under the lock: the callback runs with
//!   no lock held and may allocate.
//! - `GetFreeListSizes` fills the `std::vector` (libstdc++'s and libc++'s
//!   layout: begin, end, end of storage), reusing its storage when it is
//!   large enough, else taking a new one from oxmalloc (which is also where
//!   `operator new` takes it).
//! - `SetSystemAllocator(a)` installs `a` as oxmalloc's system allocator
//!   (through `oxmalloc_set_system_allocator`: at most 16 over the process's
//!   life); `GetSystemAllocator()` returns the last one installed so, else an
//!   object allocating with `mmap` (oxmalloc's default).
//! - Not supported, as gperftools answers when it has no sampling:
//!   `GetHeapSample` and `GetHeapGrowthStacks` append a line saying so,
//!   `ReadStackTraces` and `ReadHeapGrowthStackTraces` return null.
//!   `Initialize` has nothing to do. `VerifyAllMemory` returns true.
//!
//! The type information objects need the virtual table of libstdc++'s
//! `__cxxabiv1::__class_type_info`, which a C program does not load: it is
//! referenced weakly and written into them when the library is loaded
//! ([`bind_type_info`]). Only `dynamic_cast` and `typeid` read it.

use crate::extension::{self as c, FreeListInfo, FREE_LISTS, HISTOGRAM_SIZE};
use crate::malloc::{alloc, release};
use crate::regions::{oxmalloc_set_system_allocator, CSysAllocator};
use core::ffi::{c_char, c_int, c_void};
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use engine::RangeState;

/// An object of a polymorphic C++ class: its first word points at the
/// virtual functions of its class's virtual table.
#[repr(C)]
pub struct Object {
    vptr: *const c_void,
}

// SAFETY: the objects defined here are immutable.
unsafe impl Sync for Object {}

/// `this`, unused: every method answers for oxmalloc.
type This = *mut Object;

/// An Itanium type information object of a class without bases
/// (`__cxxabiv1::__class_type_info`).
#[repr(C)]
pub struct TypeInfo {
    /// `__class_type_info`'s virtual functions, once [`bind_type_info`] ran.
    vptr: AtomicPtr<c_void>,
    /// The mangled class name, NUL-terminated.
    name: *const c_char,
}

// SAFETY: `name` points at an immutable static; `vptr` is atomic.
unsafe impl Sync for TypeInfo {}

/// `typeinfo name for MallocExtension`.
#[no_mangle]
pub static _ZTS15MallocExtension: [u8; 18] = *b"15MallocExtension\0";

/// `typeinfo name for SysAllocator`.
#[no_mangle]
pub static _ZTS12SysAllocator: [u8; 15] = *b"12SysAllocator\0";

/// `typeinfo for MallocExtension`.
#[no_mangle]
pub static _ZTI15MallocExtension: TypeInfo = TypeInfo {
    vptr: AtomicPtr::new(ptr::null_mut()),
    name: _ZTS15MallocExtension.as_ptr().cast(),
};

/// `typeinfo for SysAllocator`.
#[no_mangle]
pub static _ZTI12SysAllocator: TypeInfo = TypeInfo {
    vptr: AtomicPtr::new(ptr::null_mut()),
    name: _ZTS12SysAllocator.as_ptr().cast(),
};

// A data word holding the address of libstdc++'s `vtable for
// __cxxabiv1::__class_type_info`, or 0 when no loaded object defines it
// (weak, as `std::get_new_handler` in `cxx`).
core::arch::global_asm!(
    ".pushsection .data.rel.ro,\"aw\"",
    ".balign 8",
    ".globl oxmalloc_capi_class_type_info_vtable",
    ".hidden oxmalloc_capi_class_type_info_vtable",
    "oxmalloc_capi_class_type_info_vtable:",
    ".8byte _ZTVN10__cxxabiv117__class_type_infoE",
    ".weak _ZTVN10__cxxabiv117__class_type_infoE",
    ".popsection",
);

extern "C" {
    /// The word defined above.
    static oxmalloc_capi_class_type_info_vtable: usize;
}

/// Points the type information objects at `__class_type_info`'s virtual
/// functions (its virtual table's third word), when libstdc++ is loaded.
/// Called when the library is loaded.
pub(crate) fn bind_type_info() {
    // SAFETY: written by the loader before any code runs, never changed.
    let vtable = unsafe { oxmalloc_capi_class_type_info_vtable };
    if vtable != 0 {
        let functions = (vtable + 2 * core::mem::size_of::<usize>()) as *mut c_void;
        for ti in [&_ZTI15MallocExtension, &_ZTI12SysAllocator] {
            ti.vptr.store(functions, Ordering::Relaxed);
        }
    }
}

/// gperftools' `base::MallocRange`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MallocRange {
    /// First byte.
    pub address: usize,
    /// Length in bytes.
    pub length: usize,
    /// `INUSE` (0), `FREE` (1), `UNMAPPED` (2) or `UNKNOWN` (3).
    pub kind: c_int,
    /// Small-object spans: the fraction carved out and not returned; 1 for
    /// a large allocation; 0 when free.
    pub fraction: f64,
}

/// `MallocExtension::RangeFunction*`.
type RangeFunction = unsafe extern "C-unwind" fn(arg: *mut c_void, range: *const MallocRange);

/// libstdc++'s `std::vector<T>`: three pointers.
#[repr(C)]
pub struct Vector<T> {
    begin: *mut T,
    end: *mut T,
    end_of_storage: *mut T,
}

/// `SysAllocator::Alloc(size, actual_size, alignment)`, the third entry of
/// a `SysAllocator`'s virtual functions.
type SysAllocFn = unsafe extern "C" fn(
    this: *mut Object,
    size: usize,
    actual: *mut usize,
    align: usize,
) -> *mut c_void;

/// The virtual functions of `class MallocExtension`, in declaration order
/// (the destructor's complete and deleting forms first).
#[repr(C)]
pub struct MallocExtensionFunctions {
    complete_dtor: unsafe extern "C" fn(This),
    deleting_dtor: unsafe extern "C" fn(This),
    verify_all_memory: unsafe extern "C" fn(This) -> bool,
    verify_new_memory: unsafe extern "C" fn(This, *const c_void) -> bool,
    verify_array_new_memory: unsafe extern "C" fn(This, *const c_void) -> bool,
    verify_malloc_memory: unsafe extern "C" fn(This, *const c_void) -> bool,
    malloc_memory_stats: unsafe extern "C" fn(This, *mut c_int, *mut usize, *mut c_int) -> bool,
    get_stats: unsafe extern "C" fn(This, *mut c_char, c_int),
    get_heap_sample: unsafe extern "C-unwind" fn(This, *mut c_void),
    get_heap_growth_stacks: unsafe extern "C-unwind" fn(This, *mut c_void),
    ranges: unsafe extern "C-unwind" fn(This, *mut c_void, Option<RangeFunction>),
    get_numeric_property: unsafe extern "C" fn(This, *const c_char, *mut usize) -> bool,
    set_numeric_property: unsafe extern "C" fn(This, *const c_char, usize) -> bool,
    mark_thread_idle: unsafe extern "C" fn(This),
    mark_thread_busy: unsafe extern "C" fn(This),
    get_system_allocator: unsafe extern "C" fn(This) -> *mut Object,
    set_system_allocator: unsafe extern "C" fn(This, *mut Object),
    release_to_system: unsafe extern "C" fn(This, usize),
    release_free_memory: unsafe extern "C" fn(This),
    set_memory_release_rate: unsafe extern "C" fn(This, f64),
    get_memory_release_rate: unsafe extern "C" fn(This) -> f64,
    get_estimated_allocated_size: unsafe extern "C" fn(This, usize) -> usize,
    get_allocated_size: unsafe extern "C" fn(This, *const c_void) -> usize,
    get_ownership: unsafe extern "C" fn(This, *const c_void) -> c_int,
    get_free_list_sizes: unsafe extern "C" fn(This, *mut Vector<FreeListInfo>),
    read_stack_traces: unsafe extern "C" fn(This, *mut c_int) -> *mut *mut c_void,
    read_heap_growth_stack_traces: unsafe extern "C" fn(This) -> *mut *mut c_void,
    get_thread_cache_size: unsafe extern "C" fn(This) -> usize,
    mark_thread_temporarily_idle: unsafe extern "C" fn(This),
}

/// The virtual functions of `class SysAllocator`.
#[repr(C)]
pub struct SysAllocatorFunctions {
    complete_dtor: unsafe extern "C" fn(This),
    deleting_dtor: unsafe extern "C" fn(This),
    alloc: SysAllocFn,
}

/// An Itanium virtual table: offset to top, type information, functions.
#[repr(C)]
pub struct VTable<F> {
    offset_to_top: isize,
    type_info: &'static TypeInfo,
    functions: F,
}

/// `vtable for MallocExtension`.
#[no_mangle]
pub static _ZTV15MallocExtension: VTable<MallocExtensionFunctions> = VTable {
    offset_to_top: 0,
    type_info: &_ZTI15MallocExtension,
    functions: MallocExtensionFunctions {
        complete_dtor: _ZN15MallocExtensionD1Ev,
        deleting_dtor: _ZN15MallocExtensionD0Ev,
        verify_all_memory: _ZN15MallocExtension15VerifyAllMemoryEv,
        verify_new_memory: _ZN15MallocExtension15VerifyNewMemoryEPKv,
        verify_array_new_memory: _ZN15MallocExtension20VerifyArrayNewMemoryEPKv,
        verify_malloc_memory: _ZN15MallocExtension18VerifyMallocMemoryEPKv,
        malloc_memory_stats: _ZN15MallocExtension17MallocMemoryStatsEPiPmS0_,
        get_stats: _ZN15MallocExtension8GetStatsEPci,
        get_heap_sample:
            _ZN15MallocExtension13GetHeapSampleEPNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE,
        get_heap_growth_stacks:
            _ZN15MallocExtension19GetHeapGrowthStacksEPNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE,
        ranges: _ZN15MallocExtension6RangesEPvPFvS0_PKN4base11MallocRangeEE,
        get_numeric_property: _ZN15MallocExtension18GetNumericPropertyEPKcPm,
        set_numeric_property: _ZN15MallocExtension18SetNumericPropertyEPKcm,
        mark_thread_idle: _ZN15MallocExtension14MarkThreadIdleEv,
        mark_thread_busy: _ZN15MallocExtension14MarkThreadBusyEv,
        get_system_allocator: _ZN15MallocExtension18GetSystemAllocatorEv,
        set_system_allocator: _ZN15MallocExtension18SetSystemAllocatorEP12SysAllocator,
        release_to_system: _ZN15MallocExtension15ReleaseToSystemEm,
        release_free_memory: _ZN15MallocExtension17ReleaseFreeMemoryEv,
        set_memory_release_rate: _ZN15MallocExtension20SetMemoryReleaseRateEd,
        get_memory_release_rate: _ZN15MallocExtension20GetMemoryReleaseRateEv,
        get_estimated_allocated_size: _ZN15MallocExtension25GetEstimatedAllocatedSizeEm,
        get_allocated_size: _ZN15MallocExtension16GetAllocatedSizeEPKv,
        get_ownership: _ZN15MallocExtension12GetOwnershipEPKv,
        get_free_list_sizes:
            _ZN15MallocExtension16GetFreeListSizesEPSt6vectorINS_12FreeListInfoESaIS1_EE,
        read_stack_traces: _ZN15MallocExtension15ReadStackTracesEPi,
        read_heap_growth_stack_traces: _ZN15MallocExtension25ReadHeapGrowthStackTracesEv,
        get_thread_cache_size: _ZN15MallocExtension18GetThreadCacheSizeEv,
        mark_thread_temporarily_idle: _ZN15MallocExtension25MarkThreadTemporarilyIdleEv,
    },
};

/// `vtable for SysAllocator` (an abstract class: `Alloc` is pure virtual).
#[no_mangle]
pub static _ZTV12SysAllocator: VTable<SysAllocatorFunctions> = VTable {
    offset_to_top: 0,
    type_info: &_ZTI12SysAllocator,
    functions: SysAllocatorFunctions {
        complete_dtor: _ZN12SysAllocatorD1Ev,
        deleting_dtor: _ZN12SysAllocatorD0Ev,
        alloc: pure_virtual_alloc,
    },
};

/// The virtual table of [`MMAP_SYS_ALLOCATOR`]: a `SysAllocator` whose
/// `Alloc` is oxmalloc's default, `mmap`.
static MMAP_SYS_ALLOCATOR_VTABLE: VTable<SysAllocatorFunctions> = VTable {
    offset_to_top: 0,
    type_info: &_ZTI12SysAllocator,
    functions: SysAllocatorFunctions {
        complete_dtor: _ZN12SysAllocatorD1Ev,
        deleting_dtor: _ZN12SysAllocatorD0Ev,
        alloc: mmap_alloc,
    },
};

/// What `MallocExtension::instance()` returns until `Register` is called.
static INSTANCE: Object = Object {
    vptr: ptr::addr_of!(_ZTV15MallocExtension.functions).cast(),
};

/// What `GetSystemAllocator` returns before a C++ allocator is installed.
static MMAP_SYS_ALLOCATOR: Object = Object {
    vptr: ptr::addr_of!(MMAP_SYS_ALLOCATOR_VTABLE.functions).cast(),
};

/// The object `Register` installed (null: [`INSTANCE`]).
static REGISTERED: AtomicPtr<Object> = AtomicPtr::new(ptr::null_mut());
/// The C++ system allocator `SetSystemAllocator` installed last, if any.
static CXX_SYS_ALLOCATOR: AtomicPtr<Object> = AtomicPtr::new(ptr::null_mut());

/// Whether `this` is one of the static objects above (never deleted).
fn is_static(this: This) -> bool {
    ptr::eq(this, &INSTANCE) || ptr::eq(this, &MMAP_SYS_ALLOCATOR)
}

/// `static MallocExtension* MallocExtension::instance()`.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension8instanceEv() -> *mut Object {
    let r = REGISTERED.load(Ordering::Acquire);
    if r.is_null() {
        ptr::addr_of!(INSTANCE).cast_mut()
    } else {
        r
    }
}

/// `static void MallocExtension::Register(MallocExtension*)`: `instance()`
/// returns `implementation` from now on (null: oxmalloc's object again).
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension8RegisterEPS_(implementation: *mut Object) {
    REGISTERED.store(implementation, Ordering::Release);
}

/// `static void MallocExtension::Initialize()`: nothing to set up.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension10InitializeEv() {}

crate::alias::exports! {
    /// `MallocExtension::~MallocExtension()` and `SysAllocator::~SysAllocator()`,
    /// complete and base-object forms: nothing to destroy.
    extern "C" [
        _ZN15MallocExtensionD1Ev,
        _ZN15MallocExtensionD2Ev,
        _ZN12SysAllocatorD1Ev,
        _ZN12SysAllocatorD2Ev,
    ] fn(_this: This) {}
}

crate::alias::exports! {
    /// The deleting destructors of both classes: frees an object made with
    /// `new` (never the static ones).
    ///
    /// # Safety
    /// `this` is one of the static objects, or came from `new` and is not
    /// used again.
    unsafe extern "C" [_ZN15MallocExtensionD0Ev, _ZN12SysAllocatorD0Ev] fn(this: This) {
        if !is_static(this) {
            // SAFETY: from `operator new`, which is oxmalloc's (caller).
            unsafe { release(this.cast()) };
        }
    }
}

/// `SysAllocator::Alloc` called on a `SysAllocator` itself.
extern "C" fn pure_virtual_alloc(_: This, _: usize, _: *mut usize, _: usize) -> *mut c_void {
    engine::os::fatal(format_args!("pure virtual SysAllocator::Alloc called"))
}

/// `Alloc` of [`MMAP_SYS_ALLOCATOR`].
///
/// # Safety
/// `actual` is null or writable.
unsafe extern "C" fn mmap_alloc(
    _: This,
    size: usize,
    actual: *mut usize,
    align: usize,
) -> *mut c_void {
    let align = align.max(engine::size_class::PAGE_SIZE).next_power_of_two();
    match engine::SysAllocator::alloc(&engine::MmapSysAllocator, size, align) {
        Some(p) => {
            // SAFETY: null or writable (caller).
            if let Some(a) = unsafe { actual.as_mut() } {
                *a = p.len();
            }
            p.cast::<c_void>().as_ptr()
        }
        None => ptr::null_mut(),
    }
}

/// `bool MallocExtension::VerifyAllMemory()`.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension15VerifyAllMemoryEv(_this: This) -> bool {
    c::MallocExtension_VerifyAllMemory() != 0
}

crate::alias::exports! {
    /// `VerifyNewMemory`, `VerifyArrayNewMemory` and `VerifyMallocMemory`:
    /// `p` is null or in a live allocation of oxmalloc's.
    extern "C" [
        _ZN15MallocExtension15VerifyNewMemoryEPKv,
        _ZN15MallocExtension20VerifyArrayNewMemoryEPKv,
        _ZN15MallocExtension18VerifyMallocMemoryEPKv,
    ] fn(_this: This, p: *const c_void) -> bool {
        c::MallocExtension_VerifyMallocMemory(p) != 0
    }
}

/// `bool MallocExtension::MallocMemoryStats(int*, size_t*, int[64])`.
///
/// # Safety
/// As `MallocExtension_MallocMemoryStats`.
#[no_mangle]
pub unsafe extern "C" fn _ZN15MallocExtension17MallocMemoryStatsEPiPmS0_(
    _this: This,
    blocks: *mut c_int,
    total: *mut usize,
    histogram: *mut c_int,
) -> bool {
    const _: () = assert!(HISTOGRAM_SIZE == 64);
    // SAFETY: forwarded from the caller.
    unsafe { c::MallocExtension_MallocMemoryStats(blocks, total, histogram) != 0 }
}

/// `void MallocExtension::GetStats(char*, int)`.
///
/// # Safety
/// As `MallocExtension_GetStats`.
#[no_mangle]
pub unsafe extern "C" fn _ZN15MallocExtension8GetStatsEPci(
    _this: This,
    buf: *mut c_char,
    len: c_int,
) {
    // SAFETY: forwarded from the caller.
    unsafe { c::MallocExtension_GetStats(buf, len) }
}

/// `std::string::append(const char*, size_t)` (the C++11 ABI's), as
/// gperftools' `MallocExtensionWriter` is used.
type AppendFn =
    unsafe extern "C-unwind" fn(s: *mut c_void, text: *const c_char, n: usize) -> *mut c_void;

// The address of libstdc++'s `std::__cxx11::string::append(const char*,
// size_t)`, weak like the type information's virtual table above.
core::arch::global_asm!(
    ".pushsection .data.rel.ro,\"aw\"",
    ".balign 8",
    ".globl oxmalloc_capi_string_append",
    ".hidden oxmalloc_capi_string_append",
    "oxmalloc_capi_string_append:",
    ".8byte _ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE6appendEPKcm",
    ".weak _ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE6appendEPKcm",
    ".popsection",
);

extern "C" {
    /// The word defined above: `None` without libstdc++.
    static oxmalloc_capi_string_append: Option<AppendFn>;
}

/// What `GetHeapSample` and `GetHeapGrowthStacks` append.
const NO_SAMPLING: &core::ffi::CStr =
    c"oxmalloc does not sample allocations: no heap profile or growth stacks\n";

crate::alias::exports! {
    /// `GetHeapSample(MallocExtensionWriter*)` and `GetHeapGrowthStacks`:
    /// oxmalloc does not sample; appends a line saying so to the string.
    ///
    /// # Safety
    /// `writer` is null or a `std::string` (C++11 ABI).
    unsafe extern "C-unwind" [
        _ZN15MallocExtension13GetHeapSampleEPNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE,
        _ZN15MallocExtension19GetHeapGrowthStacksEPNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE,
    ] fn(_this: This, writer: *mut c_void) {
        // SAFETY: written by the loader, never changed.
        let append = unsafe { oxmalloc_capi_string_append };
        if let (Some(append), false) = (append, writer.is_null()) {
            let text = NO_SAMPLING.to_bytes();
            // SAFETY: `writer` is a std::string (caller); no lock is held, so
            // the append may allocate.
            unsafe { append(writer, text.as_ptr().cast(), text.len()) };
        }
    }
}

/// Spans copied out per batch of `Ranges`.
const RANGE_BATCH: usize = 64;

/// `void MallocExtension::Ranges(void*, RangeFunction)`: calls `func(arg,
/// range)` for every span, in address order, with no lock held.
///
/// # Safety
/// `func` is null or callable with `arg`.
#[no_mangle]
pub unsafe extern "C-unwind" fn _ZN15MallocExtension6RangesEPvPFvS0_PKN4base11MallocRangeEE(
    _this: This,
    arg: *mut c_void,
    func: Option<RangeFunction>,
) {
    let Some(func) = func else { return };
    let empty = MallocRange {
        address: 0,
        length: 0,
        kind: 3,
        fraction: 0.0,
    };
    let mut from = 0;
    loop {
        let mut batch = [empty; RANGE_BATCH];
        let mut n = 0;
        engine::for_each_span(|r| {
            if r.address < from || n == RANGE_BATCH {
                return;
            }
            let class_size = engine::size_class::CLASSES
                .get(r.class)
                .map_or(0, |c| c.size);
            let (kind, fraction) = match r.state {
                RangeState::InUse if r.class != 0 => {
                    (0, (r.objects * class_size) as f64 / r.length as f64)
                }
                RangeState::InUse => (0, 1.0),
                RangeState::Free => (1, 0.0),
                RangeState::Released => (2, 0.0),
            };
            if let Some(slot) = batch.get_mut(n) {
                *slot = MallocRange {
                    address: r.address,
                    length: r.length,
                    kind,
                    fraction,
                };
                n += 1;
            }
        });
        for r in batch.iter().take(n) {
            // SAFETY: callable with `arg` (caller); no lock is held.
            unsafe { func(arg, r) };
            from = r.address + r.length;
        }
        if n < RANGE_BATCH {
            return;
        }
    }
}

/// `bool MallocExtension::GetNumericProperty(const char*, size_t*)`.
///
/// # Safety
/// As `MallocExtension_GetNumericProperty`.
#[no_mangle]
pub unsafe extern "C" fn _ZN15MallocExtension18GetNumericPropertyEPKcPm(
    _this: This,
    name: *const c_char,
    value: *mut usize,
) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { c::MallocExtension_GetNumericProperty(name, value) != 0 }
}

/// `bool MallocExtension::SetNumericProperty(const char*, size_t)`.
///
/// # Safety
/// As `MallocExtension_SetNumericProperty`.
#[no_mangle]
pub unsafe extern "C" fn _ZN15MallocExtension18SetNumericPropertyEPKcm(
    _this: This,
    name: *const c_char,
    value: usize,
) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { c::MallocExtension_SetNumericProperty(name, value) != 0 }
}

crate::alias::exports! {
    /// `MarkThreadIdle()` and `MarkThreadTemporarilyIdle()`.
    extern "C" [
        _ZN15MallocExtension14MarkThreadIdleEv,
        _ZN15MallocExtension25MarkThreadTemporarilyIdleEv,
    ] fn(_this: This) {
        c::MallocExtension_MarkThreadIdle();
    }
}

/// `void MallocExtension::MarkThreadBusy()`.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension14MarkThreadBusyEv(_this: This) {
    c::MallocExtension_MarkThreadBusy();
}

/// `SysAllocator* MallocExtension::GetSystemAllocator()`: the C++ allocator
/// installed last, else one allocating with `mmap`.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension18GetSystemAllocatorEv(_this: This) -> *mut Object {
    let a = CXX_SYS_ALLOCATOR.load(Ordering::Acquire);
    if a.is_null() {
        ptr::addr_of!(MMAP_SYS_ALLOCATOR).cast_mut()
    } else {
        a
    }
}

/// `oxmalloc_sys_alloc_fn` over a C++ `SysAllocator` (the context).
///
/// # Safety
/// `ctx` is a live `SysAllocator`; `actual` is writable.
unsafe extern "C" fn cxx_sys_alloc(
    ctx: *mut c_void,
    size: usize,
    align: usize,
    actual: *mut usize,
) -> *mut c_void {
    let this = ctx.cast::<Object>();
    // SAFETY: a SysAllocator's first word points at its virtual functions,
    // laid out as `SysAllocatorFunctions` (caller).
    unsafe {
        let functions = (*this).vptr.cast::<SysAllocatorFunctions>();
        let p = ((*functions).alloc)(this, size, actual, align);
        // "At least size": never believe less.
        *actual = (*actual).max(size);
        p
    }
}

/// `void MallocExtension::SetSystemAllocator(SysAllocator*)`: fresh memory
/// comes from `a` from now on (ignored when null or when 16 allocators were
/// installed already).
///
/// # Safety
/// `a` is null or a `SysAllocator` that lives for the rest of the process,
/// whose `Alloc` is thread-safe and never allocates through malloc.
#[no_mangle]
pub unsafe extern "C" fn _ZN15MallocExtension18SetSystemAllocatorEP12SysAllocator(
    _this: This,
    a: *mut Object,
) {
    if a.is_null() {
        return;
    }
    let sys = CSysAllocator {
        alloc: Some(cxx_sys_alloc),
        release: None,
        commit: None,
        zeroed: 0,
        ctx: a.cast(),
        shared: 0,
        page_size: 0,
    };
    // SAFETY: the allocator keeps the header's contract (caller).
    if unsafe { oxmalloc_set_system_allocator(&sys) } == 0 {
        CXX_SYS_ALLOCATOR.store(a, Ordering::Release);
    }
}

/// `void MallocExtension::ReleaseToSystem(size_t)`.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension15ReleaseToSystemEm(_this: This, bytes: usize) {
    c::MallocExtension_ReleaseToSystem(bytes);
}

/// `void MallocExtension::ReleaseFreeMemory()`.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension17ReleaseFreeMemoryEv(_this: This) {
    c::MallocExtension_ReleaseFreeMemory();
}

/// `void MallocExtension::SetMemoryReleaseRate(double)`.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension20SetMemoryReleaseRateEd(_this: This, rate: f64) {
    c::MallocExtension_SetMemoryReleaseRate(rate);
}

/// `double MallocExtension::GetMemoryReleaseRate()`.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension20GetMemoryReleaseRateEv(_this: This) -> f64 {
    c::MallocExtension_GetMemoryReleaseRate()
}

/// `size_t MallocExtension::GetEstimatedAllocatedSize(size_t)`.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension25GetEstimatedAllocatedSizeEm(
    _this: This,
    size: usize,
) -> usize {
    c::MallocExtension_GetEstimatedAllocatedSize(size)
}

/// `size_t MallocExtension::GetAllocatedSize(const void*)`.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension16GetAllocatedSizeEPKv(
    _this: This,
    p: *const c_void,
) -> usize {
    c::MallocExtension_GetAllocatedSize(p)
}

/// `Ownership MallocExtension::GetOwnership(const void*)`.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension12GetOwnershipEPKv(_this: This, p: *const c_void) -> c_int {
    c::MallocExtension_GetOwnership(p)
}

/// `void MallocExtension::GetFreeListSizes(std::vector<FreeListInfo>*)`:
/// replaces the vector's contents by the free lists (see the module docs).
///
/// # Safety
/// `v` is null or a `std::vector<MallocExtension::FreeListInfo>` whose
/// storage, if any, came from `operator new`.
#[no_mangle]
pub unsafe extern "C" fn _ZN15MallocExtension16GetFreeListSizesEPSt6vectorINS_12FreeListInfoESaIS1_EE(
    _this: This,
    v: *mut Vector<FreeListInfo>,
) {
    // SAFETY: null or a vector (caller).
    let Some(v) = (unsafe { v.as_mut() }) else {
        return;
    };
    let capacity = (v.end_of_storage as usize).wrapping_sub(v.begin as usize)
        / core::mem::size_of::<FreeListInfo>();
    if capacity < FREE_LISTS {
        let fresh = alloc(FREE_LISTS * core::mem::size_of::<FreeListInfo>()).cast::<FreeListInfo>();
        if fresh.is_null() {
            return;
        }
        // SAFETY: the old storage came from operator new (caller); the
        // elements are plain data, nothing to destroy.
        unsafe { release(v.begin.cast()) };
        v.begin = fresh;
        // SAFETY: within (one past) the fresh storage.
        v.end_of_storage = unsafe { fresh.add(FREE_LISTS) };
    }
    let mut n = 0;
    c::for_each_free_list(|r| {
        if n < FREE_LISTS {
            // SAFETY: the storage holds FREE_LISTS records.
            unsafe { v.begin.add(n).write(r) };
            n += 1;
        }
    });
    // SAFETY: within the storage.
    v.end = unsafe { v.begin.add(n) };
}

/// `void** MallocExtension::ReadStackTraces(int*)`: no sampling, null.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension15ReadStackTracesEPi(
    _this: This,
    _sample_period: *mut c_int,
) -> *mut *mut c_void {
    ptr::null_mut()
}

/// `void** MallocExtension::ReadHeapGrowthStackTraces()`: null.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension25ReadHeapGrowthStackTracesEv(
    _this: This,
) -> *mut *mut c_void {
    ptr::null_mut()
}

/// `size_t MallocExtension::GetThreadCacheSize()`.
#[no_mangle]
pub extern "C" fn _ZN15MallocExtension18GetThreadCacheSizeEv(_this: This) -> usize {
    c::MallocExtension_GetThreadCacheSize()
}
