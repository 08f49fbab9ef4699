//! The pagemap: a two-level radix tree from page number to span record (and
//! size class), covering the whole 48-bit user address space.
//!
//! With 8 KiB pages a 48-bit address has a 35-bit page number: a 17-bit root
//! index (a static array, 1 MiB of address space in `.bss`, touched only
//! where used) and an 18-bit leaf index. A leaf covers 2 GiB of address space
//! and is created lazily from the metadata arena the first time a span there
//! is registered. Reads are lock-free (acquire loads); writes happen under the
//! owning page heap's lock, leaf creation under the pagemap's own lock.
//!
//! A leaf is sparse metadata: 3 MiB of address space of which only the pages
//! holding entries of pages in use are ever written. Each leaf keeps a bitmap
//! of its OS pages written so far and reports each newly written page to the
//! arena ([`meta::note_touched`]), so the metadata figures count what the
//! leaves cost, not what they reserve. Clearing skips entries that are
//! already clear, so it never writes a page for nothing.

use crate::meta;
use crate::os;
use crate::publish::Published;
use crate::size_class::PAGE_SHIFT;
use crate::span::Span;
use crate::sync::{Mutex, RawLock};
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// Bits of virtual address the pagemap covers.
pub const ADDRESS_BITS: usize = 48;
const PAGE_BITS: usize = ADDRESS_BITS - PAGE_SHIFT;
const LEAF_BITS: usize = 18;
const ROOT_BITS: usize = PAGE_BITS - LEAF_BITS;
const LEAF_LEN: usize = 1 << LEAF_BITS;
const ROOT_LEN: usize = 1 << ROOT_BITS;

/// One past the highest page number the pagemap can hold.
pub const MAX_PAGE: usize = 1 << PAGE_BITS;

/// Words of a leaf's bitmap of written OS pages: one bit per 4 KiB (the
/// smallest OS page) of its entries, plus one for the bitmap's own page.
const TOUCHED_WORDS: usize = (LEAF_LEN * 12 / 4096 + 1).div_ceil(64);

#[repr(C)]
struct Leaf {
    /// Page → span record, or null. Set for every page of an in-use span of
    /// small objects, and for the first and last page of every other span.
    spans: [AtomicPtr<Span>; LEAF_LEN],
    /// Page → [`ObjectPage`] of the global heap's small-object span covering
    /// it, else 0 (objects of other heaps are found through their span).
    objects: [AtomicU32; LEAF_LEN],
    /// Bit `i` set iff OS page `i` of the leaf (counted from its start) was
    /// written and reported to the arena.
    touched: [AtomicU64; TOUCHED_WORDS],
}

const _: () = assert!(core::mem::size_of::<Leaf>() <= TOUCHED_WORDS * 64 * 4096);

impl Leaf {
    /// Records that the OS page holding `addr` (inside this leaf) is
    /// written; the first time, counts it as touched metadata.
    #[inline(always)]
    fn touch<T>(&self, addr: *const T) {
        let page_size = os::page_size();
        let page = (addr as usize - self as *const Leaf as usize) >> page_size.trailing_zeros();
        if let Some(w) = self.touched.get(page / 64) {
            let bit = 1u64 << (page % 64);
            if w.load(Ordering::Relaxed) & bit == 0 && w.fetch_or(bit, Ordering::Relaxed) & bit == 0
            {
                meta::note_touched(page_size);
            }
        }
    }
}

/// What the free fast paths need of a page of a small-object span, in one
/// word:
///
/// - bits 0-6: the class, for a page of the global heap (0: not one);
/// - bits 7-12: the slot of the bound heap that owns the page (1 to
///   [`MAX_TAGGED_HEAP`]; 0 for the global heap and for heaps in later slots,
///   whose frees find their heap through the span);
/// - bits 13-24: the page's index in its span, so that a pointer's offset in
///   the span is `(entry & 0x01ff_e000) | (ptr & 0x1fff)`;
/// - bits 25-31: the class, for a page of a bound heap.
///
/// The global heap's fast path reads bits 0-6 alone, so a bound heap's page
/// never passes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectPage(pub u32);

/// The highest heap slot an [`ObjectPage`] can name.
pub const MAX_TAGGED_HEAP: usize = 63;

const SLOT_SHIFT: u32 = 7;
const BOUND_CLASS_SHIFT: u32 = 25;
const INDEX_MASK: u32 = 0x01ff_e000;

// Every small-object span's pages fit the index bits.
const _: () = {
    let mut c = 1;
    while c < crate::size_class::NUM_CLASSES {
        assert!(crate::size_class::CLASSES[c].pages <= (INDEX_MASK >> PAGE_SHIFT) as usize + 1);
        c += 1;
    }
};

