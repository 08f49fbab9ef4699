//! The page heap: free runs of pages, by length.
//!
//! Exact-length lists for runs up to [`MAX_EXACT_PAGES`] (1 MiB), one list
//! searched best-fit above that; each kept twice, for runs backed by memory
//! and for runs whose backing was released. Freed spans coalesce with free
//! neighbours of the same state **and the same region** (found through the
//! pagemap). A scavenger driven by the release rate gives free runs back to
//! the OS as pages are freed, and [`PageHeap::release_at_least`] does so on
//! demand. One page heap per heap, under that heap's page-heap lock.

use crate::pagemap::PAGEMAP;
use crate::region::{self, Source};
use crate::size_class::PAGE_SHIFT;
use crate::span::{delete_span, new_span, Span, SpanList, SpanState};
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Runs up to this many pages have exact-length lists.
pub const MAX_EXACT_PAGES: usize = 128;
/// Grow by at least this many pages (1 MiB) at a time.
pub const MIN_GROW_PAGES: usize = 128;

/// The release rate in thousandths (gperftools' `TCMALLOC_RELEASE_RATE` × 1000):
/// after releasing `n` pages the scavenger waits for `n × 1000 / rate` more
/// pages to be freed before it releases again. 1000 is the default; 0 turns
/// the scavenger off.
pub static RELEASE_RATE_MILLI: AtomicUsize = AtomicUsize::new(1000);

const DEFAULT_RELEASE_DELAY: isize = 1 << 18;
const MAX_RELEASE_DELAY: isize = 1 << 20;

/// Byte counters of one page heap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageHeapStats {
    /// Bytes obtained from regions (carved) so far.
    pub system_bytes: usize,
    /// Bytes in free spans backed by memory.
    pub free_bytes: usize,
    /// Bytes in free spans whose backing was released.
    pub unmapped_bytes: usize,
    /// Bytes in spans handed out (large objects and small-object spans).
    pub in_use_bytes: usize,
    /// Spans handed out.
    pub spans_in_use: usize,
    /// Free spans (both kinds).
    pub free_spans: usize,
    /// Bytes released to the OS over the heap's lifetime.
    pub total_released_bytes: usize,
    /// Runs of the incremental scavenger (with a non-zero release rate).
    pub scavenge_count: usize,
    /// Spans whose released pages were committed again for reuse, plus
    /// growths of the heap (fresh pages count as committed).
    pub commit_count: usize,
    /// Bytes committed by those, over the heap's lifetime.
    pub total_commit_bytes: usize,
    /// Spans whose backing was released to the OS.
    pub decommit_count: usize,
    /// Growths of the heap (carvings from a region).
    pub reserve_count: usize,
}

/// A page heap.
pub struct PageHeap {
    source: Source,
    /// Index n: free spans of exactly n pages backed by memory.
    free: [SpanList; MAX_EXACT_PAGES + 1],
    /// Index n: free spans of exactly n pages, released.
    released: [SpanList; MAX_EXACT_PAGES + 1],
    /// Free spans longer than MAX_EXACT_PAGES, backed by memory.
    large_free: SpanList,
    /// Free spans longer than MAX_EXACT_PAGES, released.
    large_released: SpanList,
    stats: PageHeapStats,
    /// Pages still to be freed before the scavenger releases a span.
    scavenge_counter: isize,
    /// Bytes the heap may hold (in use + free, not released); 0 = no limit.
    pub limit: usize,
    /// Release every span as soon as it is freed (aggressive decommit).
    pub aggressive: bool,
    /// Advanced by each [`PageHeap::release_idle`] call; stamped on freed
    /// spans.
    epoch: u32,
}

impl PageHeap {
    /// An empty page heap carving from `source`.
    pub(crate) const fn new(source: Source) -> Self {
        Self {
            source,
            free: [const { SpanList::new() }; MAX_EXACT_PAGES + 1],
            released: [const { SpanList::new() }; MAX_EXACT_PAGES + 1],
            large_free: SpanList::new(),
            large_released: SpanList::new(),
            stats: PageHeapStats {
                system_bytes: 0,
                free_bytes: 0,
                unmapped_bytes: 0,
                in_use_bytes: 0,
                spans_in_use: 0,
                free_spans: 0,
                total_released_bytes: 0,
                scavenge_count: 0,
                commit_count: 0,
                total_commit_bytes: 0,
                decommit_count: 0,
                reserve_count: 0,
            },
            scavenge_counter: DEFAULT_RELEASE_DELAY,
            limit: 0,
            aggressive: false,
            epoch: 0,
        }
    }

