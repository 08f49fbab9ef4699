//! Injection benchmark: allocation throughput from an injected region against
//! memory from the OS, and the cost of injecting a 1 TiB reservation.
//!
//! Each variant runs in a fresh process (the bench re-executes itself), so
//! both start from an empty heap: `pool` injects a region before the first
//! allocation, `os` does not. Each child reports the CPU time (user + system,
//! page faults included) of its workload; variants alternate over several
//! rounds and the fastest and median runs are compared (ratio = os time /
//! pool time: above 1 means the pool is faster). Run with `cargo bench --bench injection`.

use oxmalloc::{inject, OxMalloc, RegionOptions, Release};
use std::process::Command;
use std::time::Instant;

#[global_allocator]
static A: OxMalloc = OxMalloc;

const ROUNDS: usize = 15;
const POOL: usize = 4 << 30;

fn reserve(len: usize) -> *mut u8 {
    // SAFETY: a fresh anonymous reservation.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "mmap of {len} bytes");
    p.cast()
}

fn rss_kib() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").expect("statm");
    s.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        * 4
}

/// CPU time (user + system) of this process so far, in seconds: less
/// sensitive than wall time to other work on a shared machine.
fn cpu_seconds() -> f64 {
    // SAFETY: a zeroed rusage is a valid out-buffer.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(r.ru_utime) + tv(r.ru_stime)
}

/// The workload: rounds of mixed small and large allocations that touch
/// their memory, with frees interleaved. Returns the CPU seconds it took.
fn workload() -> f64 {
    let t = cpu_seconds();
    let mut keep: Vec<Vec<u8>> = Vec::with_capacity(4096);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..1_600_000usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = match x % 100 {
            0 => 64 << 10 | (x as usize & 0xFFFF),
            1..=9 => 1024 + (x as usize & 0x1FFF),
            _ => 8 + (x as usize & 0x1FF),
        };
        let v = vec![i as u8; size];
        if keep.len() < 4096 {
            keep.push(v);
        } else {
            keep[(x >> 20) as usize % 4096] = v;
        }
    }
    std::hint::black_box(&keep);
    drop(keep);
    cpu_seconds() - t
}

fn child(variant: &str) {
    if variant == "pool" {
        let p = reserve(POOL);
        let opts = RegionOptions::new()
            .release(Release::DontNeed)
            .zeroed(true)
            .label("pool");
        // SAFETY: our reservation, handed over for good.
        unsafe { inject(p, POOL, opts) }.expect("inject");
    }
    let secs = workload();
    let injected = oxmalloc::numeric_property("oxmalloc.injected_in_use_bytes").unwrap_or(0);
    println!("{secs} {injected}");
}

fn run(variant: &str) -> (f64, usize) {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args(["--child", variant])
        .output()
        .expect("spawn child");
    assert!(out.status.success(), "child {variant} failed");
    let s = String::from_utf8(out.stdout).unwrap();
    let mut it = s.split_whitespace();
    (
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().parse().unwrap(),
    )
}

/// (fastest, median) of the rounds: the fastest is the least disturbed by
/// other work on the machine.
fn summary(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2])
}

fn inject_cost() {
    let len = 1usize << 40;
    let mut best = f64::MAX;
    let mut rss = 0;
    for _ in 0..5 {
        let p = reserve(len);
        let before = rss_kib();
        let t = Instant::now();
        let opts = RegionOptions::new().exclusive(true).label("1 TiB");
        // SAFETY: our reservation, handed over for good.
        unsafe { inject(p, len, opts) }.expect("inject 1 TiB");
        best = best.min(t.elapsed().as_secs_f64());
        rss = rss.max(rss_kib().saturating_sub(before));
    }
    println!(
        "inject(1 TiB MAP_NORESERVE): best of 5 {:.1} us, RSS growth at most {rss} KiB",
        best * 1e6
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1]);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list` support
    }
    let (mut os, mut pool) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (t, injected) = run("os");
        assert_eq!(injected, 0);
        os.push(t);
        let (t, injected) = run("pool");
        assert!(injected > 0, "the pool variant allocated from the pool");
        pool.push(t);
    }
    let ((o_min, o_med), (p_min, p_med)) = (summary(os), summary(pool));
    println!("workload (1.6M mixed allocations, fresh process each, CPU time, {ROUNDS} rounds):");
    println!(
        "  os   memory: fastest {:.2} ms, median {:.2} ms",
        o_min * 1e3,
        o_med * 1e3
    );
    println!(
        "  pool memory: fastest {:.2} ms, median {:.2} ms",
        p_min * 1e3,
        p_med * 1e3
    );
    println!(
        "  throughput ratio pool/os = {:.3} fastest, {:.3} median (goal >= 0.97)",
        o_min / p_min,
        o_med / p_med
    );
    inject_cost();
}
