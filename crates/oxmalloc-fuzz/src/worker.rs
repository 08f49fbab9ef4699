//! The second thread: it frees blocks the fuzzed thread allocated, and
//! allocates blocks the fuzzed thread then owns (cross-thread frees in both
//! directions). One thread for the whole process, so that its thread cache
//! lives on between inputs as a real program's would.

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};

enum Request {
    Free(usize, Layout),
    Alloc(Layout),
}

struct Worker {
    to: Sender<Request>,
    from: Receiver<usize>,
}

fn worker() -> &'static Mutex<Worker> {
    static W: OnceLock<Mutex<Worker>> = OnceLock::new();
    W.get_or_init(|| {
        let (to, requests) = channel::<Request>();
        let (replies, from) = channel::<usize>();
        std::thread::Builder::new()
            .name("oxmalloc-fuzz-worker".into())
            .spawn(move || {
                for r in requests {
                    let answer = match r {
                        // SAFETY: a live block of oxmalloc's with that layout
                        // (the fuzzed thread gave up its ownership).
                        Request::Free(p, l) => unsafe {
                            OxMalloc.dealloc(p as *mut u8, l);
                            0
                        },
                        // SAFETY: a non-zero layout (see `alloc`).
                        Request::Alloc(l) => unsafe { OxMalloc.alloc(l) as usize },
                    };
                    if replies.send(answer).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn the worker thread");
        Mutex::new(Worker { to, from })
    })
}

fn call(r: Request) -> usize {
    let w = worker().lock().unwrap_or_else(|e| e.into_inner());
    w.to.send(r).expect("worker thread alive");
    w.from.recv().expect("worker thread alive")
}

/// Frees `p` on the second thread, through the global entry point.
///
/// # Safety
/// `p` is a live block of oxmalloc's allocated with `layout`, not used after.
pub unsafe fn free(p: *mut u8, layout: Layout) {
    call(Request::Free(p as usize, layout));
}

/// Allocates on the second thread; the caller owns the block.
pub fn alloc(layout: Layout) -> *mut u8 {
    assert!(layout.size() > 0);
    call(Request::Alloc(layout)) as *mut u8
}
