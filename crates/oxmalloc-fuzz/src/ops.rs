//! The operations a fuzz input is decoded into (with `arbitrary`: every
//! byte string is a valid sequence, and mutating the bytes mutates the
//! operations).

use arbitrary::{Arbitrary, Result, Unstructured};

/// Most operations one input runs.
pub const MAX_OPS: usize = 4000;

/// A request size: mostly small (the size classes), some medium, a few past
/// the largest class (256 KiB) up to 2 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub usize);

impl<'a> Arbitrary<'a> for Size {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let n = match u.int_in_range(0u8..=15)? {
            0..=10 => u.int_in_range(0usize..=1024)?,
            11..=13 => u.int_in_range(1025usize..=64 << 10)?,
            14 => u.int_in_range((64 << 10) + 1..=256 << 10)?,
            _ => u.int_in_range((256 << 10) + 1..=2 << 20)?,
        };
        Ok(Size(n))
    }
}

/// An alignment: mostly 1 to 16 bytes, some up to a page, a few up to
/// 64 KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Align(pub usize);

impl<'a> Arbitrary<'a> for Align {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let log = match u.int_in_range(0u8..=11)? {
            0..=7 => u.int_in_range(0u32..=4)?,
            8..=10 => u.int_in_range(5u32..=13)?,
            _ => u.int_in_range(14u32..=16)?,
        };
        Ok(Align(1 << log))
    }
}

/// The length of a fresh mapping for a region: 128 KiB to 8 MiB, in steps
/// of 128 KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionLen(pub usize);

impl<'a> Arbitrary<'a> for RegionLen {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(RegionLen(u.int_in_range(1usize..=64)? << 17))
    }
}

/// One step of a fuzz input. `pick` chooses a live block (modulo their
/// number), `heap` one of the input's heap slots (modulo their number).
#[derive(Arbitrary, Clone, Debug)]
pub enum Op {
    /// `OxMalloc::alloc` (or `alloc_zeroed`).
    Alloc {
        /// Bytes.
        size: Size,
        /// Alignment.
        align: Align,
        /// Through `alloc_zeroed`.
        zeroed: bool,
    },
    /// Resizes a live block: `OxMalloc::realloc` for a block of the global
    /// heap; for a heap's block `Allocator::grow` / `shrink` of its heap, or
    /// `OxMalloc::realloc` when `via_global`.
    Realloc {
        /// Which block.
        pick: u16,
        /// The new size.
        size: Size,
        /// A heap's block through the global entry point.
        via_global: bool,
    },
    /// Frees a live block: through the global entry point, or through its
    /// heap's `Allocator::deallocate` unless `via_global`.
    Free {
        /// Which block.
        pick: u16,
        /// A heap's block through the global entry point.
        via_global: bool,
    },
    /// Hands a live block to the second thread, which frees it.
    RemoteFree {
        /// Which block.
        pick: u16,
    },
    /// The second thread allocates a block and hands it over.
    RemoteAlloc {
        /// Bytes.
        size: Size,
        /// Alignment.
        align: Align,
    },
    /// Injects a fresh mapping as a non-exclusive region (it feeds the
    /// global heap for the rest of the process: at most
    /// [`crate::mapping::MAX_SHARED_INJECTIONS`] per process).
    Inject {
        /// Its length.
        len: RegionLen,
    },
    /// A heap bound to a fresh exclusive region, in a free heap slot.
    HeapNew {
        /// The region's length.
        len: RegionLen,
    },
    /// Another fresh exclusive region for a heap.
    HeapAddRegion {
        /// Which heap.
        heap: u8,
        /// The region's length.
        len: RegionLen,
    },
    /// `Allocator::allocate` (or `allocate_zeroed`) of `&Heap`; null is
    /// allowed (the heap's regions may be full).
    HeapAlloc {
        /// Which heap.
        heap: u8,
        /// Bytes.
        size: Size,
        /// Alignment.
        align: Align,
        /// Through `allocate_zeroed`.
        zeroed: bool,
    },
    /// `Heap::retire`: refused while the heap has live blocks, else the
    /// heap is gone and its mappings are unmapped.
    HeapRetire {
        /// Which heap.
        heap: u8,
    },
    /// `Heap::destroy`: every block of the heap is gone at once.
    HeapDestroy {
        /// Which heap.
        heap: u8,
    },
    /// `release_free_memory`, or `mark_thread_idle` when `idle`.
    Release {
        /// `mark_thread_idle` instead.
        idle: bool,
    },
}

/// The operations `data` decodes into (at most [`MAX_OPS`]).
pub fn decode(data: &[u8]) -> Vec<Op> {
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops
}
