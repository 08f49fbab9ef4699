//! `oxmalloc demo`: the demonstration runs to completion and its reports
//! parse.

use std::process::Command;

fn demo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_oxmalloc"))
        .arg("demo")
        .args(["--threads", "3", "--rounds", "30"])
        .args(args)
        .output()
        .expect("run oxmalloc demo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn short_report() {
    let out = demo(&[]);
    for row in [
        "bytes in use by the program",
        "page heap free",
        "released to the OS",
        "thread caches",
        "spans in use / free",
    ] {
        assert!(out.contains(row), "{row}: {out}");
    }
    assert!(out.contains("release_free_memory() released"));
}

#[test]
fn json_report_parses_and_adds_up() {
    let out = demo(&["--report", "json"]);
    let json = out.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let s = &v["summary"];
    let n = |k: &str| s[k].as_u64().unwrap();
    assert_eq!(
        n("heap_size"),
        n("allocated_bytes")
            + n("pageheap_free_bytes")
            + n("pageheap_unmapped_bytes")
            + n("central_cache_free_bytes")
            + n("transfer_cache_free_bytes")
            + n("thread_cache_free_bytes")
    );
}

#[test]
fn text_report_and_bad_options() {
    assert!(demo(&["--report", "text"]).contains("MALLOC:"));
    let out = Command::new(env!("CARGO_BIN_EXE_oxmalloc"))
        .args(["demo", "--report", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--report needs text or json"));
}
