//! Model-based property test of `OxMalloc` through the `GlobalAlloc` trait.
//!
//! Random sequences of `alloc` / `alloc_zeroed` / `realloc` / `dealloc`, with
//! sizes skewed toward small objects and power-of-two alignments from 1 byte
//! to 64 KiB, run against a model of the live blocks. Checked after every
//! step: the layout is honoured (alignment, 16-byte alignment from 16 bytes
//! up), no block overlaps a live one, `usable_size` covers the request, the
//! pattern written into a block survives until it is freed and survives
//! `realloc` up to the smaller size, and `alloc_zeroed` memory reads as zero.
//! After each case frees everything, `stats().allocated_bytes` is back to
//! its value before the case.
//!
//! The test binary keeps the system allocator as its global allocator, so the
//! only oxmalloc calls in this process are the ones made here; the global
//! figures are compared in one test at a time (see `SERIAL`).

use oxmalloc::OxMalloc;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Serialises the tests of this binary that compare global figures.
static SERIAL: Mutex<()> = Mutex::new(());

const MIB: usize = 1 << 20;
/// Most bytes the model keeps live at once (keeps RSS modest).
const LIVE_CAP: usize = 48 * MIB;

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        size: usize,
        align_log: u32,
        zeroed: bool,
    },
    Realloc {
        pick: usize,
        size: usize,
    },
    Dealloc {
        pick: usize,
    },
}

/// Mostly under 1 KiB, some 1 KiB ..= 256 KiB, a few up to 2 MiB.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        16 => 0usize..1024,
        4 => 1024usize..=256 * 1024,
        1 => (256 * 1024 + 1)..=2 * MIB,
    ]
}

/// log2 of the alignment: mostly ≤ 16 bytes, some up to a page, a few up to
/// 64 KiB.
fn align_log() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..=4, 3 => 5u32..=13, 1 => 14u32..=16]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (size(), align_log(), any::<bool>())
            .prop_map(|(size, align_log, zeroed)| Op::Alloc { size, align_log, zeroed }),
        2 => (any::<usize>(), size()).prop_map(|(pick, size)| Op::Realloc { pick, size }),
        3 => any::<usize>().prop_map(|pick| Op::Dealloc { pick }),
    ]
}

struct Block {
    ptr: *mut u8,
    layout: Layout,
    seed: u8,
}

/// The byte expected at offset `i` of a block stamped with `seed`.
#[inline(always)]
fn pat(seed: u8, i: usize) -> u8 {
    seed ^ (i as u8) ^ ((i >> 8) as u8).wrapping_mul(31)
}

/// # Safety
/// `p` is valid for `len` bytes of writes.
unsafe fn fill(p: *mut u8, len: usize, seed: u8) {
    // SAFETY: forwarded from the caller.
    let s = unsafe { std::slice::from_raw_parts_mut(p, len) };
    for (i, b) in s.iter_mut().enumerate() {
        *b = pat(seed, i);
    }
}

/// The first offset below `len` that does not hold the pattern.
///
/// # Safety
/// `p` is valid for `len` bytes of reads.
unsafe fn first_mismatch(p: *const u8, len: usize, seed: u8) -> Option<usize> {
    // SAFETY: forwarded from the caller.
    let s = unsafe { std::slice::from_raw_parts(p, len) };
    s.iter().enumerate().position(|(i, &b)| b != pat(seed, i))
}

struct Model {
    blocks: Vec<Block>,
    /// Start → end (exclusive) of every live block (size 0 counts as 1 byte).
    ranges: BTreeMap<usize, usize>,
    live: usize,
    next_seed: u8,
}

impl Model {
    fn new() -> Self {
        Self {
            blocks: Vec::new(),
            ranges: BTreeMap::new(),
            live: 0,
            next_seed: 1,
        }
    }

    fn seed(&mut self) -> u8 {
        self.next_seed = self.next_seed.wrapping_add(37);
        self.next_seed
    }

    /// Checks a pointer just returned for `layout` and records it as live.
    fn admit(&mut self, p: *mut u8, layout: Layout, what: &str) -> Result<(), TestCaseError> {
        prop_assert!(!p.is_null(), "{what} {layout:?} returned null");
        let a = p as usize;
        prop_assert_eq!(
            a % layout.align(),
            0,
            "{} {:?} misaligned: {:p}",
            what,
            layout,
            p
        );
        if layout.size() >= 16 {
            prop_assert_eq!(a % 16, 0, "{} {:?} not 16-aligned: {:p}", what, layout, p);
        }
        let usable = oxmalloc::raw::usable_size(p);
        prop_assert!(
            usable.is_some_and(|u| u >= layout.size()),
            "{what} {layout:?}: usable_size {usable:?} at {p:p}"
        );
        let end = a + layout.size().max(1);
        if let Some((&s, &e)) = self.ranges.range(..end).next_back() {
            prop_assert!(
                e <= a,
                "{what} {layout:?} at {a:#x}..{end:#x} overlaps live block {s:#x}..{e:#x}"
            );
        }
        self.ranges.insert(a, end);
        self.live += layout.size();
        Ok(())
    }

    fn forget(&mut self, b: &Block) {
        self.ranges.remove(&(b.ptr as usize));
        self.live -= b.layout.size();
    }