    /// The counters.
    pub fn stats(&self) -> PageHeapStats {
        self.stats
    }

    fn list(&mut self, n: usize, state: SpanState) -> &mut SpanList {
        match (n <= MAX_EXACT_PAGES, state) {
            (true, SpanState::Released) => &mut self.released[n],
            (true, _) => &mut self.free[n],
            (false, SpanState::Released) => &mut self.large_released,
            (false, _) => &mut self.large_free,
        }
    }

    /// Moves a span's bytes between the counters of this heap and its region.
    fn account(&mut self, s: &Span, from: Option<SpanState>, to: Option<SpanState>) {
        let b = s.bytes();
        for (st, sign) in [(from, false), (to, true)] {
            let Some(st) = st else { continue };
            let (bytes, count) = match st {
                SpanState::InUse => (&mut self.stats.in_use_bytes, &mut self.stats.spans_in_use),
                SpanState::Free => (&mut self.stats.free_bytes, &mut self.stats.free_spans),
                SpanState::Released => (&mut self.stats.unmapped_bytes, &mut self.stats.free_spans),
            };
            if sign {
                *bytes += b;
                *count += 1;
            } else {
                *bytes -= b;
                *count -= 1;
            }
        }
        region::account(s.region, from, to, b);
    }

    /// Links a free span into its list and registers its end pages.
    ///
    /// # Safety
    /// `s` is a valid free span on no list.
    unsafe fn insert(&mut self, s: *mut Span) {
        // SAFETY: caller guarantees `s` is valid and unlinked.
        unsafe {
            let (n, st) = ((*s).npages, (*s).state);
            self.list(n, st).push(s);
            PAGEMAP.set((*s).start, s);
            PAGEMAP.set((*s).end_page() - 1, s);
        }
    }

    /// # Safety
    /// `s` is a valid free span on its list.
    unsafe fn unlink(&mut self, s: *mut Span) {
        // SAFETY: caller guarantees membership.
        unsafe {
            let (n, st) = ((*s).npages, (*s).state);
            self.list(n, st).remove(s);
        }
    }

    /// A span of `n` pages in use, or null when memory ran out.
    pub fn alloc(&mut self, n: usize) -> *mut Span {
        self.alloc_aligned(n, 1)
    }

    /// A span of `n` pages whose start is a multiple of `align_pages` pages
    /// (a power of two), or null.
    pub fn alloc_aligned(&mut self, n: usize, align_pages: usize) -> *mut Span {
        debug_assert!(n > 0 && align_pages.is_power_of_two());
        let Some(want) = n.checked_add(align_pages - 1) else {
            return ptr::null_mut();
        };
        let mut s = self.search(n, align_pages);
        if s.is_null() {
            if !self.grow(want) {
                return ptr::null_mut();
            }
            s = self.search(n, align_pages);
            if s.is_null() {
                return ptr::null_mut();
            }
        }
        // SAFETY: `search` returns a valid free span holding an aligned run.
        unsafe { self.carve(s, n, align_pages) }
    }

    /// Finds a free span that can hold `n` pages at `align_pages` alignment:
    /// the first exact list that fits, else the best fit of the large lists;
    /// memory-backed spans before released ones of the same length.
    fn search(&mut self, n: usize, align_pages: usize) -> *mut Span {
        let fits = |s: &Span| {
            let a = (s.start + align_pages - 1) & !(align_pages - 1);
            a + n <= s.end_page()
        };
        for len in n..=MAX_EXACT_PAGES {
            for st in [SpanState::Free, SpanState::Released] {
                for s in self.list(len, st).iter() {
                    // SAFETY: list members are valid spans.
                    if fits(unsafe { &*s }) {
                        return s;
                    }
                    if align_pages == 1 {
                        break;
                    }
                }
            }
        }
        let mut best: *mut Span = ptr::null_mut();
        for st in [SpanState::Free, SpanState::Released] {
            for s in self.list(MAX_EXACT_PAGES + 1, st).iter() {
                // SAFETY: list members are valid spans.
                let sr = unsafe { &*s };
                if !fits(sr) {
                    continue;
                }
                // SAFETY: `best` is a valid member when non-null.
                if best.is_null()
                    || (sr.npages, sr.start) < unsafe { ((*best).npages, (*best).start) }
                {
                    best = s;
                }
            }
        }
        best
    }