impl ObjectPage {
    /// Page `index` of a span of class `class` (`0 < class < 128`) of the
    /// global heap.
    pub const fn new(class: usize, index: usize) -> Self {
        Self(((index << PAGE_SHIFT) | class) as u32)
    }

    /// Page `index` of a span of class `class` of the heap in `slot`: the
    /// global heap's entry for slot 0, a bound heap's for slots up to
    /// [`MAX_TAGGED_HEAP`], no entry (0) beyond.
    pub const fn for_heap(slot: usize, class: usize, index: usize) -> Self {
        match slot {
            0 => Self::new(class, index),
            1..=MAX_TAGGED_HEAP => Self(
                ((class as u32) << BOUND_CLASS_SHIFT)
                    | ((index << PAGE_SHIFT) as u32)
                    | ((slot as u32) << SLOT_SHIFT),
            ),
            _ => Self(0),
        }
    }

    /// The class (0: not a page of a global small-object span).
    #[inline(always)]
    pub const fn class(self) -> usize {
        (self.0 & 0x7f) as usize
    }

    /// The slot and class of the bound heap whose small-object span covers
    /// this page, if the entry names one.
    #[inline(always)]
    pub const fn bound(self) -> Option<(usize, usize)> {
        match (self.0 >> SLOT_SHIFT) & 0x3f {
            0 => None,
            slot => Some((slot as usize, (self.0 >> BOUND_CLASS_SHIFT) as usize)),
        }
    }

    /// The offset of `addr` (in this page) from the start of its span.
    #[inline(always)]
    pub const fn offset_of(self, addr: usize) -> usize {
        (self.0 & INDEX_MASK) as usize | (addr & ((1 << PAGE_SHIFT) - 1))
    }
}

/// The process-wide pagemap.
pub struct PageMap {
    root: [Published<Leaf>; ROOT_LEN],
    grow: Mutex<()>,
}

/// The one pagemap of the process.
pub static PAGEMAP: PageMap = PageMap::new();

impl PageMap {
    const fn new() -> Self {
        Self {
            root: [const { Published::new() }; ROOT_LEN],
            grow: Mutex::new(()),
        }
    }

    #[inline(always)]
    fn leaf(&self, page: usize) -> Option<&Leaf> {
        if page >= MAX_PAGE {
            return None;
        }
        self.root[page >> LEAF_BITS].get()
    }

    /// The span record registered for `page`, or null.
    #[inline(always)]
    pub fn get(&self, page: usize) -> *mut Span {
        match self.leaf(page) {
            Some(l) => l.spans[page & (LEAF_LEN - 1)].load(Ordering::Acquire),
            None => ptr::null_mut(),
        }
    }

    /// The [`ObjectPage`] registered for `page` (class 0 for none).
    #[inline(always)]
    pub fn object_page(&self, page: usize) -> ObjectPage {
        match self.leaf(page) {
            Some(l) => ObjectPage(l.objects[page & (LEAF_LEN - 1)].load(Ordering::Relaxed)),
            None => ObjectPage(0),
        }
    }

    /// The size class registered for `page` (0 for none or a large span).
    #[inline(always)]
    pub fn class(&self, page: usize) -> usize {
        self.object_page(page).class()
    }

    /// Makes sure leaves exist for pages `[start, start + n)`. False when the
    /// range is out of reach or metadata memory ran out.
    pub fn ensure(&self, start: usize, n: usize) -> bool {
        if n == 0 || start >= MAX_PAGE || n > MAX_PAGE - start {
            return n == 0;
        }
        let first = start >> LEAF_BITS;
        let last = (start + n - 1) >> LEAF_BITS;
        let make = || {
            let leaf = meta::alloc_sparse(core::mem::size_of::<Leaf>())?.cast::<Leaf>();
            // Fresh arena memory is zero: null pointers, class 0, nothing
            // touched but the bitmap.
            // SAFETY: a fresh, zeroed leaf, ours until published.
            unsafe { leaf.as_ref().touch(leaf.as_ref().touched.as_ptr()) };
            Some(leaf)
        };
        // SAFETY: arena memory is never freed, and a new leaf is used by
        // nothing else; `grow` is the one lock of leaf creation.
        (first..=last).all(|i| unsafe { self.root[i].get_or_make(&self.grow, make) }.is_some())
    }

    /// Registers `span` for `page`. The leaf must exist ([`PageMap::ensure`]).
    #[inline]
    pub fn set(&self, page: usize, span: *mut Span) {
        if let Some(l) = self.leaf(page) {
            let e = &l.spans[page & (LEAF_LEN - 1)];
            l.touch(e);
            e.store(span, Ordering::Release);
        }
    }

