//! Runs decoded operations against oxmalloc and the model, then frees
//! everything, retires every heap and checks that the global heap's
//! allocated bytes are back where they were.

use crate::mapping::{self, Mapping};
use crate::model::{Model, Owner};
use crate::ops::{Align, Op, RegionLen, Size};
use crate::worker;
use allocator_api2::alloc::Allocator;
use oxmalloc::{inject, Heap, OxMalloc, RegionOptions};
use std::alloc::{GlobalAlloc, Layout};
use std::ptr::NonNull;

/// Heaps one input has at most at once.
const HEAP_SLOTS: usize = 4;
/// Regions one heap gets at most from an input.
const REGIONS_PER_HEAP: usize = 8;
/// Requested bytes live at once at most (keeps RSS modest).
const LIVE_CAP: usize = 32 << 20;
/// Blocks live at once at most.
const BLOCK_CAP: usize = 20_000;

struct HeapSlot {
    heap: Heap,
    mappings: Vec<Mapping>,
}

impl HeapSlot {
    fn contains(&self, p: usize, len: usize) -> bool {
        self.mappings.iter().any(|m| m.contains(p, len.max(1)))
    }
}

/// One input's run.
struct Run {
    model: Model,
    heaps: [Option<HeapSlot>; HEAP_SLOTS],
    seed: u64,
    allocated_before: usize,
}

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).expect("valid layout")
}

/// One run at a time per process: each compares the global heap's figures
/// before and after.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `ops` and checks everything (panics on the first discrepancy).
pub fn run_ops(ops: &[Op]) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut r = Run {
        model: Model::default(),
        heaps: Default::default(),
        seed: 0,
        allocated_before: oxmalloc::stats().allocated_bytes,
    };
    for op in ops {
        r.step(op);
    }
    r.finish();
}

