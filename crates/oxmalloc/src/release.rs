//! Giving the physical backing of free pages back: the policies of injected
//! regions, hooks written by programs, and what a release achieved.
//!
//! A release has one of three outcomes ([`ReleaseOutcome`]): nothing was
//! released; the memory was released and its contents are now undefined; or
//! it was released and reads back as zero. Only the last lets `calloc` and
//! `alloc_zeroed` skip clearing, and it is claimed only where the backing
//! guarantees it: `MADV_DONTNEED` on private anonymous memory, `MADV_REMOVE`
//! (a punched hole) on shared memory and files, or a hook or system
//! allocator that says so.

use crate::backing::Backing;
use crate::os;
use core::fmt;
use core::ptr::NonNull;

/// What releasing a range achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// Nothing was released: the pages keep their memory and contents.
    Kept,
    /// The physical memory went back; the contents are now undefined.
    Released,
    /// The physical memory went back, and the range reads as zero.
    Zeroed,
}

impl ReleaseOutcome {
    /// True unless nothing was released.
    pub fn released(self) -> bool {
        self != ReleaseOutcome::Kept
    }
}

/// A program's way to release (and recommit) ranges of an injected region
/// ([`Release::Custom`]).
///
/// Both methods are called with oxmalloc's internal locks held, from any
/// thread: they must not allocate through oxmalloc (a hook that does is
/// stopped with a message rather than left to deadlock).
///
/// Any `Fn(NonNull<u8>, usize) -> bool` is a hook whose `true` means
/// [`ReleaseOutcome::Released`] and which needs no commit.
pub trait ReleaseHook: Send + Sync {
    /// Releases `[ptr, ptr + len)`, whose contents are no longer needed.
    fn release(&self, ptr: NonNull<u8>, len: usize) -> ReleaseOutcome;

    /// Makes a released range usable again, before oxmalloc hands any of it
    /// out (e.g. `mprotect` back to read-write after a decommit). False when
    /// it cannot: the allocation that needed it then fails. Default: nothing
    /// to do.
    fn commit(&self, ptr: NonNull<u8>, len: usize) -> bool {
        let _ = (ptr, len);
        true
    }
}

impl<F: Fn(NonNull<u8>, usize) -> bool + Send + Sync> ReleaseHook for F {
    fn release(&self, ptr: NonNull<u8>, len: usize) -> ReleaseOutcome {
        if self(ptr, len) {
            ReleaseOutcome::Released
        } else {
            ReleaseOutcome::Kept
        }
    }
}

/// How the physical backing of free pages of a region is given back.
#[derive(Clone, Copy)]
pub enum Release {
    /// Chosen from the memory behind the region (the default): `DontNeed`
    /// for private memory, `Remove` for shared memory and files.
    Auto,
    /// Never: pinned, registered or device memory. Contents and residency stay.
    Never,
    /// `madvise(MADV_DONTNEED)`: private memory (private anonymous memory
    /// then reads back as zero). On shared memory it frees nothing, so
    /// nothing is done.
    DontNeed,
    /// `madvise(MADV_FREE)`: lazily reclaimed private anonymous memory
    /// (contents undefined afterwards). Nothing is done on other memory.
    Free,
    /// `madvise(MADV_REMOVE)`: shared, tmpfs, memfd and hugetlbfs mappings;
    /// the file's pages really go back (a hole is punched, which reads back
    /// as zero). On private memory it acts as `DontNeed`.
    Remove,
    /// A program's hook.
    Custom(&'static dyn ReleaseHook),
}

impl Release {
    /// A short name, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Release::Auto => "auto",
            Release::Never => "never",
            Release::DontNeed => "dontneed",
            Release::Free => "free",
            Release::Remove => "remove",
            Release::Custom(_) => "custom",
        }
    }

    /// True when this policy never releases anything on `backing`, so free
    /// spans need not be offered for release at all.
    pub(crate) fn never_releases(&self, backing: Backing) -> bool {
        match self {
            Release::Never => true,
            Release::DontNeed => backing == Backing::Shared,
            Release::Free => backing != Backing::PrivateAnonymous,
            _ => false,
        }
    }

    /// Releases `[addr, addr + len)`, memory of kind `backing`, by this
    /// policy.
    ///
    /// # Safety
    /// The range is mapped memory whose contents nobody needs any more.
    pub(crate) unsafe fn apply(&self, backing: Backing, addr: usize, len: usize) -> ReleaseOutcome {
        let p = addr as *mut u8;
        // Zeroed when the advice succeeds on memory where it zero-fills.
        let advise = |advice: i32, zero: bool| {
            // SAFETY: forwarded from the caller.
            match unsafe { os::advise(p, len, advice) } {
                false => ReleaseOutcome::Kept,
                true if zero => ReleaseOutcome::Zeroed,
                true => ReleaseOutcome::Released,
            }
        };
        let private = backing == Backing::PrivateAnonymous;
        match (self, backing) {
            (Release::Never, _) => ReleaseOutcome::Kept,
            (Release::Custom(h), _) => match NonNull::new(p) {
                Some(nn) => h.release(nn, len),
                None => ReleaseOutcome::Kept,
            },
            (Release::Auto | Release::Remove, Backing::Shared) => advise(libc::MADV_REMOVE, true),
            (Release::DontNeed, Backing::Shared) => ReleaseOutcome::Kept,
            (Release::Remove, Backing::Unknown) => match advise(libc::MADV_REMOVE, true) {
                ReleaseOutcome::Kept => advise(libc::MADV_DONTNEED, false),
                done => done,
            },
            (Release::Auto | Release::DontNeed | Release::Remove, _) => {
                advise(libc::MADV_DONTNEED, private)
            }
            (Release::Free, Backing::PrivateAnonymous) => advise(libc::MADV_FREE, false),
            (Release::Free, _) => ReleaseOutcome::Kept,
        }
    }

    /// Makes a released range of this policy usable again.
    pub(crate) fn commit(&self, addr: usize, len: usize) -> bool {
        match (self, NonNull::new(addr as *mut u8)) {
            (Release::Custom(h), Some(p)) => h.commit(p, len),
            _ => true,
        }
    }
}

impl fmt::Debug for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