    /// Records what the free fast path needs of `page` (`ObjectPage(0)`:
    /// nothing). The leaf must exist.
    #[inline]
    pub fn set_object_page(&self, page: usize, e: ObjectPage) {
        if let Some(l) = self.leaf(page) {
            let o = &l.objects[page & (LEAF_LEN - 1)];
            l.touch(o);
            o.store(e.0, Ordering::Relaxed);
        }
    }

    /// Forgets pages `[start, end)`: no span, no class (leaves that do not
    /// exist are skipped, and so are entries already clear: their page may
    /// never have been written).
    pub fn clear(&self, start: usize, end: usize) {
        let mut p = start;
        while p < end {
            let stop = (((p >> LEAF_BITS) + 1) << LEAF_BITS).min(end);
            if let Some(l) = self.leaf(p) {
                let lo = p & (LEAF_LEN - 1);
                let hi = lo + (stop - p);
                for e in &l.spans[lo..hi] {
                    if !e.load(Ordering::Relaxed).is_null() {
                        e.store(ptr::null_mut(), Ordering::Release);
                    }
                }
                for e in &l.objects[lo..hi] {
                    if e.load(Ordering::Relaxed) != 0 {
                        e.store(0, Ordering::Relaxed);
                    }
                }
            }
            p = stop;
        }
    }

    /// Calls `f(page, span)` for registered pages in increasing order; `f`
    /// returns how many pages to skip (at least 1 is skipped). Only leaves
    /// that exist are visited.
    pub fn for_each_registered(&self, mut f: impl FnMut(usize, &Span) -> usize) {
        let mut page = 0;
        while page < MAX_PAGE {
            let Some(l) = self.leaf(page) else {
                page = ((page >> LEAF_BITS) + 1) << LEAF_BITS;
                continue;
            };
            let s = l.spans[page & (LEAF_LEN - 1)].load(Ordering::Acquire);
            // SAFETY: span records are never unmapped.
            let skip = match unsafe { s.as_ref() } {
                Some(span) => f(page, span),
                None => 1,
            };
            page = page.saturating_add(skip.max(1));
        }
    }

    /// Number of leaves created (each 3 MiB of address space for metadata,
    /// written only where spans are).
    pub fn leaves(&self) -> usize {
        self.root.iter().filter(|l| l.is_published()).count()
    }

    /// The lock of leaf creation (for fork).
    pub(crate) fn lock(&self) -> &dyn RawLock {
        &self.grow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_get_far_apart() {
        let m = &PAGEMAP;
        let fake = 0x1000 as *mut Span;
        for page in [MAX_PAGE - 1, MAX_PAGE / 3, 12345] {
            assert!(m.ensure(page, 1));
            m.set(page, fake);
            m.set_object_page(page, ObjectPage::new(7, 3));
            assert_eq!(m.get(page), fake);
            assert_eq!(m.class(page), 7);
            assert_eq!(
                m.object_page(page).offset_of(0x1234 << 13 | 0x40),
                3 << 13 | 0x40
            );
            m.set(page, ptr::null_mut());
            m.set_object_page(page, ObjectPage(0));
        }
        assert!(m.get(MAX_PAGE).is_null());
        assert!(!m.ensure(MAX_PAGE, 1));
        assert!(!m.ensure(MAX_PAGE - 1, 2));
    }

    /// Pages of the leaf written so far, by its bitmap.
    fn written(m: &PageMap, page: usize) -> u32 {
        let l = m.leaf(page).unwrap();
        l.touched
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones())
            .sum()
    }

    #[test]
    fn a_leaf_counts_the_pages_it_writes() {
        let m = &PAGEMAP;
        // A leaf of its own: 10 GiB up, where no mapping of the tests is.
        let base = 5 * LEAF_LEN;
        assert!(m.ensure(base, 3 * LEAF_LEN / 4));
        assert_eq!(written(m, base), 1, "the bitmap's page");
        let fake = 0x1000 as *mut Span;
        // 512 span entries (8 bytes) and 1024 object entries (4 bytes) make
        // one 4 KiB page.
        for p in base + 1024..base + 1024 + 512 {
            m.set(p, fake);
        }
        assert_eq!(written(m, base), 2, "one page of spans");
        m.set(base + LEAF_LEN / 2, fake);
        m.set_object_page(base + LEAF_LEN / 2, ObjectPage::new(3, 0));
        assert_eq!(written(m, base), 4, "one page each");
        // Clearing writes no page that was not written: the range covers
        // half the leaf's entries.
        m.clear(base, base + 3 * LEAF_LEN / 4);
        assert_eq!(written(m, base), 4);
        assert!(m.get(base + LEAF_LEN / 2).is_null());
        assert_eq!(m.class(base + LEAF_LEN / 2), 0);
    }
}
