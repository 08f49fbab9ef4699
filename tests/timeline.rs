//! `oxmalloc run --timeline`: a C program allocates 100 MiB in 10 MiB steps,
//! then frees it in steps; the JSON samples rise to 100 MiB in use and fall
//! back, and the SVG is well-formed XML whose bytes-in-use curve does the
//! same on the chart's MiB axis.

use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: f64 = (1 << 20) as f64;

/// A fresh directory for one test (tests run in parallel).
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("oxmalloc-timeline-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles `tests/c/steps.c` and runs it under `oxmalloc run --timeline out`.
fn timeline(dir: &Path, out: &str) -> PathBuf {
    let exe = dir.join("steps");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/steps.c");
    let cc = Command::new("gcc")
        .args(["-O1", "-Wall", "-Werror", "-fno-builtin"])
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("gcc");
    assert!(cc.success());
    let file = dir.join(out);
    let run = Command::new(env!("CARGO_BIN_EXE_oxmalloc"))
        .args(["run", "--timeline"])
        .arg(&file)
        .args(["--timeline-ms", "2"])
        .arg(&exe)
        .output()
        .expect("oxmalloc run");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(err.contains("oxmalloc: timeline of"), "{err}");
    file
}

/// Rises to its peak and falls back: the peak is not at either end, the
/// values climb to it and drop after it, ending below `end`.
fn rises_and_falls(v: &[f64], peak_at_least: f64, end_below: f64) {
    let (top, peak) = v
        .iter()
        .enumerate()
        .fold((0, f64::MIN), |a, (i, &x)| if x > a.1 { (i, x) } else { a });
    assert!(peak >= peak_at_least, "peak {peak}");
    assert!(0 < top && top < v.len() - 1, "peak at {top} of {}", v.len());
    assert!(v[0] < peak_at_least / 10.0, "start {}", v[0]);
    assert!(*v.last().unwrap() < end_below, "end {}", v.last().unwrap());
    // In steps: of the 10 levels each way, at least 7 seen (a sample can
    // miss a 50 ms step on a loaded machine).
    let levels = |s: &[f64]| {
        let mut l: Vec<i64> = s.iter().map(|x| (x / (5.0 * MIB)).round() as i64).collect();
        l.dedup();
        l.len()
    };
    assert!(levels(&v[..=top]) >= 7, "{:?}", &v[..=top]);
    assert!(levels(&v[top..]) >= 7, "{:?}", &v[top..]);
}

#[test]
fn json_samples_follow_the_program() {
    let dir = scratch("json");
    let file = timeline(&dir, "t.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).expect("JSON");
    assert_eq!(v["interval_ms"], 2);
    let samples = v["samples"].as_array().unwrap();
    // 20 pauses of 50 ms: at least a second of samples.
    let last_ms = samples.last().unwrap()["time_ms"].as_f64().unwrap();
    assert!(last_ms >= 1000.0, "{last_ms}");
    assert!(samples.len() >= 100, "{}", samples.len());
    let series = |k: &str| -> Vec<f64> {
        samples
            .iter()
            .map(|s| s[k].as_u64().unwrap() as f64)
            .collect()
    };
    rises_and_falls(&series("allocated_bytes"), 100.0 * MIB, 5.0 * MIB);
    // The pages were touched: the resident set went past 100 MiB too.
    let rss = series("rss_bytes");
    assert!(rss.iter().cloned().fold(0.0, f64::max) >= 100.0 * MIB);
    // The heap keeps what it obtained.
    let heap = series("heap_size");
    assert!(*heap.last().unwrap() >= 100.0 * MIB);
    for s in samples {
        let n = |k: &str| s[k].as_u64().unwrap();
        assert!(n("heap_size") >= n("allocated_bytes") + n("pageheap_free_bytes"));
    }
}

#[test]
fn svg_is_well_formed_and_its_curve_follows_the_program() {
    let dir = scratch("svg");
    let file = timeline(&dir, "t.svg");
    let text = std::fs::read_to_string(file).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let series: Vec<&str> = root
        .descendants()
        .filter(|n| n.attribute("class") == Some("series"))
        .filter_map(|n| n.attribute("data-series"))
        .collect();
    assert_eq!(
        series,
        [
            "allocated_bytes",
            "heap_size",
            "pageheap_free_bytes",
            "pageheap_unmapped_bytes",
            "rss_bytes"
        ]
    );
    let legend: Vec<String> = root
        .descendants()
        .filter(|n| n.attribute("class") == Some("legend"))
        .map(|n| n.text().unwrap_or_default().to_string())
        .collect();
    assert_eq!(legend.len(), 5);
    assert!(legend[0].starts_with("bytes in use (peak 10"), "{legend:?}");
    // The MiB axis from its ticks: y = a + b * MiB.
    let ticks: Vec<(f64, f64)> = root
        .descendants()
        .filter(|n| n.attribute("class") == Some("ytick"))
        .map(|n| {
            let mib: f64 = n.attribute("data-mib").unwrap().parse().unwrap();
            (mib, n.attribute("y1").unwrap().parse().unwrap())
        })
        .collect();
    assert!(ticks.len() >= 3, "{ticks:?}");
    let (m0, y0) = ticks[0];
    let (m1, y1) = *ticks.last().unwrap();
    let to_mib = |y: f64| m0 + (y - y0) * (m1 - m0) / (y1 - y0);
    let in_use = root
        .descendants()
        .find(|n| n.attribute("data-series") == Some("allocated_bytes"))
        .unwrap();
    let points: Vec<(f64, f64)> = in_use
        .attribute("points")
        .unwrap()
        .split(' ')
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect();
    assert!(
        points.windows(2).all(|w| w[0].0 <= w[1].0),
        "time goes right"
    );
    let values: Vec<f64> = points.iter().map(|&(_, y)| to_mib(y) * MIB).collect();
    // One decimal of a pixel: within a MiB.
    rises_and_falls(&values, 99.0 * MIB, 6.0 * MIB);
}
