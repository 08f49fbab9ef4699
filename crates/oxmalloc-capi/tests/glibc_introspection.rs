//! glibc's introspection with oxmalloc's figures (`tests/c/glibc_introspection.c`):
//! `mallinfo2` as glibc's `tst-mallinfo2` checks it, `mallinfo`,
//! `malloc_trim` lowering the resident set, `malloc_stats`' lines,
//! `malloc_info`'s XML (parsed with python3's xml module), and `mallopt`.

mod support;

use std::process::Command;

fn prog() -> std::path::PathBuf {
    support::compile_linked("glibc_introspection.c")
}

#[test]
fn mallinfo2_uordblks_follows_allocations() {
    let out = support::run_ok(Command::new(prog()).arg("mallinfo2"));
    assert!(out.contains("mallinfo2: arena="), "{out}");
}

#[test]
fn mallinfo_has_the_same_figures_saturated() {
    support::run_ok(Command::new(prog()).arg("mallinfo"));
}

#[test]
fn malloc_trim_lowers_rss() {
    let out = support::run_ok(Command::new(prog()).arg("trim"));
    assert!(out.contains("malloc_trim: RSS"), "{out}");
}

#[test]
fn mallopt_accepts_what_maps() {
    support::run_ok(Command::new(prog()).arg("mallopt"));
}

#[test]
fn malloc_stats_prints_glibcs_lines() {
    let out = support::check(Command::new(prog()).arg("stats"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 8, "{stderr}");
    assert_eq!(lines[0], "Arena 0:");
    assert_eq!(lines[3], "Total (incl. mmap):");
    let value = |i: usize, label: &str| -> usize {
        let (l, v) = lines[i].split_once(" = ").expect("label = value");
        assert_eq!(l, label, "{stderr}");
        assert_eq!(v.len(), 10, "right-aligned in 10 columns: {stderr}");
        v.trim().parse().expect("a number")
    };
    let system = value(1, "system bytes    ");
    let in_use = value(2, "in use bytes    ");
    assert!(in_use >= 3 << 20 && system >= in_use, "{stderr}");
    assert_eq!(value(4, "system bytes    "), system);
    assert_eq!(value(5, "in use bytes    "), in_use);
    assert_eq!(value(6, "max mmap regions"), 0);
    assert_eq!(value(7, "max mmap bytes  "), 0);
}

#[test]
fn malloc_info_writes_glibcs_xml() {
    support::ensure_tool("python3", "python3");
    let dir = support::scratch("malloc_info");
    let xml = dir.join("info.xml");
    support::run_ok(Command::new(prog()).arg("info").arg(&xml));
    // Parse it and check glibc's structure and that the figures agree.
    let check = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "malloc" and root.get("version") == "1", root.attrib
heaps = root.findall("heap")
assert len(heaps) == 1 and heaps[0].get("nr") == "0"
sizes = heaps[0].find("sizes").findall("size")
assert sizes, "the central lists hold free objects"
for s in sizes:
    lo, hi, total, count = (int(s.get(k)) for k in ("from", "to", "total", "count"))
    assert 1 <= lo <= hi and count > 0 and total == count * hi, s.attrib
fast = [t for t in heaps[0].findall("total") if t.get("type") == "fast"][0]
assert int(fast.get("size")) == sum(int(s.get("total")) for s in sizes)
assert int(fast.get("count")) == sum(int(s.get("count")) for s in sizes)
types = {t.get("type") for t in root.findall("total")}
assert types == {"fast", "rest", "mmap"}, types
system = {s.get("type"): int(s.get("size")) for s in root.findall("system")}
assert system["current"] > 0 and system["max"] >= system["current"], system
aspace = {s.get("type") for s in root.findall("aspace")}
assert aspace == {"total", "mprotect"}, aspace
print("parsed", len(sizes), "size classes")
"#;
    let out = support::check(Command::new("python3").args(["-c", check]).arg(&xml));
    assert!(String::from_utf8_lossy(&out.stdout).contains("parsed"));
}
