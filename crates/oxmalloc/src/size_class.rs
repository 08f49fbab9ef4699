//! Size classes: request size → class, class → (object size, pages per span,
//! objects per batch).
//!
//! The table is computed at compile time by `const fn`s. Spacing: 8, then
//! every 16 bytes up to 128, then eight classes per power of two
//! (`2^⌊log2 s⌋ / 8` apart), which bounds internal waste at 12.5 %. A span of
//! a class grows page by page until what is left over after the last object is
//! at most 1/8 of the span and it holds at least 4 objects (or is 256 KiB). A batch (what moves between a thread cache and the
//! central lists at once) is `clamp(64 KiB / size, 2, 32)` objects.
//!
//! Class 0 means "not a small object": a whole span of pages.

/// log2 of the allocator's page.
pub const PAGE_SHIFT: usize = 13;
/// The allocator's page: spans are runs of these (8 KiB).
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;
/// The largest small object; bigger requests get whole spans.
pub const MAX_SMALL_SIZE: usize = 256 * 1024;
/// Alignment every object of 16 bytes or more gets.
pub const MIN_ALIGN: usize = 16;

const fn count_classes() -> usize {
    let mut n = 1; // class 0
    let mut s = 8;
    while s <= MAX_SMALL_SIZE {
        n += 1;
        s = next_size(s);
    }
    n
}

/// The class after `s` in the spacing described in the module docs.
const fn next_size(s: usize) -> usize {
    if s < 16 {
        16
    } else if s < 128 {
        s + 16
    } else {
        let log = usize::BITS as usize - 1 - s.leading_zeros() as usize;
        s + (1 << log) / 8
    }
}

/// Number of classes, including class 0.
pub const NUM_CLASSES: usize = count_classes();

/// What the engine knows about one size class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassInfo {
    /// Object size in bytes.
    pub size: usize,
    /// Pages in one span of this class.
    pub pages: usize,
    /// Objects moved at once between a thread cache and the central list.
    pub batch: usize,
    /// Objects a thread cache's first refill takes at least: a cache line's
    /// worth (at most a batch), so that threads starting together take
    /// neighbouring lines, not neighbouring objects of one line.
    pub first_refill: usize,
}

/// Bytes of a cache line.
const CACHE_LINE: usize = 64;

impl ClassInfo {
    /// Objects in one span.
    pub const fn objects_per_span(&self) -> usize {
        self.pages * PAGE_SIZE / self.size
    }
}

/// Objects a span should hold at least, so that large classes do not go to
/// the page heap for every object or two...
const MIN_OBJECTS_PER_SPAN: usize = 4;
/// ...unless the span would be larger than this.
const MAX_SPAN_FOR_MIN_OBJECTS: usize = 256 * 1024;

const fn pages_for(size: usize) -> usize {
    let mut pages = 1;
    loop {
        let bytes = pages * PAGE_SIZE;
        let enough = bytes / size >= MIN_OBJECTS_PER_SPAN || bytes >= MAX_SPAN_FOR_MIN_OBJECTS;
        if bytes >= size && (bytes % size) * 8 <= bytes && enough {
            return pages;
        }
        pages += 1;
    }
}

/// The largest batch of any class.
pub const MAX_BATCH: usize = 32;

const fn batch_for(size: usize) -> usize {
    let b = 64 * 1024 / size;
    if b < 2 {
        2
    } else if b > MAX_BATCH {
        MAX_BATCH
    } else {
        b
    }
}

pub(crate) const fn build_classes() -> [ClassInfo; NUM_CLASSES] {
    let mut t = [ClassInfo {
        size: 0,
        pages: 0,
        batch: 0,
        first_refill: 0,
    }; NUM_CLASSES];
    let mut i = 1;
    let mut s = 8;
    while i < NUM_CLASSES {
        let batch = batch_for(s);
        let line = CACHE_LINE.div_ceil(s);
        t[i] = ClassInfo {
            size: s,
            pages: pages_for(s),
            batch,
            first_refill: if line < batch { line } else { batch },
        };
        s = next_size(s);
        i += 1;
    }
    t
}

/// The class table, indexed by class.
pub static CLASSES: [ClassInfo; NUM_CLASSES] = build_classes();

const SMALL_LIMIT: usize = 1024;
/// Added to `size + 127` above [`SMALL_LIMIT`], so the coarse (128-byte)
/// indices follow the fine (8-byte) ones in one table: `(1025 + 127 +
/// LARGE_OFFSET) >> 7 == SMALL_LIMIT / 8 + 1`.
const LARGE_OFFSET: usize = 120 << 7;
const INDEX_LEN: usize = index_of(MAX_SMALL_SIZE) + 1;

