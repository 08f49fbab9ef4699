//! The hardened build (cargo feature `hardened`; the C library built with it
//! is `liboxmalloc-hardened.so`): misuse the normal build trusts stops the
//! program with a message naming the operation and the address.
//!
//! - Free-list links inside free objects are encoded (XOR with a secret of
//!   the process and the address of the object holding the link) and
//!   checked when followed: a link overwritten after its object was freed
//!   (a use after free) is found at the next allocation of that class.
//! - Every small object has a bit in its span record, set while the object
//!   is handed out: freeing it twice (at once, much later or interleaved
//!   with other frees), or freeing an object never handed out, is found at
//!   the free.
//! - The last word of every small object is a canary (its usable size is a
//!   word shorter): a write past the end is found when the object is freed.
//! - A freed object's second word holds a mark, checked when the object is
//!   handed out again: a write into a freed object is found at its reuse.
//! - Sized frees (`free_sized`, sized `operator delete`, Rust's `dealloc`)
//!   check the size against the block.
//!
//! The normal build compiles every function here to nothing (or to the
//! plain link), so the call sites need no `cfg`.

use crate::span::FreeObject;

#[cfg(feature = "hardened")]
pub(crate) use imp::*;
#[cfg(not(feature = "hardened"))]
pub(crate) use normal::*;

/// Bytes at the end of each small object that the program may not use.
#[cfg(feature = "hardened")]
pub const CANARY: usize = 8;
/// Bytes at the end of each small object that the program may not use.
#[cfg(not(feature = "hardened"))]
pub const CANARY: usize = 0;

#[cfg(not(feature = "hardened"))]
mod normal {
    use super::FreeObject;

    /// The link stored in free object `_at` to `next`.
    #[inline(always)]
    pub(crate) fn encode(_at: *mut FreeObject, next: *mut FreeObject) -> *mut FreeObject {
        next
    }

    /// The next object of a free list, from the link stored in `_at`,
    /// unchecked.
    #[inline(always)]
    pub(crate) fn unmask(_at: *mut FreeObject, link: *mut FreeObject) -> *mut FreeObject {
        link
    }

    /// The next object of a free list of class `_c`, from the link stored in
    /// `_at` (checked to be an object of the class: the hardened build stops
    /// the program when it is not).
    #[inline(always)]
    pub(crate) fn decode(
        _at: *mut FreeObject,
        link: *mut FreeObject,
        _c: usize,
    ) -> *mut FreeObject {
        link
    }

    /// Object `_p` of class `_c` is handed to the program.
    #[inline(always)]
    pub(crate) fn handed_out(_p: *mut u8, _c: usize) {}

    /// Object `_p` of class `_c` comes back from the program.
    #[inline(always)]
    pub(crate) fn taken_back(_p: *mut u8, _c: usize) {}

    /// Object `_p` of class `_c` was carved from its span's fresh memory.
    #[inline(always)]
    pub(crate) fn carved(_p: *mut FreeObject, _c: usize) {}

    /// `_op` frees `_p` saying it is `_size` bytes aligned to `_align`
    /// (`_exact`: the block must be of that size's class, else only hold
    /// it).
    #[inline(always)]
    pub(crate) fn check_size(
        _op: &'static str,
        _p: *const u8,
        _size: usize,
        _align: usize,
        _exact: bool,
    ) {
    }
}

#[cfg(feature = "hardened")]
mod imp {
    use super::{FreeObject, CANARY};
    use crate::os;
    use crate::pagemap::PAGEMAP;
    use crate::size_class::{self, CLASSES, PAGE_SHIFT};
    use crate::span::{Span, SpanState};
    use core::sync::atomic::{AtomicUsize, Ordering};

    /// The process's secret (0 until first needed).
    static KEY: AtomicUsize = AtomicUsize::new(0);

    /// The secret: random, never zero, fixed for the life of the process
    /// (a forked child keeps it, as it keeps the lists it encodes).
    #[inline(always)]
    fn key() -> usize {
        match KEY.load(Ordering::Relaxed) {
            0 => make_key(),
            k => k,
        }
    }

    #[cold]
    #[inline(never)]
    fn make_key() -> usize {
        let mut k: usize = 0;
        // SAFETY: getrandom writes at most the 8 bytes of `k`.
        let n =
            unsafe { libc::getrandom(core::ptr::addr_of_mut!(k).cast(), 8, libc::GRND_NONBLOCK) };
        if n != 8 {
            // No entropy yet: the address of a stack variable and the time.
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: writes `ts` only.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
            k = (core::ptr::addr_of!(ts) as usize).rotate_left(32)
                ^ ts.tv_nsec as usize
                ^ (ts.tv_sec as usize) << 40;
        }
        let k = k | 1;
        match KEY.compare_exchange(0, k, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => k,
            Err(other) => other,
        }
    }

    /// The mark of free object `p`.
    fn free_mark(p: usize) -> usize {
        key().rotate_left(29) ^ p
    }

    /// The canary of object `p`.
    fn canary(p: usize) -> usize {
        key().rotate_left(13) ^ !p
    }

    pub(crate) fn encode(at: *mut FreeObject, next: *mut FreeObject) -> *mut FreeObject {
        (next as usize ^ key() ^ at as usize) as *mut FreeObject
    }

