//! A real workload on `OxMalloc` as the global allocator: strings, a
//! `BTreeMap`, a `HashMap`, sorting a million-element `Vec`, `Vec` growth by
//! `realloc`, and threads sharing state through `Arc<Mutex<_>>`. Every result
//! is checked against what the computation must give.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::thread;

#[global_allocator]
static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

/// A small deterministic generator (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[test]
fn strings_and_collections() {
    // Strings of varied lengths, built by formatting and pushing.
    let words: Vec<String> = (0..100_000u64)
        .map(|i| {
            let mut s = format!("w{i:06}-");
            for _ in 0..(mix(i) % 40) {
                s.push(char::from(b'a' + (mix(i ^ 0xff) % 26) as u8));
            }
            s
        })
        .collect();
    assert!(words.iter().enumerate().all(|(i, w)| {
        w.starts_with(&format!("w{i:06}-")) && w.len() == 8 + (mix(i as u64) % 40) as usize
    }));
    let total: usize = words.iter().map(String::len).sum();
    let joined = words.join(",");
    assert_eq!(joined.len(), total + words.len() - 1);
    assert_eq!(joined.split(',').count(), words.len());

    // BTreeMap keyed by the strings: ordered iteration equals sorting.
    let mut tree: BTreeMap<String, usize> = BTreeMap::new();
    for (i, w) in words.iter().enumerate() {
        tree.insert(w.clone(), i);
    }
    assert_eq!(tree.len(), words.len());
    let mut sorted = words.clone();
    sorted.sort();
    assert!(tree.keys().eq(sorted.iter()));
    for (i, w) in words.iter().enumerate().step_by(7) {
        assert_eq!(tree.remove(w), Some(i));
    }
    assert_eq!(tree.len(), words.len() - words.len().div_ceil(7));

    // HashMap counting, with removals and re-insertions (rehash growth).
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for i in 0..400_000u64 {
        *counts.entry(mix(i) % 50_000).or_default() += 1;
    }
    assert_eq!(counts.values().sum::<u64>(), 400_000);
    let distinct: HashSet<u64> = (0..400_000u64).map(|i| mix(i) % 50_000).collect();
    assert_eq!(counts.len(), distinct.len());
    counts.retain(|k, _| k % 2 == 0);
    assert!(counts.keys().all(|k| k % 2 == 0));
    let mut by_string: HashMap<String, Vec<u32>> = HashMap::new();
    for i in 0..50_000u32 {
        by_string
            .entry(format!("key{}", i % 1000))
            .or_default()
            .push(i);
    }
    assert_eq!(by_string.len(), 1000);
    assert!(by_string.values().all(|v| v.len() == 50));
    assert_eq!(by_string["key7"][3], 3007);
}

#[test]
fn sort_a_million_elements() {
    let n = 1_000_000u64;
    let mut v: Vec<u64> = (0..n).map(|i| mix(i) % 10_000_000).collect();
    let sum: u128 = v.iter().map(|&x| x as u128).sum();
    let mut copy = v.clone();
    v.sort_unstable();
    copy.sort(); // the stable sort allocates a scratch buffer
    assert_eq!(v, copy);
    assert!(v.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(v.iter().map(|&x| x as u128).sum::<u128>(), sum);

    // Sort boxed strings too (many small allocations moved around).
    let mut names: Vec<Box<str>> = (0..200_000u64)
        .map(|i| format!("{:x}", mix(i)).into_boxed_str())
        .collect();
    names.sort();
    assert!(names.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn vec_growth_through_realloc() {
    // Pushing one at a time: capacity doubles through realloc, contents
    // move along each time; crosses small classes and large spans.
    let mut v: Vec<u64> = Vec::new();
    let mut caps = Vec::new();
    for i in 0..4_000_000u64 {
        if v.len() == v.capacity() {
            caps.push(v.capacity());
        }
        v.push(i ^ 0x5555);
    }
    assert!(caps.len() > 15, "grew {} times", caps.len());
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 ^ 0x5555));
    // Shrinking reallocates down.
    v.truncate(1000);
    v.shrink_to_fit();
    assert_eq!(v.capacity(), 1000);
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 ^ 0x5555));

    // A String grown byte by byte.
    let mut s = String::new();
    for i in 0..2_000_000u32 {
        s.push(char::from(b'a' + (i % 26) as u8));
    }
    assert_eq!(s.len(), 2_000_000);
    assert!(s
        .bytes()
        .enumerate()
        .all(|(i, b)| b == b'a' + (i % 26) as u8));

    // Many vectors grown in interleaved steps.
    let mut vs: Vec<Vec<u32>> = (0..500).map(|_| Vec::new()).collect();
    for round in 0..400u32 {
        for (j, v) in vs.iter_mut().enumerate() {
            for k in 0..(j as u32 % 7 + 1) {
                v.push(round * 8 + k);
            }
        }
    }
    for (j, v) in vs.iter().enumerate() {
        let per = j as u32 % 7 + 1;
        assert_eq!(v.len(), (400 * per) as usize);
        assert!(v
            .iter()
            .enumerate()
            .all(|(i, &x)| x == (i as u32 / per) * 8 + i as u32 % per));
    }
}

#[test]
fn threads_share_state_through_arc_mutex() {
    const THREADS: u64 = 4;
    const PER: u64 = 25_000;
    let map: Arc<Mutex<HashMap<u64, String>>> = Arc::new(Mutex::new(HashMap::new()));
    let log: Arc<Mutex<Vec<Vec<u8>>>> = Arc::new(Mutex::new(Vec::new()));
    let hs: Vec<_> = (0..THREADS)
        .map(|t| {
            let map = Arc::clone(&map);
            let log = Arc::clone(&log);
            thread::spawn(move || {
                let mut local = BTreeMap::new();
                for i in 0..PER {
                    let k = t * PER + i;
                    let v = format!("t{t}-{i}");
                    local.insert(k, v.clone());
                    map.lock().unwrap().insert(k, v);
                    if i % 100 == 0 {
                        log.lock().unwrap().push(vec![t as u8; (i % 5000) as usize]);
                    }
                }
                // Drop some entries inserted by other threads (cross-thread
                // frees of their strings).
                let victim = (t + 1) % THREADS;
                for i in (0..PER).step_by(10) {
                    map.lock().unwrap().remove(&(victim * PER + i));
                }
                local.len()
            })
        })
        .collect();
    let made: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(made as u64, THREADS * PER);
    let map = Arc::try_unwrap(map).unwrap().into_inner().unwrap();
    // Each thread removed a tenth of one other thread's keys, possibly
    // before they were inserted; only keys removed after insertion are gone.
    assert!(map.len() as u64 >= THREADS * PER - THREADS * PER / 10);
    for (k, v) in &map {
        let (t, i) = (k / PER, k % PER);
        assert_eq!(v, &format!("t{t}-{i}"));
    }
    let log = Arc::try_unwrap(log).unwrap().into_inner().unwrap();
    assert_eq!(log.len() as u64, THREADS * PER / 100);
    for entry in &log {
        if let Some(&t) = entry.first() {
            assert!(entry.iter().all(|&b| b == t) && (t as u64) < THREADS);
        }
    }
    let s = oxmalloc::stats();
    assert!(s.allocated_bytes > 0 && s.heap_size >= s.allocated_bytes);
}