/// Where a request of `size` (at most [`MAX_SMALL_SIZE`]) is in the class
/// index: 8-byte steps up to [`SMALL_LIMIT`], then 128-byte steps (as in
/// TCMalloc's `ClassIndex`). Branch-free.
#[inline(always)]
const fn index_of(size: usize) -> usize {
    if size <= SMALL_LIMIT {
        (size + 7) >> 3
    } else {
        (size + 127 + LARGE_OFFSET) >> 7
    }
}

const fn first_class_fitting(size: usize, t: &[ClassInfo; NUM_CLASSES]) -> u8 {
    let mut c = 1;
    while t[c].size < size {
        c += 1;
    }
    c as u8
}

const fn build_index() -> [u8; INDEX_LEN] {
    let t = build_classes();
    let mut idx = [0u8; INDEX_LEN];
    let mut i = 0;
    while i < INDEX_LEN {
        // The largest request that maps to entry `i`.
        let size = if i == 0 {
            1
        } else if i <= SMALL_LIMIT / 8 {
            i * 8
        } else {
            (i << 7) - LARGE_OFFSET
        };
        idx[i] = first_class_fitting(size, &t);
        i += 1;
    }
    idx
}

/// Request size → class, indexed by [`index_of`].
static CLASS_INDEX: [u8; INDEX_LEN] = build_index();

/// The class for a request of `size` bytes with alignment ≤ 16, or 0 if it is
/// larger than [`MAX_SMALL_SIZE`].
///
/// Every class boundary above 1024 is a multiple of 128, so the coarse
/// index is exact there.
#[inline(always)]
pub fn class_of(size: usize) -> usize {
    if size <= MAX_SMALL_SIZE {
        // SAFETY: `index_of` grows with `size`, so for `size <=
        // MAX_SMALL_SIZE` it is at most `index_of(MAX_SMALL_SIZE) < INDEX_LEN`.
        let c = unsafe { *CLASS_INDEX.get_unchecked(index_of(size)) as usize };
        // SAFETY: every size up to MAX_SMALL_SIZE has a class, never 0 (the
        // test `lookup_is_smallest_fitting_class` checks each one); telling
        // the compiler lets callers skip their `c != 0` test on this path.
        unsafe { core::hint::assert_unchecked(c != 0) };
        c
    } else {
        0
    }
}

/// The class for a request with any power-of-two alignment, or 0 when the
/// request needs a whole span (too large, or aligned beyond what a class
/// guarantees).
///
/// A class whose object size is a multiple of `align` gives `align`-aligned
/// objects as long as `align` divides the page size, because spans start on
/// page boundaries.
#[inline(always)]
pub fn class_for(size: usize, align: usize) -> usize {
    // The hardened build keeps a canary in each object's last word, after
    // at least one byte of the program's (so that an object holds a free
    // list's link and its canary apart).
    let size = match crate::hardened::CANARY {
        0 => size,
        canary => size.max(1).saturating_add(canary),
    };
    if align <= 8 {
        // Every class is a multiple of 8 (and size 0 maps to the smallest).
        return class_of(size);
    }
    if align <= MIN_ALIGN {
        return class_of(size.max(align));
    }
    class_for_aligned(size, align)
}

#[inline(never)]
fn class_for_aligned(size: usize, align: usize) -> usize {
    if align > PAGE_SIZE {
        return 0;
    }
    let mut c = class_of(size.max(align));
    while c != 0 && c < NUM_CLASSES {
        if CLASSES[c].size.is_multiple_of(align) {
            return c;
        }
        c += 1;
    }
    0
}

/// The bytes a request of `size` bytes aligned to `align` really gets: its
/// class's object size, or whole pages for a span; `None` when rounding up
/// overflows.
pub fn allocation_size(size: usize, align: usize) -> Option<usize> {
    match class_for(size, align) {
        0 => size.max(1).checked_next_multiple_of(PAGE_SIZE),
        c => Some(usable_size(c)),
    }
}

/// The bytes of an object of class `c` (non-zero) the program may use: its
/// size, less the hardened build's canary.
#[inline(always)]
pub fn usable_size(c: usize) -> usize {
    CLASSES[c].size - crate::hardened::CANARY
}

/// The object size of class `c` (non-zero).
#[inline(always)]
pub fn class_size(c: usize) -> usize {
    CLASSES[c].size
}

/// The object size of class `c`, without a bounds check (for the fast path).
///
/// # Safety
/// `c < NUM_CLASSES`.
#[inline(always)]
pub unsafe fn class_size_unchecked(c: usize) -> usize {
    debug_assert!(c < NUM_CLASSES);
    // SAFETY: `c < NUM_CLASSES` (caller).
    unsafe { CLASSES.get_unchecked(c).size }
}

const fn build_divisors() -> [u64; NUM_CLASSES] {
    let t = build_classes();
    let mut d = [0u64; NUM_CLASSES];
    let mut c = 1;
    while c < NUM_CLASSES {
        d[c] = 1 + u64::MAX / t[c].size as u64;
        c += 1;
    }
    d
}