impl Run {
    fn next_seed(&mut self) -> u64 {
        self.seed += 1;
        self.seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn room_for(&self, size: usize) -> bool {
        self.model.bytes() + size <= LIVE_CAP && self.model.len() < BLOCK_CAP
    }

    /// The owner of a block at `p`: the heap whose mappings hold it, else the
    /// global heap (which must not hold blocks in a heap's mapping).
    fn owner_of(&self, p: *mut u8, size: usize) -> Owner {
        for (i, h) in self.heaps.iter().enumerate() {
            if h.as_ref().is_some_and(|h| h.contains(p as usize, size)) {
                return Owner::Heap(i);
            }
        }
        Owner::Global
    }

    fn heap(&self, i: u8) -> Option<usize> {
        let i = i as usize % HEAP_SLOTS;
        self.heaps[i].is_some().then_some(i)
    }

    fn add_global(&mut self, p: *mut u8, size: usize, align: usize, zeroed: bool) {
        assert!(
            !p.is_null(),
            "global allocation of {size} bytes (align {align}) failed"
        );
        assert_eq!(
            self.owner_of(p, size),
            Owner::Global,
            "{p:p}: a global block inside a heap's region"
        );
        let seed = self.next_seed();
        // SAFETY: fresh from oxmalloc with that size.
        unsafe {
            self.model
                .add(p, size, align, seed, Owner::Global, zeroed, 0)
        };
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Alloc {
                size: Size(size),
                align: Align(align),
                zeroed,
            } => {
                let size = size.max(1); // GlobalAlloc takes no zero sizes
                if !self.room_for(size) {
                    return;
                }
                let l = layout(size, align);
                // SAFETY: a non-zero layout.
                let p = unsafe {
                    if zeroed {
                        OxMalloc.alloc_zeroed(l)
                    } else {
                        OxMalloc.alloc(l)
                    }
                };
                self.add_global(p, size, align, zeroed);
            }
            Op::Realloc {
                pick,
                size: Size(size),
                via_global,
            } => self.realloc(pick, size.max(1), via_global),
            Op::Free { pick, via_global } => {
                let Some(i) = self.model.pick(pick) else {
                    return;
                };
                self.model.check(i, usize::MAX, "free");
                let b = self.model.remove(i);
                let l = layout(b.size, b.align);
                match b.owner {
                    Owner::Heap(h) if !via_global => {
                        let heap = &self.heaps[h].as_ref().expect("live heap").heap;
                        // SAFETY: a live block of this heap with layout `l`.
                        unsafe { heap.deallocate(NonNull::new_unchecked(b.ptr), l) };
                    }
                    // SAFETY: a live block of oxmalloc's with layout `l`
                    // (any entry point frees a heap's block).
                    _ => unsafe { OxMalloc.dealloc(b.ptr, l) },
                }
            }
            Op::RemoteFree { pick } => {
                let Some(i) = self.model.pick(pick) else {
                    return;
                };
                self.model.check(i, usize::MAX, "remote free");
                let b = self.model.remove(i);
                // SAFETY: a live block with that layout, handed over.
                unsafe { worker::free(b.ptr, layout(b.size.max(1), b.align)) };
            }
            Op::RemoteAlloc {
                size: Size(size),
                align: Align(align),
            } => {
                let size = size.max(1);
                if !self.room_for(size) {
                    return;
                }
                let p = worker::alloc(layout(size, align));
                self.add_global(p, size, align, false);
            }
            Op::Inject {
                len: RegionLen(len),
            } => {
                if !mapping::take_shared_injection() {
                    return;
                }
                let m = Mapping::new(len).expect("mmap");
                let opts = RegionOptions::new().zeroed(true).label("fuzz");
                // SAFETY: a fresh mapping, handed over for good (`Mapping`
                // has no `Drop`: nothing unmaps it).
                unsafe { inject(m.start, m.len, opts) }.expect("inject a fresh mapping");
            }
            Op::HeapNew {
                len: RegionLen(len),
            } => {
                let Some(slot) = self.heaps.iter().position(Option::is_none) else {
                    return;
                };
                let (m, id) = exclusive_region(len);
                let heap = Heap::new_in(id).expect("Heap::new_in on a fresh exclusive region");
                self.heaps[slot] = Some(HeapSlot {
                    heap,
                    mappings: vec![m],
                });
            }
            Op::HeapAddRegion {
                heap,
                len: RegionLen(len),
            } => {
                let Some(h) = self.heap(heap) else { return };
                let slot = self.heaps[h].as_mut().expect("live heap");
                if slot.mappings.len() >= REGIONS_PER_HEAP {
                    return;
                }
                let (m, id) = exclusive_region(len);
                slot.heap.add_region(id).expect("Heap::add_region");
                slot.mappings.push(m);
            }
            Op::HeapAlloc {
                heap,
                size: Size(size),
                align: Align(align),
                zeroed,
            } => {
                let Some(h) = self.heap(heap) else { return };
                if !self.room_for(size) {
                    return;
                }
                let l = layout(size, align);
                let slot = self.heaps[h].as_ref().expect("live heap");
                let a = &slot.heap;
                let got = if zeroed {
                    a.allocate_zeroed(l)
                } else {
                    a.allocate(l)
                };
                let Ok(p) = got else {
                    return; // its regions are full: allowed
                };
                let p = p.as_ptr().cast::<u8>();
                assert!(
                    slot.contains(p as usize, size),
                    "{p:p} ({size} bytes) from heap {h} is outside its regions"
                );
                let seed = self.next_seed();
                // SAFETY: fresh from the heap with that size.
                unsafe {
                    self.model
                        .add(p, size, align, seed, Owner::Heap(h), zeroed, 0)
                };
            }
            Op::HeapRetire { heap } => {
                if let Some(h) = self.heap(heap) {
                    self.retire(h);
                }
            }
            Op::HeapDestroy { heap } => {
                let Some(h) = self.heap(heap) else { return };
                let blocks = self.model.of(Owner::Heap(h));
                for &i in blocks.iter().rev() {
                    self.model.check(i, usize::MAX, "before destroy");
                    self.model.remove(i);
                }
                self.heaps[h].as_mut().expect("live heap").heap.destroy();
                self.model.check_all("after another heap's destroy");
            }
            Op::Release { idle } => {
                if idle {
                    oxmalloc::mark_thread_idle();
                } else {
                    oxmalloc::release_free_memory();
                    for h in self.heaps.iter().flatten() {
                        h.heap.release_free_memory();
                    }
                }
                self.model.check_all("after a release");
            }
        }
    }

