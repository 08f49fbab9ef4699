//! The page heap: free runs of pages, by length.
//!
//! Exact-length lists for runs up to [`MAX_EXACT_PAGES`] (1 MiB), one list
//! searched best-fit above that; each kept three times: runs backed by
//! memory that may be released, runs backed by memory that is never released
//! (their region's policy keeps them, or a release did nothing: they are not
//! offered for release again until reused), and runs whose backing was
//! released. Freed spans coalesce with free neighbours of the same kind **and
//! the same region** (found through the pagemap), so memory of different
//! regions, and so of different backings, never shares a span.
//!
//! Release follows the region's granularity: on hugetlbfs only whole, aligned
//! huge pages go back, and a span is split around them. A scavenger driven by
//! the release rate gives free runs back to the OS as pages are freed, and
//! [`PageHeap::release_at_least`] does so on demand, each in one pass over
//! the releasable lists. One page heap per heap, under that heap's page-heap
//! lock.

use crate::pagemap::PAGEMAP;
use crate::region::{self, Source};
use crate::release::ReleaseOutcome;
use crate::settings::Settings;
use crate::size_class::PAGE_SHIFT;
use crate::span::{delete_span, new_span, Span, SpanList, SpanState};
use core::ptr;

/// Runs up to this many pages have exact-length lists.
pub const MAX_EXACT_PAGES: usize = 128;
/// Grow by at least this many pages (1 MiB) at a time.
pub const MIN_GROW_PAGES: usize = 128;

const DEFAULT_RELEASE_DELAY: isize = 1 << 18;
const MAX_RELEASE_DELAY: isize = 1 << 20;

/// Free pages backed by memory that a heap keeps at any time without
/// releasing any (32 MiB); see [`PageHeap::keep_under_dirty_cap`].
pub const DIRTY_FLOOR_PAGES: usize = 4096;
/// ... and one part in this many of its pages in use.
pub const DIRTY_SHARE: usize = 8;

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
    /// Free spans (all kinds).
    pub free_spans: usize,
    /// Bytes released to the OS over the heap's lifetime.
    pub total_released_bytes: usize,
    /// Bytes obtained from system allocators (the part of `system_bytes`
    /// the heap limit covers).
    pub from_system_bytes: usize,
    /// Bytes of system-allocator memory in released spans.
    pub from_system_released_bytes: usize,
    /// The high-water mark of `in_use_bytes`.
    pub peak_in_use_bytes: usize,
    /// The high-water mark of `system_bytes`.
    pub peak_system_bytes: usize,
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

/// The three kinds of free list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Backed by memory, may be released.
    Backed = 0,
    /// Backed by memory, never offered for release.
    Pinned = 1,
    /// Released.
    Released = 2,
}

/// Lists of one kind: index n ≤ MAX_EXACT_PAGES holds spans of exactly n
/// pages, index MAX_EXACT_PAGES + 1 the longer ones.
type Lists = [SpanList; MAX_EXACT_PAGES + 2];

/// A page heap.
pub struct PageHeap {
    source: Source,
    /// By [`Kind`].
    lists: [Lists; 3],
    stats: PageHeapStats,
    /// Pages still to be freed before the scavenger releases a span.
    scavenge_counter: isize,
    /// Free backed pages the last release over the dirty cap could not
    /// release (kept by their regions' policies): not counted against it.
    kept_pages: usize,
    /// Pages of large spans recently handed out of pages used before (not
    /// freshly carved), decayed by a 64th at each large span handed
    /// out: how much freed memory the program has been taking again. Pages
    /// that had been released count twice: taking them back costs a page
    /// fault per page, a sign that the cap was too low, so it rises faster.
    reused_pages: usize,
    /// Advanced by each [`PageHeap::release_idle`] call; stamped on freed
    /// spans.
    epoch: u32,
}

fn kind_of(s: &Span) -> Kind {
    match (s.state, s.pinned) {
        (SpanState::Released, _) => Kind::Released,
        (_, true) => Kind::Pinned,
        _ => Kind::Backed,
    }
}

impl PageHeap {
    /// An empty page heap carving from `source`.
    pub(crate) const fn new(source: Source) -> Self {
        Self {
            source,
            lists: [const { [const { SpanList::new() }; MAX_EXACT_PAGES + 2] }; 3],
            stats: PageHeapStats {
                system_bytes: 0,
                free_bytes: 0,
                unmapped_bytes: 0,
                in_use_bytes: 0,
                spans_in_use: 0,
                free_spans: 0,
                total_released_bytes: 0,
                from_system_bytes: 0,
                from_system_released_bytes: 0,
                peak_in_use_bytes: 0,
                peak_system_bytes: 0,
                scavenge_count: 0,
                commit_count: 0,
                total_commit_bytes: 0,
                decommit_count: 0,
                reserve_count: 0,
            },
            scavenge_counter: 0,
            kept_pages: 0,
            reused_pages: 0,
            epoch: 0,
        }
    }