    fn check(b: &Block, upto: usize, what: &str) -> Result<(), TestCaseError> {
        // SAFETY: a live block of at least `layout.size()` bytes.
        let bad = unsafe { first_mismatch(b.ptr, upto.min(b.layout.size()), b.seed) };
        prop_assert!(
            bad.is_none(),
            "{what}: block {:p} {:?} corrupted at offset {:?}",
            b.ptr,
            b.layout,
            bad
        );
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Alloc {
                size,
                align_log,
                zeroed,
            } => {
                if self.live + size > LIVE_CAP {
                    return self.dealloc(0);
                }
                let layout = Layout::from_size_align(size, 1 << align_log).unwrap();
                // SAFETY: a valid layout (size 0 is supported by oxmalloc).
                let p = unsafe {
                    if zeroed {
                        OxMalloc.alloc_zeroed(layout)
                    } else {
                        OxMalloc.alloc(layout)
                    }
                };
                self.admit(p, layout, if zeroed { "alloc_zeroed" } else { "alloc" })?;
                if zeroed {
                    // SAFETY: a fresh block of `size` bytes.
                    let s = unsafe { std::slice::from_raw_parts(p, size) };
                    let nz = s.iter().position(|&b| b != 0);
                    prop_assert!(
                        nz.is_none(),
                        "alloc_zeroed {layout:?} at {p:p}: non-zero byte at {nz:?}"
                    );
                }
                let seed = self.seed();
                // SAFETY: a fresh block of `size` bytes.
                unsafe { fill(p, size, seed) };
                self.blocks.push(Block {
                    ptr: p,
                    layout,
                    seed,
                });
            }
            Op::Realloc { pick, size } => {
                if self.blocks.is_empty() {
                    return Ok(());
                }
                let i = pick % self.blocks.len();
                let old = self.blocks.swap_remove(i);
                if self.live - old.layout.size() + size > LIVE_CAP {
                    self.blocks.push(old);
                    return self.dealloc(pick);
                }
                Self::check(&old, usize::MAX, "before realloc")?;
                self.forget(&old);
                let layout = Layout::from_size_align(size, old.layout.align()).unwrap();
                // SAFETY: `old` is live with `old.layout`; the new size
                // rounded to the alignment does not overflow.
                let p = unsafe { OxMalloc.realloc(old.ptr, old.layout, size) };
                self.admit(p, layout, "realloc")?;
                let moved = Block {
                    ptr: p,
                    layout,
                    seed: old.seed,
                };
                Self::check(&moved, old.layout.size(), "after realloc")?;
                let seed = self.seed();
                // SAFETY: a live block of `size` bytes.
                unsafe { fill(p, size, seed) };
                self.blocks.push(Block { seed, ..moved });
            }
            Op::Dealloc { pick } => self.dealloc(pick)?,
        }
        Ok(())
    }

    fn dealloc(&mut self, pick: usize) -> Result<(), TestCaseError> {
        if self.blocks.is_empty() {
            return Ok(());
        }
        let b = self.blocks.swap_remove(pick % self.blocks.len());
        Self::check(&b, usize::MAX, "before dealloc")?;
        self.forget(&b);
        // SAFETY: `b` is live with this layout.
        unsafe { OxMalloc.dealloc(b.ptr, b.layout) };
        Ok(())
    }

    fn free_all(&mut self) -> Result<(), TestCaseError> {
        while !self.blocks.is_empty() {
            self.dealloc(0)?;
        }
        prop_assert_eq!(self.live, 0);
        prop_assert!(self.ranges.is_empty());
        Ok(())
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // A failed case leaves blocks behind; free them so the next case
        // (shrinking) starts from a clean heap. Not checked.
        for b in self.blocks.drain(..) {
            // SAFETY: live with this layout.
            unsafe { OxMalloc.dealloc(b.ptr, b.layout) };
        }
    }
}

/// The page heap's bytes are all accounted for: handed out, cached at some
/// level, free or released.
fn check_identity(s: &oxmalloc::Stats) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        s.heap_size,
        s.allocated_bytes
            + s.central_cache_free_bytes
            + s.transfer_cache_free_bytes
            + s.thread_cache_free_bytes
            + s.pageheap_free_bytes
            + s.pageheap_unmapped_bytes,
        "statistics do not add up: {:?}",
        s
    );
    Ok(())
}

fn run_case(ops: &[Op]) -> Result<(), TestCaseError> {
    let before = oxmalloc::stats();
    let mut m = Model::new();
    for op in ops {
        m.step(op)?;
    }
    // At class granularity, the live blocks are exactly what the heap counts
    // as allocated on top of where the case started (a small object of the
    // hardened build also holds its 8-byte canary).
    let canary = if cfg!(feature = "hardened") { 8 } else { 0 };
    let held: usize = m
        .blocks
        .iter()
        .map(|b| {
            let usable = oxmalloc::raw::usable_size(b.ptr).unwrap();
            let small = oxmalloc::size_class::class_for(b.layout.size(), b.layout.align()) != 0;
            usable + if small { canary } else { 0 }
        })
        .sum();
    let mid = oxmalloc::stats();
    check_identity(&mid)?;
    prop_assert_eq!(
        mid.allocated_bytes,
        before.allocated_bytes + held,
        "allocated_bytes does not match the live blocks ({} of them)",
        m.blocks.len()
    );
    m.free_all()?;
    let after = oxmalloc::stats();
    check_identity(&before)?;
    check_identity(&after)?;
    prop_assert_eq!(
        after.allocated_bytes,
        before.allocated_bytes,
        "allocated_bytes not back after freeing everything: before {:?} after {:?}",
        before,
        after
    );
    Ok(())
}

#[test]
fn random_ops_against_model() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut runner = TestRunner::new(Config {
        cases: 160,
        failure_persistence: None,
        ..Config::default()
    });
    let r = runner.run(&prop::collection::vec(op(), 1..200), |ops| run_case(&ops));
    if let Err(e) = r {
        panic!("{e}");
    }
}
