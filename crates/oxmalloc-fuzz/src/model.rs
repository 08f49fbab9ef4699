//! The model: every live block with its layout, owner and pattern seed, and
//! the checks made when a block appears (alignment, size, non-overlap with
//! every live block) and when it goes (its pattern is intact).

use crate::pattern;
use std::collections::BTreeMap;

/// Who a block belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The global heap.
    Global,
    /// The heap in this slot of the input.
    Heap(usize),
}

/// A live block.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    /// Its address.
    pub ptr: *mut u8,
    /// The size it was requested with.
    pub size: usize,
    /// The alignment it was requested with.
    pub align: usize,
    /// What `oxmalloc::allocated_size` said.
    pub usable: usize,
    /// The seed of its pattern.
    pub seed: u64,
    /// Its heap.
    pub owner: Owner,
}

impl Block {
    /// The range the block covers: at least one byte, at least its usable
    /// size (a program may use all of it).
    fn range(&self) -> (usize, usize) {
        let a = self.ptr as usize;
        (a, a + self.usable.max(self.size).max(1))
    }
}

/// The live blocks.
#[derive(Default)]
pub struct Model {
    blocks: Vec<Block>,
    /// Start → end of every live block's range.
    ranges: BTreeMap<usize, usize>,
    bytes: usize,
}

impl Model {
    /// Live blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether no block is live.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Requested bytes of the live blocks.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The block `pick` chooses (modulo the count); `None` when none is live.
    pub fn pick(&self, pick: u16) -> Option<usize> {
        (!self.blocks.is_empty()).then(|| pick as usize % self.blocks.len())
    }

    /// Block `i`.
    pub fn get(&self, i: usize) -> Block {
        self.blocks[i]
    }

    /// Indices of the blocks of `owner`.
    pub fn of(&self, owner: Owner) -> Vec<usize> {
        (0..self.blocks.len())
            .filter(|&i| self.blocks[i].owner == owner)
            .collect()
    }

    /// Adds a block fresh from the allocator after checking it: aligned,
    /// `allocated_size` covers the request, owned by oxmalloc, overlapping no
    /// live block. Then writes its pattern over `kept..size` (a `realloc`
    /// kept the first `kept` bytes), after checking that those bytes read as
    /// zero when `zeroed`.
    ///
    /// # Safety
    /// `ptr[..size]` was just handed out by oxmalloc.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn add(
        &mut self,
        ptr: *mut u8,
        size: usize,
        align: usize,
        seed: u64,
        owner: Owner,
        zeroed: bool,
        kept: usize,
    ) {
        let addr = ptr as usize;
        assert!(!ptr.is_null(), "null block");
        assert_eq!(
            addr % align,
            0,
            "{ptr:p} ({size} bytes) not aligned to {align}"
        );
        let usable = oxmalloc::allocated_size(ptr)
            .unwrap_or_else(|| panic!("allocated_size({ptr:p}) is None for a live block"));
        assert!(
            usable >= size,
            "{ptr:p}: allocated_size {usable} < requested {size}"
        );
        if size > 0 {
            // SAFETY: an address inside the block (only compared).
            let last = unsafe { ptr.add(size - 1) };
            assert!(
                matches!(oxmalloc::ownership(last), oxmalloc::Ownership::Owned(_)),
                "{ptr:p}: its last byte is not owned by oxmalloc"
            );
        }
        let b = Block {
            ptr,
            size,
            align,
            usable,
            seed,
            owner,
        };
        let (start, end) = b.range();
        if let Some((&s, &e)) = self.ranges.range(..end).next_back() {
            assert!(
                e <= start,
                "{ptr:p}..{end:#x} ({size} bytes) overlaps the live block {s:#x}..{e:#x}"
            );
        }
        if zeroed {
            // SAFETY: `ptr[..size]` is the fresh block (caller).
            if let Some(off) = unsafe { pattern::first_nonzero(ptr.add(kept), size - kept) } {
                panic!(
                    "{ptr:p}: zeroed block has a non-zero byte at offset {}",
                    kept + off
                );
            }
        }
        // SAFETY: as above.
        unsafe { pattern::fill(ptr, kept, size, seed) };
        self.ranges.insert(start, end);
        self.bytes += size;
        self.blocks.push(b);
    }

    /// Checks block `i`'s pattern over its first `len` bytes.
    pub fn check(&self, i: usize, len: usize, what: &str) {
        let b = &self.blocks[i];
        // SAFETY: a live block of at least `len` bytes.
        if let Some(off) = unsafe { pattern::first_mismatch(b.ptr, len.min(b.size), b.seed) } {
            panic!(
                "{what}: block {:p} ({} bytes) changed at offset {off}",
                b.ptr, b.size
            );
        }
    }

    /// Checks every live block's pattern.
    pub fn check_all(&self, what: &str) {
        for i in 0..self.blocks.len() {
            self.check(i, usize::MAX, what);
        }
    }

    /// Removes block `i` from the model (callers check its pattern first
    /// when it is still readable).
    pub fn remove(&mut self, i: usize) -> Block {
        let b = self.blocks.swap_remove(i);
        let start = b.range().0;
        self.ranges.remove(&start);
        self.bytes -= b.size;
        b
    }
}
