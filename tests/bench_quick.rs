//! `oxmalloc bench`: the quick mode runs the whole suite end to end (so the
//! suite never rots), and its outputs hold a figure for every workload under
//! every allocator that is installed. A peer that is not installed is
//! reported and skipped, never a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn oxmalloc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oxmalloc"))
}

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("oxmalloc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn quick_mode_measures_every_workload_under_every_present_allocator() {
    let dir = TempDir::new("bench-quick");
    let started = std::time::Instant::now();
    let out = oxmalloc()
        .args(["bench", "--quick", "--out"])
        .arg(&dir.0)
        .output()
        .expect("run oxmalloc bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "oxmalloc bench --quick failed:\n{stderr}"
    );
    let took = started.elapsed();
    eprintln!("oxmalloc bench --quick took {took:.0?}");
    // The goal is under two minutes (about one here); the margin is for a
    // machine busy with other builds.
    assert!(took.as_secs() < 180, "--quick took {took:?}");

    let j: Value =
        serde_json::from_str(&read(&dir.0, "results.json")).expect("results.json parses");
    assert_eq!(j["quick"], true);
    let mut present = Vec::new();
    for a in j["allocators"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        if a["present"] == true {
            present.push(name);
        } else {
            eprintln!(
                "SKIPPED peer {name}: not installed ({}); its figures are left out",
                a["missing"].as_str().unwrap_or("")
            );
            assert!(stderr.contains(&format!("{name} is missing")), "{stderr}");
        }
    }
    assert!(
        present.contains(&"oxmalloc") && present.contains(&"glibc"),
        "{present:?}"
    );

    let workloads = j["workloads"].as_array().unwrap();
    let mut bars = 0;
    for w in workloads {
        let name = w["name"].as_str().unwrap();
        let variant = !w["oxmalloc_vs"].is_null();
        let expected: &[&str] = if variant { &["oxmalloc"] } else { &present };
        for a in expected {
            let cell = &w["results"][a];
            assert!(cell.is_object(), "{name}: no results for {a}");
            assert!(
                cell.get("failed").is_none(),
                "{name} failed on {a}: {}",
                cell["failed"]
            );
            assert!(
                cell.get("unavailable").is_none(),
                "{name} on {a}: {}",
                cell["unavailable"]
            );
            assert!(cell["runs"].as_u64().unwrap() >= 1, "{name} on {a}");
            for f in w["figures"].as_array().unwrap() {
                let f = f.as_str().unwrap();
                let v = cell[f]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{name} on {a}: no {f}"));
                assert!(v >= 0.0, "{name} on {a}: {f} = {v}");
            }
            assert!(cell["wall_s"].as_f64().unwrap() > 0.0);
            assert!(cell["peak_rss_kib"].as_f64().unwrap() > 100.0);
            if !variant {
                let ratio = cell["ratio_to_best_peer"]["wall_s"].as_f64();
                assert!(ratio.is_some_and(|r| r > 0.0), "{name} on {a}: no ratio");
                // Wall time, peak RSS, and the RSS after the peak if measured.
                bars += 2 + usize::from(cell.get("final_rss_kib").is_some());
            }
        }
    }
    for name in [
        "larson",
        "remote-free",
        "realloc-growth",
        "footprint",
        "region-inject",
    ] {
        assert!(
            workloads.iter().any(|w| w["name"] == name),
            "{name} missing"
        );
    }

    let cg = &j["callgrind"];
    if cg["counted"] == true {
        for case in cg["cases"].as_array().unwrap() {
            for a in &present {
                let n = case["instructions_per_pair"][a].as_f64();
                assert!(
                    n.is_some_and(|n| (10.0..2000.0).contains(&n)),
                    "callgrind {} on {a}: {n:?}",
                    case["name"]
                );
            }
        }
    } else {
        eprintln!("SKIPPED callgrind: {}", cg["reason"]);
    }

    let svg = read(&dir.0, "bench.svg");
    let doc = roxmltree::Document::parse(&svg).expect("bench.svg is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let drawn = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.children().any(|c| c.has_tag_name("title")))
        .count();
    assert_eq!(drawn, bars, "one bar per workload, allocator and figure");

    let md = read(&dir.0, "results.md");
    assert!(String::from_utf8_lossy(&out.stdout) == md);
    for w in workloads {
        let name = w["name"].as_str().unwrap();
        assert!(md.contains(&format!("| {name} |")), "{name} has no row");
    }
    assert!(md.contains("## Largest gaps to the best peer"));
}

#[test]
fn lists_workloads_and_refuses_unknown_ones() {
    let out = oxmalloc().args(["bench", "--list"]).output().unwrap();
    assert!(out.status.success());
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.lines().count() >= 15 && list.contains("realloc-growth"),
        "{list}"
    );

    let out = oxmalloc()
        .args(["bench", "--only", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown workload \"nope\""));
    let out = oxmalloc()
        .args(["bench", "--allocators", "ptmalloc9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown allocator"));
    let out = oxmalloc().args(["bench", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
