//! Reports written into a `String` by a program whose global allocator is
//! `OxMalloc`: the writer allocates while the report is produced, so no lock
//! may be held around the writes (a regression: the page-heap section once
//! called the writer under the page-heap lock and deadlocked).

use std::sync::mpsc;
use std::time::Duration;

#[global_allocator]
static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

/// A writer that makes a large allocation (served by the page heap) on every
/// write, so any lock held around the writes deadlocks here.
#[derive(Default)]
struct Greedy(String);

impl std::fmt::Write for Greedy {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let big = vec![1u8; 300 << 10];
        std::hint::black_box(&big);
        self.0.push_str(s);
        Ok(())
    }
}

/// Runs `f` on a thread; fails instead of hanging if it does not finish.
fn within(secs: u64, f: impl FnOnce() -> String + Send + 'static) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("the report did not finish (deadlock?)")
}

#[test]
fn text_report_into_a_string() {
    let keep: Vec<Vec<u8>> = (0..300).map(|i| vec![0; i * 1000]).collect();
    let text = within(30, || {
        let mut w = Greedy::default();
        oxmalloc::write_report(&mut w, 2).unwrap();
        w.0
    });
    assert!(text.contains("PageHeap: free spans by length"));
    assert!(text.contains("REGION"));
    drop(keep);
}

#[test]
fn json_report_into_a_string() {
    let json = within(30, || {
        let mut w = Greedy::default();
        oxmalloc::write_json(&mut w).unwrap();
        w.0
    });
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["summary"]["heap_size"].as_u64().unwrap() > 0);
}
