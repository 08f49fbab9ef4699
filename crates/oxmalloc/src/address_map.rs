//! The address map: every range of memory oxmalloc manages (injected regions
//! and the chunks system allocators gave), sorted by address, each with its
//! region.
//!
//! It answers "which region holds this address" and "does this range overlap
//! anything managed" in O(log n) of the number of ranges, whatever their
//! sizes: a 1 TiB region is one entry. Adjacent chunks of the same region are
//! kept as one entry, so a heap that grows by many small chunks (mmap places
//! them next to each other) stays short. The table lives in the metadata
//! arena and doubles when full; the caller serialises every access (the
//! region table's lock).

use crate::meta;
use core::ptr;

/// One managed range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// The region the range belongs to.
    pub region: u16,
}

/// The sorted table.
pub(crate) struct AddressMap {
    /// `len` entries sorted by `start`, not overlapping, in arena memory of
    /// `cap` entries (null while `cap` is 0).
    entries: *mut Entry,
    len: usize,
    cap: usize,
}

// SAFETY: the table is only used under the lock of whoever owns it.
unsafe impl Send for AddressMap {}

/// The range overlaps one already managed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Overlap(pub Entry);

impl AddressMap {
    /// An empty map.
    pub(crate) const fn new() -> Self {
        Self {
            entries: ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }

    fn slice(&self) -> &[Entry] {
        if self.cap == 0 {
            return &[];
        }
        // SAFETY: `entries` holds `len` initialised entries.
        unsafe { core::slice::from_raw_parts(self.entries, self.len) }
    }

    /// Index of the first entry whose end is above `addr`.
    fn first_ending_after(&self, addr: usize) -> usize {
        self.slice().partition_point(|e| e.end <= addr)
    }

    /// The entry holding `addr`.
    pub(crate) fn find(&self, addr: usize) -> Option<Entry> {
        let i = self.first_ending_after(addr);
        self.slice().get(i).copied().filter(|e| e.start <= addr)
    }

    /// The first entry overlapping `[start, end)`.
    pub(crate) fn overlapping(&self, start: usize, end: usize) -> Option<Entry> {
        let i = self.first_ending_after(start);
        self.slice().get(i).copied().filter(|e| e.start < end)
    }

    /// Adds `[start, end)` for `region`, merging it with adjacent entries of
    /// the same region. False when metadata ran out; `Err` when it overlaps.
    pub(crate) fn insert(
        &mut self,
        start: usize,
        end: usize,
        region: u16,
    ) -> Result<bool, Overlap> {
        if let Some(e) = self.overlapping(start, end) {
            return Err(Overlap(e));
        }
        let i = self.first_ending_after(start);
        let merge_left =
            i > 0 && self.slice()[i - 1].end == start && self.slice()[i - 1].region == region;
        let merge_right =
            i < self.len && self.slice()[i].start == end && self.slice()[i].region == region;
        // SAFETY: indices below `len` are initialised entries.
        unsafe {
            match (merge_left, merge_right) {
                (true, true) => {
                    (*self.entries.add(i - 1)).end = (*self.entries.add(i)).end;
                    self.remove_at(i);
                }
                (true, false) => (*self.entries.add(i - 1)).end = end,
                (false, true) => (*self.entries.add(i)).start = start,
                (false, false) => {
                    if self.len == self.cap && !self.grow() {
                        return Ok(false);
                    }
                    let p = self.entries.add(i);
                    ptr::copy(p, p.add(1), self.len - i);
                    p.write(Entry { start, end, region });
                    self.len += 1;
                }
            }
        }
        Ok(true)
    }

    /// Removes every entry of `region`.
    pub(crate) fn remove_region(&mut self, region: u16) {
        let mut i = 0;
        while i < self.len {
            if self.slice()[i].region == region {
                self.remove_at(i);
            } else {
                i += 1;
            }
        }
    }

    /// Calls `f` for every entry of `region`, in address order.
    pub(crate) fn for_each_of(&self, region: u16, mut f: impl FnMut(Entry)) {
        for e in self.slice().iter().filter(|e| e.region == region) {
            f(*e);
        }
    }

    /// Gives every entry of region `from` to region `to`.
    pub(crate) fn retag(&mut self, from: u16, to: u16) {
        for i in 0..self.len {
            // SAFETY: an initialised entry.
            let e = unsafe { &mut *self.entries.add(i) };
            if e.region == from {
                e.region = to;
            }
        }
    }

    fn remove_at(&mut self, i: usize) {
        // SAFETY: `i < len`; the tail moves down by one.
        unsafe {
            let p = self.entries.add(i);
            ptr::copy(p.add(1), p, self.len - i - 1);
        }
        self.len -= 1;
    }

    /// Doubles the capacity. False when metadata ran out.
    fn grow(&mut self) -> bool {
        let cap = (self.cap * 2).max(256);
        let Some(p) = meta::alloc(cap * core::mem::size_of::<Entry>(), 8) else {
            return false;
        };
        let p = p.as_ptr().cast::<Entry>();
        if self.len > 0 {
            // SAFETY: the new array holds `cap > len` entries.
            unsafe { ptr::copy_nonoverlapping(self.entries, p, self.len) };
        }
        // The old array stays in the arena (at most as large as the new one).
        self.entries = p;
        self.cap = cap;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_merge_remove() {
        let mut m = AddressMap::new();
        assert_eq!(m.insert(100, 200, 1), Ok(true));
        assert_eq!(m.insert(300, 400, 2), Ok(true));
        assert_eq!(m.insert(200, 300, 1), Ok(true), "merges left");
        assert_eq!(m.slice().len(), 2);
        assert_eq!(m.find(250).map(|e| e.region), Some(1));
        assert_eq!(m.find(300).map(|e| e.region), Some(2));
        assert_eq!(m.find(400), None);
        assert_eq!(m.find(99), None);
        assert!(m.insert(150, 160, 3).is_err());
        assert!(m.insert(50, 101, 3).is_err());
        assert!(m.insert(399, 500, 3).is_err());
        assert_eq!(m.insert(50, 100, 1), Ok(true), "merges right");
        assert_eq!(m.find(50).unwrap().start, 50);
        for k in 0..1000 {
            let a = 1_000_000 + k * 10;
            assert_eq!(m.insert(a, a + 5, 9), Ok(true));
        }
        assert_eq!(m.find(1_000_000 + 5_000 + 3).map(|e| e.region), Some(9));
        assert_eq!(m.find(1_000_000 + 5_000 + 7), None);
        m.remove_region(9);
        assert_eq!(m.slice().len(), 2);
        m.retag(1, 4);
        assert_eq!(m.find(120).map(|e| e.region), Some(4));
        let mut n = 0;
        m.for_each_of(4, |_| n += 1);
        assert_eq!(n, 1);
    }
}