    fn realloc(&mut self, pick: u16, size: usize, via_global: bool) {
        let Some(i) = self.model.pick(pick) else {
            return;
        };
        let b = self.model.get(i);
        if size > b.size && !self.room_for(size - b.size) {
            return;
        }
        self.model.check(i, usize::MAX, "before realloc");
        let old = layout(b.size, b.align);
        let q = match b.owner {
            Owner::Heap(h) if !via_global => {
                let heap = &self.heaps[h].as_ref().expect("live heap").heap;
                let new = layout(size, b.align);
                let p = NonNull::new(b.ptr).expect("non-null");
                // SAFETY: a live block of this heap with layout `old`.
                let r = unsafe {
                    if size >= b.size {
                        heap.grow(p, old, new)
                    } else {
                        heap.shrink(p, old, new)
                    }
                };
                match r {
                    Ok(q) => q.as_ptr().cast::<u8>(),
                    Err(_) => {
                        // Full: the block must be untouched.
                        self.model.check(i, usize::MAX, "after a failed grow");
                        return;
                    }
                }
            }
            _ => {
                // SAFETY: a live block of oxmalloc's with layout `old`; a
                // non-zero new size.
                let q = unsafe { OxMalloc.realloc(b.ptr, old, size) };
                if q.is_null() {
                    assert!(
                        b.owner != Owner::Global,
                        "realloc of a global block to {size} bytes failed"
                    );
                    self.model.check(i, usize::MAX, "after a failed realloc");
                    return;
                }
                q
            }
        };
        self.model.remove(i);
        let keep = b.size.min(size);
        // SAFETY: the new block holds `size >= keep` bytes.
        if let Some(off) = unsafe { crate::pattern::first_mismatch(q, keep, b.seed) } {
            panic!(
                "realloc {:p} ({} bytes) -> {q:p} ({size} bytes): contents lost at offset {off}",
                b.ptr, b.size
            );
        }
        let owner = self.owner_of(q, size);
        if let (Owner::Heap(h), false) = (b.owner, via_global) {
            assert_eq!(owner, Owner::Heap(h), "{q:p}: grow/shrink left heap {h}");
        }
        // SAFETY: the block is live with `size` bytes; its first `keep`
        // hold the pattern of `b.seed` (checked above).
        unsafe { self.model.add(q, size, b.align, b.seed, owner, false, keep) };
    }

    /// Retires heap `h`: refused while the model has live blocks in it
    /// (and then the live bytes cover them), else its mappings are unmapped.
    fn retire(&mut self, h: usize) {
        let slot = self.heaps[h].take().expect("live heap");
        let live: usize = self
            .model
            .of(Owner::Heap(h))
            .iter()
            .map(|&i| self.model.get(i).size)
            .sum();
        let any = !self.model.of(Owner::Heap(h)).is_empty();
        match slot.heap.retire() {
            Ok(retired) => {
                assert!(!any, "heap {h} retired with {live} bytes live in the model");
                for r in retired.iter() {
                    assert!(
                        slot.mappings
                            .iter()
                            .any(|m| m.contains(r.start as usize, r.len)),
                        "a retired range {:p}+{} is not one of the heap's mappings",
                        r.start,
                        r.len
                    );
                }
                for m in slot.mappings {
                    assert!(
                        oxmalloc::region_of(m.start).is_none(),
                        "a retired region is still known"
                    );
                    // SAFETY: retired: oxmalloc no longer uses the range.
                    unsafe { m.unmap() };
                }
            }
            Err((heap, e)) => {
                assert!(any, "heap {h} refused to retire with nothing live ({e:?})");
                assert!(
                    e.live_bytes() >= live,
                    "heap {h}: retire says {} bytes live, the model {live}",
                    e.live_bytes()
                );
                self.heaps[h] = Some(HeapSlot {
                    heap,
                    mappings: slot.mappings,
                });
            }
        }
    }

    fn finish(mut self) {
        while !self.model.is_empty() {
            self.step(&Op::Free {
                pick: 0,
                via_global: false,
            });
        }
        for h in 0..HEAP_SLOTS {
            if self.heaps[h].is_some() {
                self.retire(h);
                assert!(self.heaps[h].is_none(), "heap {h} did not retire empty");
            }
        }
        let after = oxmalloc::stats().allocated_bytes;
        assert_eq!(
            after, self.allocated_before,
            "the global heap's allocated bytes did not come back after freeing everything"
        );
    }
}

/// A fresh mapping injected as an exclusive region.
fn exclusive_region(len: usize) -> (Mapping, oxmalloc::RegionId) {
    let m = Mapping::new(len).expect("mmap");
    let opts = RegionOptions::new()
        .exclusive(true)
        .zeroed(true)
        .label("fuzz-heap");
    // SAFETY: a fresh mapping, ours until the heap is retired.
    let id = unsafe { inject(m.start, m.len, opts) }.expect("inject an exclusive region");
    (m, id)
}