    pub(crate) fn unmask(at: *mut FreeObject, link: *mut FreeObject) -> *mut FreeObject {
        (link as usize ^ key() ^ at as usize) as *mut FreeObject
    }

    pub(crate) fn decode(at: *mut FreeObject, link: *mut FreeObject, c: usize) -> *mut FreeObject {
        let next = unmask(at, link) as usize;
        if next != 0 && object(next, c).is_none() {
            os::fatal(format_args!(
                "malloc: the free list of {}-byte objects is corrupted at address {:#x} \
                 (a write after free?)",
                CLASSES[c].size, at as usize
            ));
        }
        next as *mut FreeObject
    }

    /// The span of `p` and `p`'s index in it, when `p` is the start of an
    /// object of class `c` in a span in use.
    fn object(p: usize, c: usize) -> Option<(&'static Span, usize)> {
        let page = p >> PAGE_SHIFT;
        let s = PAGEMAP.get(page);
        if s.is_null() {
            return None;
        }
        // SAFETY: pagemap entries point at span records, never unmapped.
        let sp = unsafe { &*s };
        let inside = sp.state == SpanState::InUse
            && sp.class as usize == c
            && sp.start <= page
            && page < sp.end_page();
        let offset = p.wrapping_sub(sp.addr());
        // SAFETY: `c` is a class (below NUM_CLASSES and not 0: the span's),
        // and an offset inside the span is below 2^32.
        unsafe {
            if inside && size_class::is_object_offset(c, offset) {
                Some((sp, size_class::object_index(c, offset)))
            } else {
                None
            }
        }
    }

    /// The word `i` of object `p`.
    ///
    /// # Safety
    /// `p` is an object of at least `8 * (i + 1)` bytes.
    unsafe fn word(p: usize, i: usize) -> *mut usize {
        (p + 8 * i) as *mut usize
    }

    pub(crate) fn handed_out(p: *mut u8, c: usize) {
        let a = p as usize;
        let Some((sp, i)) = object(a, c) else {
            os::fatal(format_args!(
                "malloc: handing out {a:#x}, not an object of its list (corrupted metadata)"
            ));
        };
        let bit = 1u64 << (i % 64);
        if sp.marks[i / 64].fetch_or(bit, Ordering::Relaxed) & bit != 0 {
            os::fatal(format_args!(
                "malloc: {a:#x} is handed out twice (its free list was corrupted: a double free or a write after free)"
            ));
        }
        let size = CLASSES[c].size;
        // SAFETY: `p` is an object of `size` bytes, ours until returned.
        unsafe {
            if size >= 3 * 8 && *word(a, 1) != free_mark(a) {
                os::fatal(format_args!(
                    "malloc: the free {}-byte block at {a:#x} was written to after it was freed",
                    size - CANARY
                ));
            }
            *word(a, size / 8 - 1) = canary(a);
        }
    }

    pub(crate) fn taken_back(p: *mut u8, c: usize) {
        let a = p as usize;
        let Some((sp, i)) = object(a, c) else {
            os::fatal(format_args!(
                "free of a pointer oxmalloc does not own (address {a:#x})"
            ));
        };
        let bit = 1u64 << (i % 64);
        if sp.marks[i / 64].fetch_and(!bit, Ordering::Relaxed) & bit == 0 {
            os::fatal(format_args!(
                "free of a block that is not allocated: freed twice, or never handed out (address {a:#x})"
            ));
        }
        let size = CLASSES[c].size;
        // SAFETY: `p` is an object of `size` bytes the program gave back.
        unsafe {
            if *word(a, size / 8 - 1) != canary(a) {
                os::fatal(format_args!(
                    "free of a {}-byte block written past its end (address {a:#x})",
                    size - CANARY
                ));
            }
            if size >= 3 * 8 {
                *word(a, 1) = free_mark(a);
            }
        }
    }

    pub(crate) fn carved(p: *mut FreeObject, c: usize) {
        if CLASSES[c].size >= 3 * 8 {
            // SAFETY: a fresh object of class `c`, at least 3 words long.
            unsafe { *word(p as usize, 1) = free_mark(p as usize) };
        }
    }

    pub(crate) fn check_size(
        op: &'static str,
        p: *const u8,
        size: usize,
        align: usize,
        exact: bool,
    ) {
        let Some((pc, s)) = crate::global::lookup(p) else {
            return; // the free itself names the pointer
        };
        // SAFETY: `lookup` gives a valid span record when the class is 0.
        let (class, usable) = unsafe {
            let class = if pc != 0 { pc } else { (*s).class as usize };
            (class, crate::global::usable_of(pc, s))
        };
        // The class the request gives, or 0 for a large block of at least
        // that size (a block's class never changes while it lives). A loose
        // check asks only that the block holds the size: C's `realloc`
        // leaves room, so a C block may be of a larger class.
        let ok = match size_class::class_for(size, align.max(1)) {
            0 => class == 0 && size <= usable,
            c if exact => c == class,
            _ => size <= usable,
        };
        if !ok {
            os::fatal(format_args!(
                "{op} of a {usable}-byte block as {size} bytes (address {:#x})",
                p as usize
            ));
        }
    }
}
