//! `oxmalloc run`: runs a program with the C library preloaded, passes its
//! exit status on, and writes the reports: on standard error (the main
//! process in full, a line per child), and one JSON file per process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn oxmalloc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oxmalloc"))
        .args(args)
        .env_remove("MALLOCSTATS")
        .output()
        .expect("run oxmalloc")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("oxmalloc-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn runs_the_program_on_the_library() {
    let out = oxmalloc(&["run", "sh", "-c", "echo \"$LD_PRELOAD\"; exit 3"]);
    // The program's exit status comes through.
    assert_eq!(out.status.code(), Some(3));
    let preload = text(&out.stdout);
    assert!(preload.trim_end().ends_with("liboxmalloc.so"), "{preload}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn death_by_a_signal_comes_through() {
    use std::os::unix::process::ExitStatusExt;
    let out = oxmalloc(&["run", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.signal(), Some(libc::SIGTERM));
}

#[test]
fn report_names_the_program_and_pid_and_shows_peaks() {
    // The shell prints its pid, then `exec` keeps it for echo.
    let out = oxmalloc(&[
        "run",
        "--stats",
        "sh",
        "-c",
        "echo $$; exec /bin/echo hello",
    ]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let pid = stdout.lines().next().unwrap();
    assert_eq!(stdout.lines().nth(1), Some("hello"));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "oxmalloc report (MALLOCSTATS=1) for process {pid} (/bin/echo hello), max RSS "
        )),
        "{err}"
    );
    for line in [
        "Bytes in use by application",
        "Peak bytes in spans in use",
        "Peak heap size",
    ] {
        assert!(err.contains(line), "{line}: {err}");
    }
    assert!(!err.contains("PageHeap: free spans"), "{err}");
}

/// The bytes of the report line that ends with `what`.
fn report_line(report: &str, what: &str) -> usize {
    let l = report
        .lines()
        .find(|l| l.ends_with(what))
        .unwrap_or_else(|| panic!("no {what:?} line in\n{report}"));
    l.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// "Actual memory used" counts the metadata oxmalloc wrote, not the
/// address space it reserved (a 3 MiB pagemap leaf, a 1 MiB chunk): for
/// `ls` it used to read 5.0 MiB, above the 3.6 MiB the whole process
/// peaked at.
#[test]
fn actual_memory_used_is_below_the_peak_rss() {
    let out = oxmalloc(&["run", "--stats", "ls", "/"]);
    assert!(out.status.success());
    let err = text(&out.stderr);
    let rss: f64 = err
        .split_once("max RSS ")
        .and_then(|(_, r)| r.split_once(" MiB:"))
        .and_then(|(r, _)| r.parse().ok())
        .unwrap_or_else(|| panic!("no max RSS in {err}"));
    let actual = report_line(&err, "Actual memory used (physical + swap)");
    let metadata = report_line(&err, "Bytes in malloc metadata");
    assert!(
        (actual as f64) < rss * (1 << 20) as f64,
        "actual memory used {actual} bytes, peak RSS {rss} MiB: {err}"
    );
    assert!(metadata < 256 << 10, "metadata {metadata} bytes: {err}");
    assert!(report_line(&err, "Virtual address space used") >= actual + (3 << 20));
}

/// `sh -c` starting two children, then replaced by a third `ls` (the main
/// process: dash itself leaves with `_exit`, which runs no exit hook).
const SCRIPT: &str = "ls / >/dev/null; ls /tmp >/dev/null; echo $$; exec ls / >/dev/null";

#[test]
fn children_get_a_summary_line_and_the_main_process_the_report() {
    let out = oxmalloc(&["run", "--stats", "sh", "-c", SCRIPT]);
    assert!(out.status.success());
    let main = text(&out.stdout).trim().to_string();
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("oxmalloc")).collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with("oxmalloc: process ") && lines[0].contains("(ls /): in use "));
    assert!(lines[1].starts_with("oxmalloc: process ") && lines[1].contains("(ls /tmp): in use "));
    assert!(
        lines[2].starts_with(&format!(
            "oxmalloc report (MALLOCSTATS=1) for process {main} (ls /)"
        )),
        "{err}"
    );
    assert_eq!(err.matches("Bytes in use by application").count(), 1);
    // Or every report whole.
    let out = oxmalloc(&["run", "--stats", "--children", "full", "sh", "-c", SCRIPT]);
    assert_eq!(
        text(&out.stderr)
            .matches("Bytes in use by application")
            .count(),
        3
    );
}

#[test]
fn json_dir_gets_one_valid_report_per_process() {
    let dir = scratch("json").join("reports");
    let out = oxmalloc(&[
        "run",
        "--json",
        dir.to_str().unwrap(),
        "sh",
        "-c",
        "ls >/dev/null; ls >/dev/null; ls >/dev/null; echo $$; exec ls >/dev/null",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let main: u64 = text(&out.stdout).trim().parse().unwrap();
    let mut seen = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let pid = v["pid"].as_u64().unwrap();
        assert_eq!(
            p.file_name().unwrap().to_str().unwrap(),
            format!("ls.{pid}.json")
        );
        assert_eq!(v["program"], "ls");
        assert_eq!(v["main"], pid == main);
        let s = &v["report"]["summary"];
        assert!(s["peak_in_use_bytes"].as_u64().unwrap() >= s["allocated_bytes"].as_u64().unwrap());
        seen.push(pid);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.contains(&main));
}

#[test]
fn installed_by_cargo_alone_it_says_how_to_get_the_library() {
    let dir = scratch("lonely");
    let exe = dir.join("oxmalloc");
    std::fs::copy(env!("CARGO_BIN_EXE_oxmalloc"), &exe).unwrap();
    // A child another test forks meanwhile may hold the copy's descriptor
    // open for an instant (until it execs): "Text file busy".
    let out = (0..50)
        .find_map(|_| {
            match Command::new(&exe)
                .args(["run", "true"])
                .env_remove("OXMALLOC_LIB")
                .output()
            {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    None
                }
                r => Some(r.unwrap()),
            }
        })
        .expect("the copy stays busy");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("liboxmalloc.so not found"), "{err}");
    assert!(err.contains("oxmalloc install --prefix"), "{err}");
    // OXMALLOC_LIB points it at one.
    let lib = Path::new(env!("CARGO_BIN_EXE_oxmalloc")).with_file_name("deps/liboxmalloc.so");
    let out = Command::new(&exe)
        .args(["run", "sh", "-c", "echo $LD_PRELOAD"])
        .env("OXMALLOC_LIB", &lib)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        lib.canonicalize().unwrap().to_str().unwrap()
    );
}