    /// Takes `n` pages at `align_pages` alignment out of free span `s`,
    /// returning the pieces before and after to the free lists.
    ///
    /// # Safety
    /// `s` is a free span on its list that can hold the aligned run.
    unsafe fn carve(&mut self, s: *mut Span, n: usize, align_pages: usize) -> *mut Span {
        // SAFETY: `s` is valid and on its list (caller).
        unsafe {
            self.unlink(s);
            let st = (*s).state;
            self.account(&*s, Some(st), None);
            let a = ((*s).start + align_pages - 1) & !(align_pages - 1);
            if a > (*s).start {
                // Leading piece stays free.
                let Some(lead) = new_span((*s).start, a - (*s).start, (*s).region, st) else {
                    self.account(&*s, None, Some(st));
                    self.insert(s);
                    return ptr::null_mut();
                };
                (*lead).zeroed = (*s).zeroed;
                (*lead).freed_epoch = (*s).freed_epoch;
                (*s).npages -= a - (*s).start;
                (*s).start = a;
                self.account(&*lead, None, Some(st));
                self.insert(lead);
            }
            if (*s).npages > n {
                let Some(rest) = new_span((*s).start + n, (*s).npages - n, (*s).region, st) else {
                    self.account(&*s, None, Some(st));
                    self.insert(s);
                    return ptr::null_mut();
                };
                (*rest).zeroed = (*s).zeroed;
                (*rest).freed_epoch = (*s).freed_epoch;
                (*s).npages = n;
                self.account(&*rest, None, Some(st));
                self.insert(rest);
            }
            if st == SpanState::Released && !region::commit((*s).region, (*s).addr(), (*s).bytes())
            {
                self.account(&*s, None, Some(st));
                self.insert(s);
                return ptr::null_mut();
            }
            if st == SpanState::Released {
                self.stats.commit_count += 1;
                self.stats.total_commit_bytes += (*s).bytes();
            }
            (*s).state = SpanState::InUse;
            self.account(&*s, None, Some(SpanState::InUse));
            PAGEMAP.set((*s).start, s);
            PAGEMAP.set((*s).end_page() - 1, s);
        }
        s
    }

    /// Obtains at least `n` pages from the heap's regions.
    fn grow(&mut self, n: usize) -> bool {
        let want = n.max(MIN_GROW_PAGES);
        if self.limit != 0 {
            let held = self.stats.system_bytes - self.stats.unmapped_bytes;
            if held + (n << PAGE_SHIFT) > self.limit {
                self.release_at_least(n);
                let held = self.stats.system_bytes - self.stats.unmapped_bytes;
                if held + (n << PAGE_SHIFT) > self.limit {
                    return false;
                }
            }
        }
        let Some(c) = region::carve(self.source, n, want) else {
            return false;
        };
        if !PAGEMAP.ensure(c.start, c.npages) {
            return false;
        }
        let Some(s) = new_span(c.start, c.npages, c.region, SpanState::Free) else {
            return false;
        };
        // SAFETY: `s` is a fresh record.
        unsafe {
            (*s).zeroed = c.zeroed;
            (*s).freed_epoch = self.epoch;
        }
        self.stats.system_bytes += c.npages << PAGE_SHIFT;
        self.stats.reserve_count += 1;
        self.stats.commit_count += 1;
        self.stats.total_commit_bytes += c.npages << PAGE_SHIFT;
        // SAFETY: `s` is a new free span, on no list.
        unsafe {
            self.account(&*s, None, Some(SpanState::Free));
            self.merge_and_insert(s);
        }
        true
    }

