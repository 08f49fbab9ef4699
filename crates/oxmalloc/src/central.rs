//! Central free lists: per class, the spans that still have objects to give.
//!
//! A span of a class is carved lazily: objects come first from the span's own
//! list of returned objects, then from a bump cursor over never-used memory,
//! so a fresh span is not touched until its objects are handed out. When every
//! object of a span has come back, the span goes back to the page heap.
//! Lock order: a central list's lock, then the page-heap lock.

use crate::pagemap::{ObjectPage, PAGEMAP};
use crate::size_class::{ClassInfo, CLASSES, PAGE_SHIFT};
use crate::span::{FreeObject, Span, SpanList};
use crate::sync::{Mutex, RawLock};
use core::ptr;

struct Inner {
    /// Spans of this class with at least one object available (returned or
    /// not yet carved). Spans with none are on no list.
    nonempty: SpanList,
    /// Objects available in the spans of `nonempty`.
    free_objects: usize,
    /// Spans of this class currently held (full ones included).
    spans: usize,
}

/// Where a central list gets its spans and gives them back: its heap.
pub(crate) trait SpanSource {
    /// A span of `n` pages in use, or null when memory ran out. Called with
    /// the list's lock held.
    fn alloc_span(&self, n: usize) -> *mut Span;
    /// Takes back in-use span `s`, whose objects all came back.
    ///
    /// # Safety
    /// `s` is an in-use span of the source that nothing references any more.
    unsafe fn free_span(&self, s: *mut Span);
    /// True when the source's object pages are recorded in the pagemap for
    /// the free fast path (the global heap).
    fn tags_pages(&self) -> bool;
}

/// The central free list of one class.
pub struct CentralFreeList {
    inner: Mutex<Inner>,
}

/// A linked batch of objects handed out by [`CentralFreeList::remove_range`].
pub struct Range {
    /// First object (null when `count == 0`).
    pub head: *mut FreeObject,
    /// Last object.
    pub tail: *mut FreeObject,
    /// Number of objects.
    pub count: usize,
}

impl CentralFreeList {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                nonempty: SpanList::new(),
                free_objects: 0,
                spans: 0,
            }),
        }
    }

    /// Takes up to `n` objects of class `c`, making a new span from `source`
    /// when none has any left. Fewer than `n` (possibly none) only when memory
    /// ran out.
    pub(crate) fn remove_range(&self, c: usize, n: usize, source: &dyn SpanSource) -> Range {
        let info = CLASSES[c];
        let mut g = self.inner.lock();
        let mut r = Range {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            count: 0,
        };
        while r.count < n {
            let mut s = g.nonempty.head;
            if s.is_null() {
                s = populate(c, &info, source);
                if s.is_null() {
                    break;
                }
                // SAFETY: `s` is a fresh span on no list.
                unsafe { g.nonempty.push(s) };
                g.spans += 1;
                g.free_objects += info.objects_per_span();
            }
            // SAFETY: spans on `nonempty` are valid spans of this class with
            // at least one available object.
            unsafe {
                while r.count < n {
                    let Some(obj) = take_object(&mut *s, &info) else {
                        break;
                    };
                    (*obj).next = r.head;
                    if r.head.is_null() {
                        r.tail = obj;
                    }
                    r.head = obj;
                    r.count += 1;
                    g.free_objects -= 1;
                }
                if !has_object(&*s, &info) {
                    g.nonempty.remove(s);
                }
            }
        }
        r
    }

    /// Gives back `count` objects of class `c` linked from `head`. Spans whose
    /// objects have all come back return to `source`.
    ///
    /// # Safety
    /// The objects are free objects of class `c` of this heap, linked through
    /// their first word, `count` of them.
    pub(crate) unsafe fn insert_range(
        &self,
        c: usize,
        mut head: *mut FreeObject,
        count: usize,
        source: &dyn SpanSource,
    ) {
        let info = CLASSES[c];
        let mut g = self.inner.lock();
        for _ in 0..count {
            let obj = head;
            // The object is checked against the pagemap before it is read:
            // a corrupted list (a double free, a write after free) stops
            // here with a message instead of a fault inside the allocator.
            let s = object_span(obj, c);
            // SAFETY: `obj` is the start of an object of class `c` of span
            // `s` (checked above): a free object whose first word links on;
            // every page of a small-object span maps to that span.
            unsafe {
                head = (*obj).next;
                if !has_object(&*s, &info) {
                    g.nonempty.push(s);
                }
                if (*s).allocated == 0 {
                    crate::os::fatal(format_args!(
                        "free of an object freed twice (address {:#x})",
                        obj as usize
                    ));
                }
                (*obj).next = (*s).objects;
                (*s).objects = obj;
                (*s).allocated -= 1;
                g.free_objects += 1;
                if (*s).allocated == 0 {
                    g.nonempty.remove(s);
                    g.spans -= 1;
                    g.free_objects -= info.objects_per_span();
                    for p in (*s).start..(*s).end_page() {
                        PAGEMAP.set_object_page(p, ObjectPage(0));
                    }
                    source.free_span(s);
                }
            }
        }
    }

    /// Forgets every span (they are reclaimed by the page heap).
    pub fn clear(&self) {
        let mut g = self.inner.lock();
        g.nonempty = SpanList::new();
        g.free_objects = 0;
        g.spans = 0;
    }

    /// Objects available in this class's spans, and the spans held.
    pub fn counts(&self) -> (usize, usize) {
        let g = self.inner.lock();
        (g.free_objects, g.spans)
    }

    /// [`CentralFreeList::counts`] for a caller holding the lock.
    ///
    /// # Safety
    /// The caller holds the lock through [`Self::lock`].
    pub(crate) unsafe fn counts_held(&self) -> (usize, usize) {
        // SAFETY: forwarded.
        let g = unsafe { self.inner.held() };
        (g.free_objects, g.spans)
    }

    /// The list's lock, for taking every lock of a heap at once.
    pub(crate) fn lock(&self) -> &dyn RawLock {
        &self.inner
    }
}