/// Class → `1 + u64::MAX / size`: `n` is a multiple of the size exactly when
/// `n * d < d` in wrapping 64-bit arithmetic, for every 32-bit `n` (Lemire,
/// Kaser and Kurz, "Faster remainder by direct computation", 2019). 0 for
/// class 0, which no offset passes.
static DIVISORS: [u64; NUM_CLASSES] = build_divisors();

/// True when `offset` (bytes from the start of a span of class `c`, below
/// 2^32) is the start of an object: a multiple of the class's size. One
/// multiplication, for the free fast path.
///
/// # Safety
/// `c < NUM_CLASSES`.
#[inline(always)]
pub unsafe fn is_object_offset(c: usize, offset: usize) -> bool {
    // SAFETY: `c < NUM_CLASSES` (caller).
    let d = unsafe { *DIVISORS.get_unchecked(c) };
    (offset as u64).wrapping_mul(d) < d
}

/// The index of the object at `offset` (below 2^32) in a span of class `c`:
/// `offset / size` with one multiplication (the same constant gives the
/// quotient as the high half of the product, by the same paper).
///
/// # Safety
/// `c < NUM_CLASSES`, `c != 0`.
#[cfg(feature = "hardened")]
#[inline(always)]
pub unsafe fn object_index(c: usize, offset: usize) -> usize {
    // SAFETY: `c < NUM_CLASSES` (caller).
    let d = unsafe { *DIVISORS.get_unchecked(c) };
    ((d as u128 * offset as u128) >> 64) as usize
}

/// Worst-case internal waste of class `c`, in per-mille of the object size:
/// the smallest request that lands in `c` is one byte more than the class
/// below.
pub fn worst_waste_permille(c: usize) -> usize {
    let below = if c <= 1 { 0 } else { CLASSES[c - 1].size };
    let s = CLASSES[c].size;
    (s - (below + 1)) * 1000 / s
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::println;

    #[test]
    fn object_offsets_are_recognised() {
        for (c, info) in CLASSES.iter().enumerate().skip(1) {
            let span = info.pages * PAGE_SIZE;
            for off in 0..span {
                // SAFETY: `c < NUM_CLASSES`.
                let ok = unsafe { is_object_offset(c, off) };
                assert_eq!(ok, off % info.size == 0, "class {c} offset {off}");
            }
        }
        // SAFETY: class 0 is in range; it has no objects.
        assert!(!unsafe { is_object_offset(0, 0) });
    }

    #[test]
    fn print_table() {
        println!("class     size  pages  objs/span  batch  worst-waste");
        for (c, i) in CLASSES.iter().enumerate().skip(1) {
            println!(
                "{c:5} {:8} {:6} {:10} {:6} {:8}.{}%",
                i.size,
                i.pages,
                i.objects_per_span(),
                i.batch,
                worst_waste_permille(c) / 10,
                worst_waste_permille(c) % 10
            );
        }
        println!("{} classes", NUM_CLASSES - 1);
    }

    #[test]
    fn invariants() {
        for c in 1..NUM_CLASSES {
            let i = CLASSES[c];
            assert!(i.size > CLASSES[c - 1].size, "sizes increase");
            if i.size >= 16 {
                assert_eq!(i.size % 16, 0, "class {c} keeps 16-byte alignment");
            }
            if i.size > 128 {
                assert!(worst_waste_permille(c) <= 125, "class {c} waste");
            }
            let span = i.pages * PAGE_SIZE;
            assert!(span >= i.size);
            assert!((span % i.size) * 8 <= span, "class {c} span leftover");
            assert!((2..=32).contains(&i.batch));
        }
        assert_eq!(CLASSES[NUM_CLASSES - 1].size, MAX_SMALL_SIZE);
        const { assert!(NUM_CLASSES <= 256, "classes fit in a byte") };
    }

    #[test]
    fn lookup_is_smallest_fitting_class() {
        for size in 1..=MAX_SMALL_SIZE {
            let c = class_of(size);
            assert!(CLASSES[c].size >= size);
            assert!(c == 1 || CLASSES[c - 1].size < size, "size {size}");
        }
        assert_eq!(class_of(MAX_SMALL_SIZE + 1), 0);
        assert_eq!(class_of(0), 1);
    }

    #[test]
    fn aligned_lookup() {
        let mut align = 1;
        while align <= 2 * PAGE_SIZE {
            for size in [1usize, 7, 100, 1000, 5000, 70_000, 300_000] {
                let c = class_for(size, align);
                if c != 0 {
                    assert!(CLASSES[c].size >= size);
                    assert_eq!(CLASSES[c].size % align.max(1), 0);
                    assert!(align <= PAGE_SIZE);
                }
            }
            align *= 2;
        }
    }
}
