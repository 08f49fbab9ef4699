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
    /// The heap slot the source's object pages are recorded under in the
    /// pagemap, for the free fast paths (0: the global heap), or `None`.
    fn page_tag(&self) -> Option<usize>;
}

/// The central free list of one class.
pub struct CentralFreeList {
    inner: Mutex<Inner>,
}

/// Objects of one span gathered from a list given back, linked, before the
/// lock is taken.
#[derive(Clone, Copy)]
struct Group {
    span: *mut Span,
    head: *mut FreeObject,
    tail: *mut FreeObject,
    count: usize,
}

/// Spans one pass of [`CentralFreeList::insert_range`] gathers for at most.
const GROUPS: usize = 8;

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

    /// Takes up to `out.len()` objects of class `c` into `out`, making a new
    /// span from `source` when none has any left; returns how many. Fewer
    /// (possibly none) only when memory ran out.
    pub(crate) fn remove_range(
        &self,
        c: usize,
        out: &mut [*mut FreeObject],
        source: &dyn SpanSource,
    ) -> usize {
        let info = CLASSES[c];
        let mut g = self.inner.lock();
        let mut n = 0;
        while n < out.len() {
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
                while n < out.len() {
                    let Some(obj) = take_object(&mut *s, c, &info) else {
                        break;
                    };
                    out[n] = obj;
                    n += 1;
                    g.free_objects -= 1;
                }
                if !has_object(&*s, &info) {
                    g.nonempty.remove(s);
                }
            }
        }
        n
    }

    /// Gives back `objs`, free objects of class `c`. Spans whose objects
    /// have all come back return to `source`. Each object is checked and
    /// linked to the others of its span before the lock is taken, so that
    /// the lock is held for a few spans, not for each object.
    ///
    /// # Safety
    /// The objects are free objects of class `c` of this heap, each given
    /// once.
    pub(crate) unsafe fn insert_range(
        &self,
        c: usize,
        objs: &[*mut FreeObject],
        source: &dyn SpanSource,
    ) {
        let mut groups = [Group {
            span: ptr::null_mut(),
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            count: 0,
        }; GROUPS];
        let mut n = 0;
        for &obj in objs {
            // The object is checked against the pagemap before it is
            // written: a pointer that is not an object of this class stops
            // here with a message instead of corrupting a span.
            let s = object_span(obj, c);
            // SAFETY: `obj` is a free object of ours (checked above), at
            // least a word long.
            unsafe {
                if let Some(g) = groups[..n].iter_mut().find(|g| g.span == s) {
                    FreeObject::link(obj, g.head);
                    g.head = obj;
                    g.count += 1;
                    continue;
                }
                if n == GROUPS {
                    self.splice(c, &groups, source);
                    n = 0;
                }
                FreeObject::link(obj, ptr::null_mut());
            }
            groups[n] = Group {
                span: s,
                head: obj,
                tail: obj,
                count: 1,
            };
            n += 1;
        }
        // SAFETY: the groups hold the remaining objects.
        unsafe { self.splice(c, &groups[..n], source) };
    }

    /// Puts each group's objects back on its span, under the lock.
    ///
    /// # Safety
    /// Each group is `count` free objects of span `span` (of class `c` of
    /// this heap), linked from `head` to `tail`.
    unsafe fn splice(&self, c: usize, groups: &[Group], source: &dyn SpanSource) {
        let info = CLASSES[c];
        let mut g = self.inner.lock();
        for grp in groups {
            let s = grp.span;
            // SAFETY: `s` is an in-use span of class `c` holding the group's
            // objects (caller); spans are only changed under this lock.
            unsafe {
                if (*s).allocated < grp.count as u32 {
                    crate::os::fatal(format_args!(
                        "free of an object freed twice (address {:#x})",
                        grp.head as usize
                    ));
                }
                if !has_object(&*s, &info) {
                    g.nonempty.push(s);
                }
                FreeObject::link(grp.tail, (*s).objects);
                (*s).objects = grp.head;
                (*s).allocated -= grp.count as u32;
                g.free_objects += grp.count;
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

/// A new span of class `c` (every page of a span in use maps to it), with
/// its class and heap recorded in the pagemap, where `free` finds them.
fn populate(c: usize, info: &ClassInfo, source: &dyn SpanSource) -> *mut Span {
    let tag = source.page_tag();
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
        if let Some(slot) = tag {
            for p in (*s).start..(*s).end_page() {
                PAGEMAP.set_object_page(p, ObjectPage::for_heap(slot, c, p - (*s).start));
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
    // unmapped; `c` is a class (below NUM_CLASSES).
    let ok = !s.is_null()
        && unsafe {
            let sp = &*s;
            sp.class as usize == c
                && sp.state == crate::span::SpanState::InUse
                && sp.start <= page
                && page < sp.end_page()
                && crate::size_class::is_object_offset(c, addr - sp.addr())
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

/// One object out of span `s` of class `c`: a returned one, else the next
/// uncarved one.
///
/// # Safety
/// `s` is a span of class `c` (which `info` describes), under the central
/// lock.
#[inline]
unsafe fn take_object(s: &mut Span, c: usize, info: &ClassInfo) -> Option<*mut FreeObject> {
    let obj = if !s.objects.is_null() {
        let o = s.objects;
        // SAFETY: a returned object holds the link to the next one.
        s.objects = unsafe { FreeObject::next(o, c) };
        o
    } else if s.carve + info.size <= s.end_addr() {
        let o = s.carve as *mut FreeObject;
        s.carve += info.size;
        crate::hardened::carved(o, c);
        o
    } else {
        return None;
    };
    s.allocated += 1;
    Some(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page_heap::tests::{heap, SET};
    use crate::page_heap::PageHeap;
    use crate::size_class::{class_for, MAX_BATCH};
    use crate::sync::Mutex;

    struct Pages(Mutex<PageHeap>);

    impl SpanSource for Pages {
        fn alloc_span(&self, n: usize) -> *mut Span {
            self.0.lock().alloc(n, &SET)
        }
        unsafe fn free_span(&self, s: *mut Span) {
            // SAFETY: forwarded.
            unsafe { self.0.lock().free(s, &SET) };
        }
        fn page_tag(&self) -> Option<usize> {
            None
        }
    }

    #[test]
    fn objects_of_many_spans_go_home_and_empty_spans_leave() {
        let pages = Pages(Mutex::new(heap()));
        let list = CentralFreeList::new();
        let c = class_for(20 << 10, 1);
        let per_span = CLASSES[c].objects_per_span();
        let spans = 3 * GROUPS;
        let mut objs = [ptr::null_mut(); 256];
        let total = spans * per_span;
        assert!(total <= objs.len());
        let mut n = 0;
        while n < total {
            let k = list.remove_range(c, &mut objs[n..(n + MAX_BATCH).min(total)], &pages);
            assert!(k > 0);
            n += k;
        }
        assert_eq!(list.counts(), (0, spans), "every object handed out");
        // Back in an order that interleaves every span, so that one pass
        // gathers more spans than it has groups for.
        let mut back = [ptr::null_mut(); 256];
        let mut m = 0;
        for i in 0..per_span {
            for s in 0..spans {
                back[m] = objs[s * per_span + i];
                m += 1;
            }
        }
        let half = total / 2;
        // SAFETY: objects of class `c` handed out above, each given once.
        unsafe { list.insert_range(c, &back[..half], &pages) };
        let (free, held) = list.counts();
        assert_eq!(free, half);
        assert!(held <= spans);
        // SAFETY: as above, the rest.
        unsafe { list.insert_range(c, &back[half..total], &pages) };
        assert_eq!(list.counts(), (0, 0), "every span went back");
        assert_eq!(pages.0.lock().stats().in_use_bytes, 0);
    }
}
