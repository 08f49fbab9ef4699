//! System allocators: where fresh memory comes from when no region has room.
//!
//! The default is [`MmapSysAllocator`] (private anonymous `mmap`); a program
//! installs its own with [`crate::set_system_allocator`]. Each installed
//! allocator (and each allocator's fallback) is a region of its own, so
//! chunks of different kinds of memory never share a span.

use crate::os;
use crate::release::{Release, ReleaseOutcome};
use crate::size_class::PAGE_SIZE;
use core::ptr::NonNull;

/// Where fresh memory comes from.
///
/// # Contract
/// - Methods are called with oxmalloc's internal locks held: they must not
///   allocate through oxmalloc (no `Box`, `Vec`, `String`, `format!`, no libc
///   `malloc` when oxmalloc is the C allocator). One that does is stopped
///   with a message.
/// - Memory returned by [`SysAllocator::alloc`] belongs to oxmalloc from then
///   on and is never unmapped by it; only its physical backing is released,
///   through [`SysAllocator::release`].
/// - A chunk must not overlap memory oxmalloc already manages (an injected
///   region, or a chunk given before): oxmalloc checks, and stops the program
///   with a message naming the address.
///
/// # Safety
/// `alloc` must return memory that is readable, writable, at least `size`
/// bytes long, aligned to `align`, and used by nobody else; the other methods
/// must describe that memory truthfully (a release that claims
/// [`ReleaseOutcome::Zeroed`] must leave zeros).
///
/// # Example
/// A system allocator that counts its calls and forwards to the previous one,
/// as gperftools programs do:
/// ```
/// use core::ptr::NonNull;
/// use core::sync::atomic::{AtomicUsize, Ordering};
/// use oxmalloc::{SysAllocator, MmapSysAllocator, ReleaseOutcome};
///
/// struct Counting(AtomicUsize, &'static dyn SysAllocator);
/// // SAFETY: forwards to an allocator that keeps the contract.
/// unsafe impl SysAllocator for Counting {
///     fn alloc(&self, size: usize, align: usize) -> Option<NonNull<[u8]>> {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         self.1.alloc(size, align)
///     }
///     unsafe fn release(&self, ptr: NonNull<u8>, len: usize) -> ReleaseOutcome {
///         // SAFETY: forwarded.
///         unsafe { self.1.release(ptr, len) }
///     }
///     fn zeroed(&self) -> bool {
///         self.1.zeroed()
///     }
/// }
/// static COUNTING: Counting = Counting(AtomicUsize::new(0), &MmapSysAllocator);
/// oxmalloc::set_system_allocator(&COUNTING).unwrap();
/// ```
pub unsafe trait SysAllocator: Send + Sync {
    /// At least `size` bytes aligned to `align` (a power of two, at least
    /// 8 KiB), or `None`. The slice's length says how much was really given.
    /// oxmalloc asks for a preferred (larger) size first, then for exactly
    /// what the request needs.
    fn alloc(&self, size: usize, align: usize) -> Option<NonNull<[u8]>>;

    /// The physical backing of `[ptr, ptr + len)` (a multiple of
    /// [`SysAllocator::page_size`], aligned to it) is no longer needed; says
    /// what the release achieved. Default: `madvise(MADV_DONTNEED)`, which
    /// zero-fills private anonymous memory: the outcome is
    /// [`ReleaseOutcome::Zeroed`] when [`SysAllocator::zeroed`] says fresh
    /// memory is zero, else [`ReleaseOutcome::Released`]. An allocator of
    /// shared or file memory must override it.
    ///
    /// # Safety
    /// The range lies in memory this allocator returned, and nothing in it is
    /// live.
    unsafe fn release(&self, ptr: NonNull<u8>, len: usize) -> ReleaseOutcome {
        // SAFETY: forwarded from the caller: the range is unused.
        if !unsafe { os::advise(ptr.as_ptr(), len, libc::MADV_DONTNEED) } {
            ReleaseOutcome::Kept
        } else if self.zeroed() {
            ReleaseOutcome::Zeroed
        } else {
            ReleaseOutcome::Released
        }
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

    /// True when memory fresh from [`SysAllocator::alloc`] is zero-filled.
    /// Lets `alloc_zeroed` skip clearing. Default: false.
    fn zeroed(&self) -> bool {
        false
    }

    /// True when chunks are shared mappings (a file, `MAP_SHARED`): after
    /// `fork()` the child gets private copies of them, and they are never
    /// merged with other memory. Default: false.
    fn shared(&self) -> bool {
        false
    }

    /// The granularity at which ranges can be released (the huge page size
    /// on hugetlbfs). Default: 8 KiB, oxmalloc's page.
    fn page_size(&self) -> usize {
        PAGE_SIZE
    }

    /// Where oxmalloc goes when this allocator has nothing left: another
    /// allocator, which gets a region of its own (so its memory never merges
    /// with this one's). Default: none (allocation fails).
    fn fallback(&self) -> Option<&'static dyn SysAllocator> {
        None
    }

    /// The policy [`SysAllocator::release`] follows, for reports. Default:
    /// [`Release::DontNeed`].
    fn release_policy(&self) -> Release {
        Release::DontNeed
    }

    /// True when oxmalloc may move pages of this allocator's chunks with
    /// `mremap` (`MREMAP_DONTUNMAP`: the old range stays mapped, empty), as
    /// glibc does for its own mappings: a large `realloc` then moves page
    /// tables, not bytes. Only for plain private anonymous memory with
    /// nothing attached to the mapping (no `mlock`, no hugepage advice).
    /// Default: false.
    fn movable(&self) -> bool {
        false
    }

    /// Called in the child of a `fork()`, with the child's only thread and
    /// oxmalloc's locks held, after oxmalloc replaced the shared chunks this
    /// allocator gave by private copies: an allocator of shared memory stops
    /// sharing here (for example by opening a new file). Default: nothing.
    fn after_fork_in_child(&self) {}
}

/// The default system allocator: private anonymous `mmap`, released with
/// `madvise(MADV_DONTNEED)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MmapSysAllocator;

// SAFETY: fresh anonymous mappings are private, aligned by `map_aligned`, and
// read as zero, also after MADV_DONTNEED.
unsafe impl SysAllocator for MmapSysAllocator {
    fn alloc(&self, size: usize, align: usize) -> Option<NonNull<[u8]>> {
        let p = os::map_aligned(size, align)?;
        Some(NonNull::slice_from_raw_parts(p, size))
    }
    fn zeroed(&self) -> bool {
        true
    }
    fn movable(&self) -> bool {
        true
    }
}