    /// Returns an in-use span to the free lists, coalescing it with free
    /// neighbours of the same region, and runs the incremental scavenger.
    ///
    /// # Safety
    /// `s` is an in-use span of this heap that nothing references any more.
    pub unsafe fn free(&mut self, s: *mut Span) {
        // SAFETY: forwarded from the caller.
        unsafe {
            let n = (*s).npages;
            self.account(&*s, Some(SpanState::InUse), Some(SpanState::Free));
            (*s).state = SpanState::Free;
            (*s).zeroed = false;
            (*s).freed_epoch = self.epoch;
            (*s).class = 0;
            (*s).objects = ptr::null_mut();
            let s = self.merge_and_insert(s);
            if self.aggressive {
                self.release_span(s);
            } else {
                self.scavenge(n);
            }
        }
    }

    /// Merges free span `s` with its free neighbours in the same state and
    /// region, then inserts the result. Returns the merged span.
    ///
    /// # Safety
    /// `s` is a free span on no list, accounted as free.
    unsafe fn merge_and_insert(&mut self, s: *mut Span) -> *mut Span {
        // SAFETY: pagemap entries either point at the true neighbour span or
        // at a record that fails the adjacency check; neighbours that pass it
        // are free spans on their lists.
        unsafe {
            let (st, region) = ((*s).state, (*s).region);
            let mergeable = move |o: *mut Span| {
                !o.is_null() && o != s && (*o).state == st && (*o).region == region
            };
            let left = if (*s).start > 0 {
                PAGEMAP.get((*s).start - 1)
            } else {
                ptr::null_mut()
            };
            if mergeable(left) && (*left).end_page() == (*s).start {
                self.unlink(left);
                self.stats.free_spans -= 1;
                (*s).start = (*left).start;
                (*s).npages += (*left).npages;
                (*s).zeroed &= (*left).zeroed;
                (*s).freed_epoch = (*s).freed_epoch.max((*left).freed_epoch);
                delete_span(left);
            }
            let right = PAGEMAP.get((*s).end_page());
            if mergeable(right) && (*right).start == (*s).end_page() {
                self.unlink(right);
                self.stats.free_spans -= 1;
                (*s).npages += (*right).npages;
                (*s).zeroed &= (*right).zeroed;
                (*s).freed_epoch = (*s).freed_epoch.max((*right).freed_epoch);
                delete_span(right);
            }
            self.insert(s);
        }
        s
    }

    /// The incremental scavenger: after about `1000 / rate` pages have been
    /// freed per page released, release one span.
    fn scavenge(&mut self, freed: usize) {
        self.scavenge_counter -= freed as isize;
        if self.scavenge_counter >= 0 {
            return;
        }
        let rate = RELEASE_RATE_MILLI.load(Ordering::Relaxed);
        if rate == 0 {
            self.scavenge_counter = DEFAULT_RELEASE_DELAY;
            return;
        }
        self.stats.scavenge_count += 1;
        let released = self.release_at_least(1);
        self.scavenge_counter = if released == 0 {
            DEFAULT_RELEASE_DELAY
        } else {
            let wait = (released as u128 * 1_000_000 / rate as u128) as isize;
            wait.min(MAX_RELEASE_DELAY)
        };
    }