impl Default for CentralFreeList {
    fn default() -> Self {
        Self::new()
    }
}

/// A new span of class `c`, with every page registered in the pagemap (and
/// its class recorded there for the global heap, whose frees find the class
/// that way).
fn populate(c: usize, info: &ClassInfo, source: &dyn SpanSource) -> *mut Span {
    let tag_pages = source.tags_pages();
    let s = source.alloc_span(info.pages);
    if s.is_null() {
        return s;
    }
    // SAFETY: `s` is a fresh in-use span handed to us alone.
    unsafe {
        (*s).class = c as u8;
        (*s).objects = ptr::null_mut();
        (*s).carve = (*s).addr();
        (*s).allocated = 0;
        for p in (*s).start..(*s).end_page() {
            PAGEMAP.set(p, s);
            if tag_pages {
                PAGEMAP.set_object_page(p, ObjectPage::new(c, p - (*s).start));
            }
        }
    }
    s
}

/// The span of free object `obj` of class `c`: stops the program when `obj`
/// is not the start of an object of class `c` in a span in use.
fn object_span(obj: *mut FreeObject, c: usize) -> *mut Span {
    let addr = obj as usize;
    let page = addr >> PAGE_SHIFT;
    let s = PAGEMAP.get(page);
    // SAFETY: pagemap entries point at span records, which are never
    // unmapped.
    let ok = !s.is_null()
        && unsafe {
            let sp = &*s;
            sp.class as usize == c
                && sp.state == crate::span::SpanState::InUse
                && sp.start <= page
                && page < sp.end_page()
                && (addr - sp.addr()).is_multiple_of(CLASSES[c].size)
        };
    if !ok {
        crate::os::fatal(format_args!(
            "free of a pointer oxmalloc does not own, or of an object freed twice (address {addr:#x})"
        ));
    }
    s
}

#[inline]
fn has_object(s: &Span, info: &ClassInfo) -> bool {
    !s.objects.is_null() || s.carve + info.size <= s.end_addr()
}

/// One object out of span `s`: a returned one, else the next uncarved one.
///
/// # Safety
/// `s` is a span of the class `info` describes, under the central lock.
#[inline]
unsafe fn take_object(s: &mut Span, info: &ClassInfo) -> Option<*mut FreeObject> {
    let obj = if !s.objects.is_null() {
        let o = s.objects;
        // SAFETY: a returned object holds the link to the next one.
        s.objects = unsafe { (*o).next };
        o
    } else if s.carve + info.size <= s.end_addr() {
        let o = s.carve as *mut FreeObject;
        s.carve += info.size;
        o
    } else {
        return None;
    };
    s.allocated += 1;
    Some(obj)
}
