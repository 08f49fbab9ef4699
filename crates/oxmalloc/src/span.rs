//! Span records: a run of pages, in use (one large object, or carved into
//! small objects of one class) or free in a page heap.
//!
//! Records live in the metadata arena, never inside the pages they describe,
//! so a span of an injected region never puts allocator data into it.

use crate::meta::Pool;
use crate::size_class::{PAGE_SHIFT, PAGE_SIZE};
use core::ptr::{self, NonNull};

/// Where a span is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SpanState {
    /// Handed out: a large object, or a small-object span of a central list.
    InUse,
    /// In a page heap's free lists, backed by physical memory.
    Free,
    /// In a page heap's free lists, physical memory given back to the OS.
    Released,
}

/// A free small object, linked through its first word (encoded in the
/// hardened build: use [`FreeObject::next`] and [`FreeObject::link`]).
#[repr(C)]
pub struct FreeObject {
    next: *mut FreeObject,
}

impl FreeObject {
    /// The object after free object `o` (of class `c`) in its list.
    ///
    /// # Safety
    /// `o` is a free object whose link was set with [`FreeObject::link`].
    #[inline(always)]
    pub unsafe fn next(o: *mut FreeObject, c: usize) -> *mut FreeObject {
        // SAFETY: forwarded from the caller.
        crate::hardened::decode(o, unsafe { (*o).next }, c)
    }

    /// [`FreeObject::next`] of an object already checked to be a free
    /// object of its list (`hardened::handed_out`): the link is decoded, not
    /// checked again.
    ///
    /// # Safety
    /// As for [`FreeObject::next`].
    #[inline(always)]
    pub unsafe fn next_checked_before(o: *mut FreeObject) -> *mut FreeObject {
        // SAFETY: forwarded from the caller.
        crate::hardened::unmask(o, unsafe { (*o).next })
    }

    /// Links free object `o` to `next` (or null).
    ///
    /// # Safety
    /// `o` is a free object, at least a word long, ours to write.
    #[inline(always)]
    pub unsafe fn link(o: *mut FreeObject, next: *mut FreeObject) {
        // SAFETY: forwarded from the caller.
        unsafe { (*o).next = crate::hardened::encode(o, next) };
    }
}

/// A run of pages.
#[repr(C)]
pub struct Span {
    /// First page number (address >> PAGE_SHIFT).
    pub start: usize,
    /// Length in pages (≥ 1).
    pub npages: usize,
    /// Doubly linked list membership (page heap free lists, central lists).
    pub next: *mut Span,
    /// See `next`.
    pub prev: *mut Span,
    /// Small-object spans: free objects handed back, linked.
    pub objects: *mut FreeObject,
    /// Small-object spans: next never-used object address (lazy carving).
    pub carve: usize,
    /// Small-object spans: objects handed out and not returned.
    pub allocated: u32,
    /// Size class (0 for a large object or a free span).
    pub class: u8,
    /// In use, free or released.
    pub state: SpanState,
    /// The region the pages belong to; coalescing never crosses regions.
    pub region: u16,
    /// The pages are known to read as zero (fresh, or released by a policy
    /// that zeroes). Cleared once handed out and written.
    pub zeroed: bool,
    /// Free spans: the memory is never offered for release (the region's
    /// policy keeps it, or a release did nothing).
    pub pinned: bool,
    /// Free spans: the page heap's release epoch when the newest of its pages
    /// was freed (for time-based release).
    pub freed_epoch: u32,
    /// Hardened build, small-object spans: a bit per object, set while it is
    /// handed out.
    #[cfg(feature = "hardened")]
    pub marks: [core::sync::atomic::AtomicU64; MAX_OBJECTS / 64],
}

/// The most objects a small-object span holds (8-byte objects in one page).
#[cfg(feature = "hardened")]
pub const MAX_OBJECTS: usize = PAGE_SIZE / 8;

impl Span {
    /// First byte.
    #[inline]
    pub fn addr(&self) -> usize {
        self.start << PAGE_SHIFT
    }
    /// Length in bytes.
    #[inline]
    pub fn bytes(&self) -> usize {
        self.npages << PAGE_SHIFT
    }
    /// One past the last page.
    #[inline]
    pub fn end_page(&self) -> usize {
        self.start + self.npages
    }
    /// One past the last byte.
    #[inline]
    pub fn end_addr(&self) -> usize {
        self.end_page() * PAGE_SIZE
    }
}

/// Span records are recycled through this pool.
pub static SPANS: Pool<Span> = Pool::new();

/// A new span record, or `None` if metadata memory ran out.
pub fn new_span(start: usize, npages: usize, region: u16, state: SpanState) -> Option<*mut Span> {
    let p = SPANS.take()?.as_ptr();
    // SAFETY: `p` is a record-sized, aligned, unused slot of the pool.
    unsafe {
        p.write(Span {
            start,
            npages,
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
            objects: ptr::null_mut(),
            carve: 0,
            allocated: 0,
            class: 0,
            state,
            region,
            zeroed: false,
            pinned: false,
            freed_epoch: 0,
            #[cfg(feature = "hardened")]
            marks: [const { core::sync::atomic::AtomicU64::new(0) }; MAX_OBJECTS / 64],
        })
    };
    Some(p)
}

/// Returns a span record to the pool.
///
/// # Safety
/// `s` came from [`new_span`], is on no list and is referenced by no pagemap
/// entry that anyone will follow.
pub unsafe fn delete_span(s: *mut Span) {
    // SAFETY: forwarded from the caller.
    unsafe { SPANS.give(NonNull::new_unchecked(s)) };
}

/// An intrusive doubly linked list of spans with a count.
pub struct SpanList {
    /// First span, or null.
    pub head: *mut Span,
    /// Number of spans on the list.
    pub len: usize,
}

// SAFETY: lists are only used under the lock of the structure that owns them.
unsafe impl Send for SpanList {}

impl SpanList {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            len: 0,
        }
    }

    /// Pushes at the front.
    ///
    /// # Safety
    /// `s` is a valid span on no list.
    pub unsafe fn push(&mut self, s: *mut Span) {
        // SAFETY: `s` valid and unlinked; head (if any) is a valid member.
        unsafe {
            (*s).prev = ptr::null_mut();
            (*s).next = self.head;
            if !self.head.is_null() {
                (*self.head).prev = s;
            }
        }
        self.head = s;
        self.len += 1;
    }

    /// Unlinks `s`.
    ///
    /// # Safety
    /// `s` is a member of this list.
    pub unsafe fn remove(&mut self, s: *mut Span) {
        // SAFETY: `s` and its neighbours are valid members of this list.
        unsafe {
            if (*s).prev.is_null() {
                self.head = (*s).next;
            } else {
                (*(*s).prev).next = (*s).next;
            }
            if !(*s).next.is_null() {
                (*(*s).next).prev = (*s).prev;
            }
            (*s).next = ptr::null_mut();
            (*s).prev = ptr::null_mut();
        }
        self.len -= 1;
    }

    /// Iterates the members (the list must not change meanwhile).
    pub fn iter(&self) -> SpanIter {
        SpanIter { cur: self.head }
    }
}

impl Default for SpanList {
    fn default() -> Self {
        Self::new()
    }
}

/// Iterator over a [`SpanList`].
pub struct SpanIter {
    cur: *mut Span,
}

impl Iterator for SpanIter {
    type Item = *mut Span;
    fn next(&mut self) -> Option<*mut Span> {
        if self.cur.is_null() {
            return None;
        }
        let s = self.cur;
        // SAFETY: members of a list are valid while the list is locked.
        self.cur = unsafe { (*s).next };
        Some(s)
    }
}