    /// The counters.
    pub fn stats(&self) -> PageHeapStats {
        self.stats
    }

    fn list(&mut self, n: usize, kind: Kind) -> &mut SpanList {
        &mut self.lists[kind as usize][n.min(MAX_EXACT_PAGES + 1)]
    }

    /// Moves a span's bytes between the counters of this heap and its region.
    fn account(&mut self, s: &Span, from: Option<SpanState>, to: Option<SpanState>) {
        let b = s.bytes();
        let system = region::is_system(s.region);
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
            if system && st == SpanState::Released {
                if sign {
                    self.stats.from_system_released_bytes += b;
                } else {
                    self.stats.from_system_released_bytes -= b;
                }
            }
        }
        if to == Some(SpanState::InUse) {
            self.stats.peak_in_use_bytes =
                self.stats.peak_in_use_bytes.max(self.stats.in_use_bytes);
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
            let (n, k) = ((*s).npages, kind_of(&*s));
            self.list(n, k).push(s);
            PAGEMAP.set((*s).start, s);
            PAGEMAP.set((*s).end_page() - 1, s);
        }
    }

    /// # Safety
    /// `s` is a valid free span on its list.
    unsafe fn unlink(&mut self, s: *mut Span) {
        // SAFETY: caller guarantees membership.
        unsafe {
            let (n, k) = ((*s).npages, kind_of(&*s));
            self.list(n, k).remove(s);
        }
    }

    /// A span of `n` pages in use, or null when memory ran out.
    #[cfg(test)]
    pub fn alloc(&mut self, n: usize, settings: &Settings) -> *mut Span {
        self.alloc_aligned(n, 1, settings)
    }

    /// A span of `n` pages whose start is a multiple of `align_pages` pages
    /// (a power of two), or null.
    pub fn alloc_aligned(
        &mut self,
        n: usize,
        align_pages: usize,
        settings: &Settings,
    ) -> *mut Span {
        debug_assert!(n > 0 && align_pages.is_power_of_two());
        let Some(want) = n.checked_add(align_pages - 1) else {
            return ptr::null_mut();
        };
        let mut s = self.search(n, align_pages);
        if s.is_null() {
            if !self.grow(want, settings) {
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
        const ORDER: [Kind; 3] = [Kind::Backed, Kind::Pinned, Kind::Released];
        for len in n..=MAX_EXACT_PAGES {
            for k in ORDER {
                for s in self.list(len, k).iter() {
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
        for k in ORDER {
            for s in self.list(MAX_EXACT_PAGES + 1, k).iter() {
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

    /// Splits free span `s` (on no list, not accounted) at page `at`,
    /// keeping `[start, at)` in `s` and returning `[at, end)` as a new span of
    /// the same state and stamps, or `None` when metadata ran out.
    ///
    /// # Safety
    /// `s` is a valid span and `start < at < end`.
    unsafe fn split_off(s: *mut Span, at: usize) -> Option<*mut Span> {
        // SAFETY: forwarded from the caller.
        unsafe {
            let rest = new_span(at, (*s).end_page() - at, (*s).region, (*s).state)?;
            (*rest).zeroed = (*s).zeroed;
            (*rest).pinned = (*s).pinned;
            (*rest).freed_epoch = (*s).freed_epoch;
            (*s).npages = at - (*s).start;
            Some(rest)
        }
    }

    /// Takes `n` pages at `align_pages` alignment out of free span `s`,
    /// returning the pieces before and after to the free lists.
    ///
    /// # Safety
    /// `s` is a free span on its list that can hold the aligned run.
    unsafe fn carve(&mut self, s: *mut Span, n: usize, align_pages: usize) -> *mut Span {
        // SAFETY: `s` is valid and on its list (caller); pieces split off it
        // are fresh records of the same state.
        unsafe {
            self.unlink(s);
            let st = (*s).state;
            self.account(&*s, Some(st), None);
            let a = ((*s).start + align_pages - 1) & !(align_pages - 1);
            let mut s = s;
            if a > (*s).start {
                let Some(rest) = Self::split_off(s, a) else {
                    self.account(&*s, None, Some(st));
                    self.insert(s);
                    return ptr::null_mut();
                };
                // The leading piece stays free.
                self.account(&*s, None, Some(st));
                self.insert(s);
                s = rest;
            }
            if (*s).npages > n {
                let Some(rest) = Self::split_off(s, (*s).start + n) else {
                    self.account(&*s, None, Some(st));
                    self.insert(s);
                    return ptr::null_mut();
                };
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
            if n > MAX_EXACT_PAGES {
                self.reused_pages -= self.reused_pages / 64;
                if st == SpanState::Released {
                    self.reused_pages += 2 * n;
                } else if !(*s).zeroed {
                    self.reused_pages += n;
                }
            }
            (*s).state = SpanState::InUse;
            (*s).pinned = false;
            self.account(&*s, None, Some(SpanState::InUse));
            // Every page of a span in use maps to it, so that any address
            // inside a large block finds its block (free spans register
            // their end pages only: other pages may hold stale entries,
            // which fail the lookups' range checks).
            for p in (*s).start..(*s).end_page() {
                PAGEMAP.set(p, s);
            }
            s
        }
    }

    /// Obtains at least `n` pages from the heap's regions: injected ones
    /// first, then (for the global heap) the system allocator, within the
    /// heap limit, which covers memory from system allocators only.
    fn grow(&mut self, n: usize, settings: &Settings) -> bool {
        let want = n.max(MIN_GROW_PAGES);
        let carved = match region::carve_injected(self.source, n, want) {
            Some(c) => Some(c),
            None if matches!(self.source, Source::Global) => self.carve_system(n, want, settings),
            None => None,
        };
        carved.is_some_and(|c| self.add_carved(c))
    }

    /// Adds carved pages `c` as a free span (merged with free neighbours).
    /// False when metadata ran out.
    fn add_carved(&mut self, c: region::Carved) -> bool {
        if !PAGEMAP.ensure(c.start, c.npages) {
            return false;
        }
        let Some(s) = new_span(c.start, c.npages, c.region, SpanState::Free) else {
            return false;
        };
        // SAFETY: `s` is a fresh record.
        unsafe {
            (*s).zeroed = c.zeroed;
            (*s).pinned = region::never_releases(c.region);
            (*s).freed_epoch = self.epoch;
        }
        let bytes = c.npages << PAGE_SHIFT;
        self.stats.system_bytes += bytes;
        if c.system {
            self.stats.from_system_bytes += bytes;
        }
        self.stats.peak_system_bytes = self.stats.peak_system_bytes.max(self.stats.system_bytes);
        self.stats.reserve_count += 1;
        self.stats.commit_count += 1;
        self.stats.total_commit_bytes += bytes;
        // SAFETY: `s` is a new free span, on no list.
        unsafe {
            self.account(&*s, None, Some(SpanState::Free));
            self.merge_and_insert(s);
        }
        true
    }

    /// Carves from the system allocator, keeping within the heap limit: when
    /// the limit leaves too little room, free spans are released first; then
    /// at most the room left is asked for, and never less than `n` pages.
    fn carve_system(
        &mut self,
        n: usize,
        want: usize,
        settings: &Settings,
    ) -> Option<region::Carved> {
        let limit = settings.limit();
        let mut want = want;
        if limit != 0 {
            let room = |h: &Self| {
                let held = h.stats.from_system_bytes - h.stats.from_system_released_bytes;
                limit.saturating_sub(held) >> PAGE_SHIFT
            };
            if room(self) < n {
                self.release_at_least(n - room(self));
            }
            let r = room(self);
            if r < n {
                return None;
            }
            want = want.min(r);
        }
        region::carve_system(n, want)
    }

    /// Returns an in-use span to the free lists, coalescing it with free
    /// neighbours of the same region, and runs the incremental scavenger.
    ///
    /// # Safety
    /// `s` is an in-use span of this heap that nothing references any more.
    pub unsafe fn free(&mut self, s: *mut Span, settings: &Settings) {
        // SAFETY: forwarded from the caller.
        unsafe {
            let n = (*s).npages;
            let s = self.take_back(s, SpanState::Free);
            if settings.aggressive() {
                self.release_span(s);
            } else {
                self.scavenge(n, settings);
            }
        }
    }

    /// Frees in-use span `s` and releases its pages at once, as its region's
    /// policy allows (the old copy of a block that moved).
    ///
    /// # Safety
    /// As for [`PageHeap::free`].
    pub unsafe fn free_and_release(&mut self, s: *mut Span) {
        // SAFETY: forwarded from the caller.
        unsafe {
            let s = self.take_back(s, SpanState::Free);
            self.release_span(s);
        }
    }

    /// Merges free span `s` with its free neighbours of the same kind and
    /// region, then inserts the result. Returns the merged span.
    ///
    /// # Safety
    /// `s` is a free span on no list, accounted as free.
    unsafe fn merge_and_insert(&mut self, s: *mut Span) -> *mut Span {
        // SAFETY: pagemap entries either point at the true neighbour span or
        // at a record that fails the adjacency check; neighbours that pass it
        // are free spans on their lists.
        unsafe {
            let (st, pinned, region) = ((*s).state, (*s).pinned, (*s).region);
            let mergeable = move |o: *mut Span| {
                !o.is_null()
                    && o != s
                    && (*o).state == st
                    && (*o).pinned == pinned
                    && (*o).region == region
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
    /// freed per page released, release one span. The first release comes
    /// with the first free, as in gperftools.
    fn scavenge(&mut self, freed: usize, settings: &Settings) {
        let rate = settings.release_rate_milli();
        if rate != 0 {
            self.keep_under_dirty_cap();
        }
        self.scavenge_counter -= freed as isize;
        if self.scavenge_counter >= 0 {
            return;
        }
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

    /// The dirty cap: when the free pages backed by memory pass the largest
    /// of [`DIRTY_FLOOR_PAGES`], a [`DIRTY_SHARE`] part of the pages in use,
    /// and the pages of large blocks the program recently took from freed
    /// pages, it releases the largest free spans down to half that. A
    /// program that drops memory it does not take again (a hash table's
    /// outgrown arrays, a finished phase) gives it back at once, not after
    /// gigabytes more are freed; one that keeps replacing large blocks
    /// (buffers of a steady working set) keeps what it reuses, and does not
    /// fault its pages back in on every block.
    fn keep_under_dirty_cap(&mut self) {
        let free = self.stats.free_bytes >> PAGE_SHIFT;
        self.kept_pages = self.kept_pages.min(free);
        let cap = ((self.stats.in_use_bytes >> PAGE_SHIFT) / DIRTY_SHARE)
            .max(DIRTY_FLOOR_PAGES)
            .max(self.reused_pages);
        if free <= cap + self.kept_pages {
            return;
        }
        let want = free - self.kept_pages - cap / 2;
        let done = self.release_at_least(want);
        if done < want {
            self.kept_pages = self.stats.free_bytes >> PAGE_SHIFT;
        }
    }

    /// Releases the backing of free span `s` by its region's policy, in
    /// whole units of the region's granularity (the span is split around
    /// them). Returns the pages released; a span whose release did nothing is
    /// pinned (not offered again until reused).
    ///
    /// # Safety
    /// `s` is a span on this heap's lists.
    unsafe fn release_span(&mut self, s: *mut Span) -> usize {
        // SAFETY: forwarded from the caller; pieces split off `s` are fresh
        // free records inserted without merging (their outer neighbours were
        // not mergeable with `s`, their inner one is the released middle).
        unsafe {
            if (*s).state != SpanState::Free || (*s).pinned {
                return 0;
            }
            let g = region::granule_pages((*s).region);
            let a = ((*s).start + g - 1) & !(g - 1);
            let b = (*s).end_page() & !(g - 1);
            if a >= b {
                return 0;
            }
            let outcome = region::release((*s).region, a << PAGE_SHIFT, (b - a) << PAGE_SHIFT);
            self.unlink(s);
            if outcome == ReleaseOutcome::Kept {
                (*s).pinned = true;
                self.merge_and_insert(s);
                return 0;
            }
            self.account(&*s, Some(SpanState::Free), None);
            let mut s = s;
            if a > (*s).start {
                let Some(mid) = Self::split_off(s, a) else {
                    return self.unrelease(s);
                };
                self.account(&*s, None, Some(SpanState::Free));
                self.insert(s);
                s = mid;
            }
            if (*s).end_page() > b {
                let Some(tail) = Self::split_off(s, b) else {
                    return self.unrelease(s);
                };
                self.account(&*tail, None, Some(SpanState::Free));
                self.insert(tail);
            }
            self.stats.decommit_count += 1;
            (*s).state = SpanState::Released;
            (*s).zeroed = outcome == ReleaseOutcome::Zeroed;
            self.account(&*s, None, Some(SpanState::Released));
            self.stats.total_released_bytes += (b - a) << PAGE_SHIFT;
            self.merge_and_insert(s);
            b - a
        }
    }

    /// Metadata ran out while splitting a span around its released part: the
    /// whole span goes back as released with undefined contents (its memory
    /// was partly given back), so nothing is lost; returns its pages.
    ///
    /// # Safety
    /// `s` is a free span on no list, not accounted.
    unsafe fn unrelease(&mut self, s: *mut Span) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe {
            (*s).state = SpanState::Released;
            (*s).zeroed = false;
            self.account(&*s, None, Some(SpanState::Released));
            self.merge_and_insert(s);
            (*s).npages
        }
    }

    /// Releases free spans, largest first, until at least `pages` pages were
    /// released or nothing releasable is left, in one pass over the
    /// releasable lists. Returns the pages released.
    pub fn release_at_least(&mut self, pages: usize) -> usize {
        let mut done = 0;
        for n in (1..=MAX_EXACT_PAGES + 1).rev() {
            done += self.release_list(n, |_| true, pages - done);
            if done >= pages {
                break;
            }
        }
        done
    }

    /// Releases members of releasable list `n` that `pick` selects, until
    /// `budget` pages were released. Releasing a member moves it (and the
    /// pieces split off it) to other lists or to this list's head, so the
    /// saved `next` stays a member not yet visited.
    fn release_list(&mut self, n: usize, pick: impl Fn(&Span) -> bool, budget: usize) -> usize {
        let mut done = 0;
        let mut cur = self.list(n, Kind::Backed).head;
        while !cur.is_null() && done < budget {
            // SAFETY: `cur` is a member of this list (see above).
            unsafe {
                let next = (*cur).next;
                if pick(&*cur) {
                    done += self.release_span(cur);
                }
                cur = next;
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
        let epoch = self.epoch;
        let mut done = 0;
        for n in 1..=MAX_EXACT_PAGES + 1 {
            done += self.release_list(n, |s| s.freed_epoch != epoch, usize::MAX);
        }
        self.epoch = self.epoch.wrapping_add(1);
        done
    }

    /// Grows in-use span `s` to `n` pages into the free spans right after it
    /// (same region) and, past them, into pages of its region not carved
    /// yet; released pages are committed. False when there is not enough
    /// room there (nothing changed), or committing failed (`s` may then have
    /// grown by part of the way).
    ///
    /// # Safety
    /// `s` is an in-use large span of this heap and `n > s.npages`.
    pub unsafe fn grow_in_place(&mut self, s: *mut Span, n: usize) -> bool {
        // SAFETY: forwarded from the caller; spans found through the pagemap
        // are used only once checked to be free spans of `s`'s region that
        // start where the run so far ends.
        unsafe {
            let region = (*s).region;
            let free_at = |page: usize| {
                let r = PAGEMAP.get(page);
                let ok = !r.is_null()
                    && (*r).start == page
                    && (*r).state != SpanState::InUse
                    && (*r).region == region;
                ok.then_some(r)
            };
            let (mut end, mut have) = ((*s).end_page(), (*s).npages);
            while have < n {
                let Some(r) = free_at(end) else { break };
                have += (*r).npages;
                end = (*r).end_page();
            }
            if have < n {
                let short = n - have;
                let carved = region::carve_after(region, end, short, short.max(MIN_GROW_PAGES));
                if !carved.is_some_and(|c| self.add_carved(c)) {
                    return false;
                }
            }
            let mut grown = (*s).npages;
            while grown < n {
                let Some(r) = free_at(grown + (*s).start) else {
                    return false;
                };
                if !self.absorb(s, r, n - grown) {
                    return false;
                }
                grown = (*s).npages;
            }
        }
        true
    }

    /// Moves the first `want` pages (at most) of free span `r`, which starts
    /// where in-use span `s` ends, into `s`. False when committing them
    /// failed or metadata ran out (nothing changed).
    ///
    /// # Safety
    /// As stated; both are spans of this heap.
    unsafe fn absorb(&mut self, s: *mut Span, r: *mut Span, want: usize) -> bool {
        // SAFETY: forwarded from the caller.
        unsafe {
            let take = want.min((*r).npages);
            let st = (*r).state;
            if st == SpanState::Released {
                if !region::commit((*r).region, (*r).addr(), take << PAGE_SHIFT) {
                    return false;
                }
                self.stats.commit_count += 1;
                self.stats.total_commit_bytes += take << PAGE_SHIFT;
            }
            self.unlink(r);
            self.account(&*r, Some(st), None);
            if (*r).npages > take {
                let Some(rest) = Self::split_off(r, (*r).start + take) else {
                    self.account(&*r, None, Some(st));
                    self.insert(r);
                    return false;
                };
                self.account(&*rest, None, Some(st));
                self.insert(rest);
            }
            delete_span(r);
            self.account(&*s, Some(SpanState::InUse), None);
            for p in (*s).end_page()..(*s).end_page() + take {
                PAGEMAP.set(p, s);
            }
            (*s).npages += take;
            self.account(&*s, None, Some(SpanState::InUse));
        }
        true
    }

    /// Takes back in-use span `s`, whose pages were moved away with
    /// `mremap` (the range stays mapped, without pages): it is free,
    /// released and reads as zero.
    ///
    /// # Safety
    /// `s` is an in-use span of this heap that nothing references, whose
    /// range is private anonymous memory without pages.
    pub unsafe fn free_moved(&mut self, s: *mut Span) {
        // SAFETY: forwarded from the caller.
        unsafe { self.take_back(s, SpanState::Released) };
    }

    /// Makes in-use span `s` free in `state` (`Free`: its pages hold old
    /// contents; `Released`: fresh zero pages) and merges it with its free
    /// neighbours; returns the merged span.
    ///
    /// # Safety
    /// As for [`PageHeap::free`].
    unsafe fn take_back(&mut self, s: *mut Span, state: SpanState) -> *mut Span {
        // SAFETY: forwarded from the caller.
        unsafe {
            self.account(&*s, Some(SpanState::InUse), Some(state));
            (*s).state = state;
            (*s).zeroed = state == SpanState::Released;
            (*s).pinned = state == SpanState::Free && region::never_releases((*s).region);
            (*s).freed_epoch = self.epoch;
            (*s).class = 0;
            (*s).objects = ptr::null_mut();
            self.merge_and_insert(s)
        }
    }

    /// Shrinks in-use span `s` to its first `n` pages, freeing the tail.
    ///
    /// # Safety
    /// `s` is an in-use large span of this heap and `0 < n < s.npages`.
    pub unsafe fn shrink(&mut self, s: *mut Span, n: usize, settings: &Settings) -> bool {
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
            self.free(tail, settings);
        }
        true
    }

    /// Calls `f` for every span of the carved range `[start, end)` (pages)
    /// of one of this heap's regions, in address order: the spans tile it,
    /// and each one's first page is registered. `f` may delete the span.
    ///
    /// # Safety
    /// The range is carved memory of this heap, whose spans nobody else
    /// touches meanwhile.
    pub(crate) unsafe fn for_each_span_in(start: usize, end: usize, mut f: impl FnMut(*mut Span)) {
        let mut page = start;
        while page < end {
            let s = PAGEMAP.get(page);
            // SAFETY: the spans of the range tile it (caller), so the first
            // page of each is registered and points at it.
            let next = unsafe {
                if s.is_null() || (*s).start != page {
                    crate::os::fatal(format_args!("page heap: no span starts at page {page:#x}"));
                }
                (*s).end_page()
            };
            f(s);
            page = next;
        }
    }

    /// Takes the carved range `[start, end)` (pages) of a region out of this
    /// page heap, for retiring the region: every span in it must be free.
    /// Their records are deleted and the pagemap forgets the range. False
    /// (and nothing changed) when some span is in use.
    ///
    /// # Safety
    /// As for [`PageHeap::for_each_span_in`].
    pub(crate) unsafe fn remove_range(&mut self, start: usize, end: usize) -> bool {
        let mut busy = false;
        // SAFETY: forwarded from the caller.
        unsafe {
            Self::for_each_span_in(start, end, |s| busy |= (*s).state == SpanState::InUse);
            if busy {
                return false;
            }
            Self::for_each_span_in(start, end, |s| {
                self.unlink(s);
                self.account(&*s, Some((*s).state), None);
                delete_span(s);
            });
        }
        let bytes = (end - start) << PAGE_SHIFT;
        self.stats.system_bytes -= bytes;
        PAGEMAP.clear(start, end);
        true
    }

    /// Gives every span of the range `[start, end)` (pages) to region
    /// `region` (in a forked child, whose shared memory became a private copy
    /// of a region of its own).
    ///
    /// # Safety
    /// As for [`PageHeap::for_each_span_in`].
    pub(crate) unsafe fn retag_range(&mut self, start: usize, end: usize, region: u16) {
        // SAFETY: forwarded from the caller; a free span leaves its list
        // while its kind may change, and comes back (without merging: its
        // neighbours were not mergeable before and move along).
        unsafe {
            Self::for_each_span_in(start, end, |s| {
                let st = (*s).state;
                let free = st != SpanState::InUse;
                if free {
                    self.unlink(s);
                }
                self.account(&*s, Some(st), None);
                (*s).region = region;
                if free {
                    (*s).pinned = region::never_releases(region);
                }
                self.account(&*s, None, Some(st));
                if free {
                    self.insert(s);
                }
            });
        }
    }

    /// Frees everything in the carved range `[start, end)` (pages) of region
    /// `region` at once, arena style: spans in use become free (their
    /// contents undefined), free ones stay as they are, and each run of free
    /// or of released pages becomes one span. Time is proportional to the
    /// spans of the range (and its pages, for the pagemap). Small-object
    /// spans must be forgotten by the central lists by the caller.
    ///
    /// # Safety
    /// As for [`PageHeap::for_each_span_in`]; nothing in the range is used
    /// any more.
    pub(crate) unsafe fn reclaim_range(&mut self, start: usize, end: usize, region: u16) {
        // The run being built: (first page, released?).
        let mut run: Option<(usize, bool)> = None;
        // SAFETY: forwarded from the caller; each span is read before it is
        // deleted, and its pages are forgotten before a run covers them.
        unsafe {
            Self::for_each_span_in(start, end, |s| {
                let (st, from, to) = ((*s).state, (*s).start, (*s).end_page());
                if st != SpanState::InUse {
                    self.unlink(s);
                }
                self.account(&*s, Some(st), None);
                delete_span(s);
                PAGEMAP.clear(from, to);
                let released = st == SpanState::Released;
                match run {
                    Some((first, r)) if r != released => {
                        self.insert_run(first, from, r, region);
                        run = Some((from, released));
                    }
                    None => run = Some((from, released)),
                    Some(_) => {}
                }
            });
            if let Some((first, r)) = run {
                self.insert_run(first, end, r, region);
            }
        }
    }

    /// Inserts a free (or released) span for pages `[from, to)` of `region`.
    ///
    /// # Safety
    /// The pages are carved pages of this heap's region that no span covers.
    unsafe fn insert_run(&mut self, from: usize, to: usize, released: bool, region: u16) {
        let state = if released {
            SpanState::Released
        } else {
            SpanState::Free
        };
        let Some(s) = new_span(from, to - from, region, state) else {
            crate::os::fatal(format_args!(
                "out of metadata memory while reclaiming pages"
            ));
        };
        // SAFETY: a fresh record of a free run, on no list.
        unsafe {
            (*s).pinned = region::never_releases(region);
            (*s).freed_epoch = self.epoch;
            self.account(&*s, None, Some(state));
            self.insert(s);
        }
    }

    /// Calls `f` for every free span.
    #[cfg(test)]
    pub fn for_each_free(&self, mut f: impl FnMut(&Span)) {
        for l in self.lists.iter().flatten() {
            for s in l.iter() {
                // SAFETY: list members are valid spans.
                f(unsafe { &*s });
            }
        }
    }

    /// Number of free spans of exactly `n` pages, memory-backed and released
    /// (n > MAX_EXACT_PAGES: all the large ones).
    pub fn free_span_counts(&self, n: usize) -> (usize, usize) {
        let i = n.min(MAX_EXACT_PAGES + 1);
        (
            self.lists[Kind::Backed as usize][i].len + self.lists[Kind::Pinned as usize][i].len,
            self.lists[Kind::Released as usize][i].len,
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) static SET: Settings = Settings::without_scavenger();

    /// A page heap of its own region, bound to a heap slot of its own, so
    /// tests running in parallel never share pages (regions belong to
    /// exactly one heap). The slot is not a real heap; the page heap does not
    /// need one.
    pub(crate) fn heap() -> PageHeap {
        use core::sync::atomic::{AtomicUsize, Ordering};
        static NEXT_SLOT: AtomicUsize = AtomicUsize::new(10_000);
        let len = 64 << 20;
        let p = crate::os::map_anonymous(len).unwrap();
        let opts = region::RegionOptions::new().exclusive(true).zeroed(true);
        // SAFETY: a fresh private mapping handed over for good.
        let id = unsafe { region::inject(p.as_ptr(), len, opts) }.unwrap();
        let slot = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
        region::bind(id, slot).unwrap();
        PageHeap::new(Source::Bound(slot))
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
        let a = h.alloc(3, &SET);
        let b = h.alloc(5, &SET);
        let c = h.alloc(7, &SET);
        assert!(!a.is_null() && !b.is_null() && !c.is_null());
        // SAFETY: spans just allocated from `h`.
        unsafe {
            assert_eq!((*a).npages, 3);
            assert_eq!((*a).end_page(), (*b).start, "carved in order");
            assert_eq!((*b).end_page(), (*c).start);
            check_totals(&h);
            let before = h.stats().free_spans;
            h.free(b, &SET);
            check_totals(&h);
            assert_eq!(h.stats().free_spans, before + 1);
            h.free(a, &SET);
            // a and b merged into one 8-page span
            assert_eq!(h.stats().free_spans, before + 1);
            assert_eq!(h.free_span_counts(8).0, 1);
            h.free(c, &SET);
            // a+b+c+rest merged back into the whole grown chunk
            assert_eq!(h.stats().free_spans, 1);
            assert_eq!(h.stats().in_use_bytes, 0);
            check_totals(&h);
        }
    }

    #[test]
    fn large_best_fit_and_alignment() {
        let mut h = heap();
        let big = h.alloc(300, &SET);
        assert!(!big.is_null());
        let al = h.alloc_aligned(4, 64, &SET);
        // SAFETY: spans of `h`.
        unsafe {
            assert_eq!((*al).start % 64, 0);
            assert_eq!((*al).npages, 4);
            check_totals(&h);
            h.free(big, &SET);
            h.free(al, &SET);
        }
        check_totals(&h);
    }

    #[test]
    fn release_accounting() {
        let mut h = heap();
        let a = h.alloc(200, &SET);
        // SAFETY: span of `h`.
        unsafe { h.free(a, &SET) };
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
        let b = h.alloc(10, &SET);
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
            h.free(b, &SET);
        }
        check_totals(&h);
    }

    #[test]
    fn the_dirty_cap_releases_a_dropped_block_and_keeps_one_taken_back() {
        let set = Settings::new();
        let mut h = heap();
        // 5000 pages (39 MiB): more free memory than the 32 MiB floor.
        let n = 5000;
        let a = h.alloc(n, &set);
        assert!(!a.is_null());
        // SAFETY: span of `h`.
        unsafe { h.free(a, &set) };
        let first = h.stats();
        assert!(
            first.unmapped_bytes >= 4096 << PAGE_SHIFT,
            "a dropped block past the cap goes back at once: {first:?}"
        );
        // Taken back: the released pages fault in again, and the cap rises
        // past what the program keeps taking (released pages count twice).
        let b = h.alloc(n, &set);
        assert!(!b.is_null());
        assert_eq!(h.stats().reserve_count, first.reserve_count, "no growth");
        // Some other free pages beside it, as a real heap has.
        let c = h.alloc(200, &set);
        assert!(!c.is_null());
        // SAFETY: spans of `h`.
        unsafe {
            h.free(c, &set);
            h.free(b, &set);
        }
        let second = h.stats();
        assert_eq!(
            second.decommit_count, first.decommit_count,
            "a block the program takes back is kept the next time: {second:?}"
        );
        check_totals(&h);
    }

    #[test]
    fn idle_spans_are_released_after_one_epoch() {
        let mut h = heap();
        let a = h.alloc(20, &SET);
        let b = h.alloc(20, &SET);
        // SAFETY: span of `h`.
        unsafe { h.free(a, &SET) };
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
        unsafe { h.free(b, &SET) };
        assert_eq!(h.release_idle(), 0, "b was freed in this epoch");
        assert_eq!(h.stats().free_bytes, 20 << PAGE_SHIFT);
        assert_eq!(h.release_idle(), 20, "b is released one epoch later");
        assert_eq!(h.stats().free_bytes, 0);
        check_totals(&h);
    }

    #[test]
    fn grow_in_place_takes_free_released_and_uncarved_pages() {
        let mut h = heap();
        let a = h.alloc(10, &SET);
        let b = h.alloc(10, &SET);
        // SAFETY: spans of `h`.
        unsafe {
            assert!(!h.grow_in_place(a, 12), "the next span is in use");
            assert_eq!((*a).npages, 10);
            h.free(b, &SET);
            assert!(h.grow_in_place(a, 15), "into the free pages after it");
            assert_eq!((*a).npages, 15);
            assert_eq!(PAGEMAP.get((*a).end_page() - 1), a);
            check_totals(&h);
            // Released pages after it are committed and taken.
            h.release_at_least(usize::MAX);
            assert!(h.grow_in_place(a, 40));
            assert_eq!((*a).npages, 40);
            check_totals(&h);
            // Past the carved part of the region: carved on the way.
            let carved = h.stats().system_bytes;
            assert!(h.grow_in_place(a, 1000));
            assert_eq!((*a).npages, 1000);
            assert!(h.stats().system_bytes > carved);
            assert_eq!(h.stats().in_use_bytes, 1000 << PAGE_SHIFT);
            check_totals(&h);
            // Not past the region's end (64 MiB = 8192 pages).
            assert!(!h.grow_in_place(a, 9000));
            assert_eq!((*a).npages, 1000);
            h.free(a, &SET);
            assert_eq!(h.stats().in_use_bytes, 0);
            check_totals(&h);
        }
    }

    #[test]
    fn moved_span_comes_back_released_and_zero() {
        let mut h = heap();
        let a = h.alloc(30, &SET);
        // SAFETY: a span of `h`; its pages were never written.
        unsafe {
            h.free_moved(a);
            let s = h.stats();
            assert_eq!(s.in_use_bytes, 0);
            assert!(s.unmapped_bytes >= 30 << PAGE_SHIFT);
            check_totals(&h);
            let b = h.alloc(30, &SET);
            assert!((*b).zeroed, "a moved span's pages read as zero");
            h.free(b, &SET);
        }
    }
}