    /// Releases the backing of free span `s` by its region's policy; returns
    /// the pages released (0 when the policy keeps it).
    ///
    /// # Safety
    /// `s` is a span on this heap's lists.
    unsafe fn release_span(&mut self, s: *mut Span) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe {
            if (*s).state != SpanState::Free {
                return 0;
            }
            let Some(zeroed) = region::release((*s).region, (*s).addr(), (*s).bytes()) else {
                return 0;
            };
            let n = (*s).npages;
            self.unlink(s);
            self.account(&*s, Some(SpanState::Free), Some(SpanState::Released));
            self.stats.total_released_bytes += n << PAGE_SHIFT;
            self.stats.decommit_count += 1;
            (*s).state = SpanState::Released;
            (*s).zeroed = zeroed;
            self.merge_and_insert(s);
            n
        }
    }

    /// Releases free spans, largest first, until at least `pages` pages were
    /// released or nothing releasable is left. Returns the pages released.
    pub fn release_at_least(&mut self, pages: usize) -> usize {
        let mut done = 0;
        let mut list = MAX_EXACT_PAGES + 1;
        while done < pages && list > 0 {
            let mut cur = self.list(list, SpanState::Free).head;
            let mut progressed = false;
            while !cur.is_null() && done < pages {
                // SAFETY: list members are valid; we read `next` before the
                // member may move to another list.
                let next = unsafe { (*cur).next };
                // SAFETY: `cur` is on this heap's free list.
                let got = unsafe { self.release_span(cur) };
                done += got;
                if got > 0 {
                    progressed = true;
                    break;
                }
                cur = next;
            }
            if !progressed {
                list -= 1;
            }
        }
        done
    }

    /// Time-based release: releases every free span that has stayed free
    /// since the previous call, then starts a new epoch. Called at a fixed
    /// interval, it gives back what was idle for at least one interval, even
    /// in a process that frees nothing (which the rate-driven scavenger never
    /// reaches). Returns the pages released.
    pub fn release_idle(&mut self) -> usize {
        let mut done = 0;
        for n in 1..=MAX_EXACT_PAGES + 1 {
            let mut cur = self.list(n, SpanState::Free).head;
            while !cur.is_null() {
                // SAFETY: members are valid; releasing `cur` moves it (and its
                // released neighbours) between released lists only, so `next`
                // stays a member of this list.
                unsafe {
                    let next = (*cur).next;
                    if (*cur).freed_epoch != self.epoch {
                        done += self.release_span(cur);
                    }
                    cur = next;
                }
            }
        }
        self.epoch = self.epoch.wrapping_add(1);
        done
    }

    /// Shrinks in-use span `s` to its first `n` pages, freeing the tail.
    ///
    /// # Safety
    /// `s` is an in-use large span of this heap and `0 < n < s.npages`.
    pub unsafe fn shrink(&mut self, s: *mut Span, n: usize) -> bool {
        // SAFETY: forwarded from the caller.
        unsafe {
            let Some(tail) = new_span(
                (*s).start + n,
                (*s).npages - n,
                (*s).region,
                SpanState::InUse,
            ) else {
                return false;
            };
            self.account(&*s, Some(SpanState::InUse), None);
            (*s).npages = n;
            self.account(&*s, None, Some(SpanState::InUse));
            PAGEMAP.set((*s).end_page() - 1, s);
            self.account(&*tail, None, Some(SpanState::InUse));
            self.free(tail);
        }
        true
    }

    /// Calls `f` for every free span.
    #[cfg(test)]
    pub fn for_each_free(&self, mut f: impl FnMut(&Span)) {
        let lists = self
            .free
            .iter()
            .chain(self.released.iter())
            .chain([&self.large_free, &self.large_released]);
        for l in lists {
            for s in l.iter() {
                // SAFETY: list members are valid spans.
                f(unsafe { &*s });
            }
        }
    }

    /// Number of free spans of exactly `n` pages, memory-backed and released
    /// (n > MAX_EXACT_PAGES: all the large ones).
    pub fn free_span_counts(&self, n: usize) -> (usize, usize) {
        if n <= MAX_EXACT_PAGES {
            (self.free[n].len, self.released[n].len)
        } else {
            (self.large_free.len, self.large_released.len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page heap of its own region, so tests running in parallel never
    /// share pages (regions belong to exactly one heap).
    fn heap() -> PageHeap {
        let len = 64 << 20;
        let p = crate::os::map_anonymous(len).unwrap();
        let opts = region::RegionOptions::new().exclusive(true).zeroed(true);
        // SAFETY: a fresh private mapping handed over for good.
        let id = unsafe { region::inject(p.as_ptr(), len, opts) }.unwrap();
        PageHeap::new(Source::Bound(id.0))
    }

    fn check_totals(h: &PageHeap) {
        let s = h.stats();
        assert_eq!(
            s.system_bytes,
            s.free_bytes + s.unmapped_bytes + s.in_use_bytes,
            "{s:?}"
        );
        let mut free = 0;
        let mut rel = 0;
        h.for_each_free(|sp| match sp.state {
            SpanState::Free => free += sp.bytes(),
            SpanState::Released => rel += sp.bytes(),
            SpanState::InUse => panic!("in-use span on a free list"),
        });
        assert_eq!((free, rel), (s.free_bytes, s.unmapped_bytes));
    }

    #[test]
    fn split_and_coalesce() {
        let mut h = heap();
        let a = h.alloc(3);
        let b = h.alloc(5);
        let c = h.alloc(7);
        assert!(!a.is_null() && !b.is_null() && !c.is_null());
        // SAFETY: spans just allocated from `h`.
        unsafe {
            assert_eq!((*a).npages, 3);
            assert_eq!((*a).end_page(), (*b).start, "carved in order");
            assert_eq!((*b).end_page(), (*c).start);
            check_totals(&h);
            let before = h.stats().free_spans;
            h.free(b);
            check_totals(&h);
            assert_eq!(h.stats().free_spans, before + 1);
            h.free(a);
            // a and b merged into one 8-page span
            assert_eq!(h.stats().free_spans, before + 1);
            assert_eq!(h.free_span_counts(8).0, 1);
            h.free(c);
            // a+b+c+rest merged back into the whole grown chunk
            assert_eq!(h.stats().free_spans, 1);
            assert_eq!(h.stats().in_use_bytes, 0);
            check_totals(&h);
        }
    }

    #[test]
    fn large_best_fit_and_alignment() {
        let mut h = heap();
        let big = h.alloc(300);
        assert!(!big.is_null());
        let al = h.alloc_aligned(4, 64);
        // SAFETY: spans of `h`.
        unsafe {
            assert_eq!((*al).start % 64, 0);
            assert_eq!((*al).npages, 4);
            check_totals(&h);
            h.free(big);
            h.free(al);
        }
        check_totals(&h);
    }

    #[test]
    fn release_accounting() {
        let mut h = heap();
        let a = h.alloc(200);
        // SAFETY: span of `h`.
        unsafe { h.free(a) };
        let before = h.stats();
        assert_eq!(
            (before.reserve_count, before.commit_count),
            (1, 1),
            "one growth"
        );
        assert_eq!(before.total_commit_bytes, before.system_bytes);
        let released = h.release_at_least(1);
        assert!(released >= 200);
        let after = h.stats();
        assert_eq!(
            after.unmapped_bytes - before.unmapped_bytes,
            released << PAGE_SHIFT
        );
        assert_eq!(after.decommit_count, before.decommit_count + 1);
        check_totals(&h);
        // Reuse of released pages commits them again.
        let b = h.alloc(10);
        assert!(!b.is_null());
        let reused = h.stats();
        assert_eq!(reused.commit_count, 2);
        assert_eq!(
            reused.total_commit_bytes,
            before.total_commit_bytes + (10 << PAGE_SHIFT)
        );
        assert_eq!(reused.reserve_count, 1, "no growth");
        check_totals(&h);
        // SAFETY: span of `h`.
        unsafe {
            assert!((*b).zeroed, "released anonymous memory reads as zero");
            h.free(b);
        }
        check_totals(&h);
    }

    #[test]
    fn idle_spans_are_released_after_one_epoch() {
        let mut h = heap();
        let a = h.alloc(20);
        let b = h.alloc(20);
        // SAFETY: span of `h`.
        unsafe { h.free(a) };
        assert_eq!(
            h.release_idle(),
            0,
            "nothing has been idle for an epoch yet"
        );
        // `a` and the rest of the grown chunk stayed free for a whole epoch.
        let before = h.stats();
        assert_eq!(h.release_idle(), 128 - 20);
        assert_eq!(
            h.stats().unmapped_bytes - before.unmapped_bytes,
            108 << PAGE_SHIFT
        );
        check_totals(&h);
        // SAFETY: span of `h`.
        unsafe { h.free(b) };
        assert_eq!(h.release_idle(), 0, "b was freed in this epoch");
        assert_eq!(h.stats().free_bytes, 20 << PAGE_SHIFT);
        assert_eq!(h.release_idle(), 20, "b is released one epoch later");
        assert_eq!(h.stats().free_bytes, 0);
        check_totals(&h);
    }

    #[test]
    fn limit_refuses_growth() {
        let mut h = heap();
        h.limit = 4 << 20;
        let a = h.alloc(256); // 2 MiB
        assert!(!a.is_null());
        let b = h.alloc(512); // 4 MiB more: over the limit
        assert!(b.is_null());
        // SAFETY: span of `h`.
        unsafe { h.free(a) };
        let c = h.alloc(300);
        assert!(!c.is_null(), "freed pages are reused under the limit");
        // SAFETY: span of `h`.
        unsafe { h.free(c) };
    }
}
