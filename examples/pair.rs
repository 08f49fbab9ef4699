//! `N` malloc/free pairs of one size through one allocator, for instruction
//! counts under callgrind:
//!
//! ```text
//! cargo build --release --example pair
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/pair oxmalloc 64 100000
//! ```
//!
//! Instructions per pair = (Ir(N2) - Ir(N1)) / (N2 - N1), which cancels
//! start-up and the allocator's first-call set-up. `benches/callgrind.sh`
//! does this for every allocator and size.
//!
//! Allocators: `oxmalloc` (the global heap), `heap` (an oxmalloc
//! [`Heap`](oxmalloc::Heap) bound to an exclusive region of 1 GiB injected
//! first), `glibc` (`std::alloc::System`), `mimalloc`, `jemalloc`; each is
//! called through `GlobalAlloc` on an instance, with the layout passed
//! through `black_box` so no size class is folded at compile time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::process::ExitCode;

#[path = "../benches/common/bound_heap.rs"]
mod bound_heap;
use bound_heap::bound_heap;

#[inline(never)]
fn pairs<A: GlobalAlloc>(a: &A, size: usize, n: u64) {
    let layout = Layout::from_size_align(size, 8).expect("a valid size");
    for _ in 0..n {
        let l = black_box(layout);
        // SAFETY: a non-zero size; the block is freed with the same layout.
        unsafe {
            let p = a.alloc(l);
            assert!(!p.is_null());
            a.dealloc(black_box(p), l);
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(name), Some(size), Some(n)) = (
        args.first(),
        args.get(1).and_then(|s| s.parse::<usize>().ok()),
        args.get(2).and_then(|s| s.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: pair oxmalloc|heap|glibc|mimalloc|jemalloc SIZE N");
        return ExitCode::from(2);
    };
    if size == 0 {
        eprintln!("pair: SIZE must be non-zero");
        return ExitCode::from(2);
    }
    match name.as_str() {
        "oxmalloc" => pairs(&oxmalloc::OxMalloc, size, n),
        "heap" => pairs(&bound_heap(), size, n),
        "glibc" => pairs(&System, size, n),
        "mimalloc" => pairs(&mimalloc::MiMalloc, size, n),
        "jemalloc" => pairs(&tikv_jemallocator::Jemalloc, size, n),
        _ => {
            eprintln!("pair: unknown allocator {name:?}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
