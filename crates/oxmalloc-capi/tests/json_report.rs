//! `oxmalloc_write_json` and `oxmalloc_write_json_fd` from C
//! (`tests/c/json_report.c`): both reports parse as JSON and show the
//! program's 3 MiB block.

mod support;

use std::process::Command;

#[test]
fn c_functions_write_the_json_report() {
    let exe = support::compile_linked("json_report.c");
    let out = support::run_ok(&mut Command::new(exe));
    let reports: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(reports.len(), 2, "{out}");
    for r in &reports {
        let s = &r["summary"];
        assert!(s["allocated_bytes"].as_u64().unwrap() >= 3 << 20, "{s}");
        assert!(s["peak_in_use_bytes"].as_u64().unwrap() >= 3 << 20, "{s}");
        assert!(r["classes"].is_array() && r["regions"].is_array());
    }
}
