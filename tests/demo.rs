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
        "peak in spans / peak heap",
    ] {
        assert!(out.contains(row), "{row}: {out}");
    }
    assert!(out.contains("release_free_memory() released"));
}

#[test]
fn json_report_is_all_of_stdout_and_adds_up() {
    let out = demo(&["--report", "json"]);
    // Nothing but the JSON: the whole output parses.
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
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
    // The workers held several MiB at once.
    assert!(n("peak_in_use_bytes") > 1 << 20);
    assert!(n("peak_heap_size") >= n("heap_size"));
}

#[test]
fn text_report() {
    let out = demo(&["--report", "text"]);
    assert!(
        out.contains("MALLOC:") && out.contains("Peak heap size"),
        "{out}"
    );
}
