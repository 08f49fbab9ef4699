//! `MALLOCSTATS=1|2` prints the report at exit, even for programs that close
//! standard error in an `atexit` handler (the coreutils do).

mod support;

/// Standard error of `echo hi` with the library preloaded and `MALLOCSTATS`.
fn stderr_with(value: Option<&str>) -> String {
    let mut c = support::preloaded("/bin/echo");
    c.arg("hi");
    match value {
        Some(v) => c.env("MALLOCSTATS", v),
        None => c.env_remove("MALLOCSTATS"),
    };
    let out = support::check(&mut c);
    assert_eq!(out.stdout, b"hi\n");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn level_one_prints_the_summary() {
    let e = stderr_with(Some("1"));
    assert!(e.contains("oxmalloc report (MALLOCSTATS=1)"), "{e}");
    assert!(
        e.contains("MALLOC:") && e.contains("Bytes in use by application"),
        "{e}"
    );
    assert!(!e.contains("PageHeap: free spans"), "{e}");
}

#[test]
fn level_two_prints_the_details() {
    let e = stderr_with(Some("2"));
    assert!(
        e.contains("MALLOC:") && e.contains("PageHeap: free spans"),
        "{e}"
    );
}

#[test]
fn nothing_without_the_variable() {
    assert_eq!(stderr_with(None), "");
    assert_eq!(stderr_with(Some("0")), "");
}

#[test]
fn reports_name_the_program_and_the_pid() {
    // `exec` keeps the shell's pid, which it prints first.
    let mut c = support::preloaded("sh");
    c.args(["-c", "echo $$; exec /bin/echo two words"])
        .env("MALLOCSTATS", "1");
    let out = support::check(&mut c);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pid = stdout.lines().next().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains(&format!(
            "oxmalloc report (MALLOCSTATS=1) for process {pid} (/bin/echo two words)"
        )),
        "{e}"
    );
    assert!(e.contains("Peak heap size"), "{e}");
}

#[test]
fn json_on_standard_error() {
    let e = stderr_with(Some("json"));
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 1, "one line of JSON: {e}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("JSON");
    assert_eq!(v["program"], "/bin/echo");
    assert_eq!(v["command_line"], "/bin/echo hi");
    assert_eq!(v["main"], true);
    assert!(v["pid"].as_u64().unwrap() > 0);
    assert!(v["max_rss_bytes"].as_u64().unwrap() > 0);
    let s = &v["report"]["summary"];
    assert!(s["peak_heap_size"].as_u64().unwrap() >= s["heap_size"].as_u64().unwrap());
}

/// `sh -c SCRIPT` on the library with these variables; (stdout, stderr).
fn script(script: &str, env: &[(&str, &str)]) -> (String, String) {
    let mut c = support::preloaded("sh");
    c.args(["-c", script]).env_remove("MALLOCSTATS");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = support::check(&mut c);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn stats_dir_gets_one_file_per_process() {
    let dir = support::scratch("stats_dir").join("made/by/nobody");
    let parent = dir.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap();
    let (_, err) = script(
        "/bin/echo a >/dev/null; /bin/echo b >/dev/null; exec /bin/echo c >/dev/null",
        &[("OXMALLOC_STATS_DIR", dir.to_str().unwrap())],
    );
    assert_eq!(err, "", "nothing on standard error without MALLOCSTATS");
    let mut pids = Vec::new();
    for e in std::fs::read_dir(&dir).expect("the library made the directory") {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).expect("JSON");
        assert_eq!(name, format!("echo.{}.json", v["pid"]));
        assert_eq!(v["program"], "/bin/echo");
        assert!(v["report"]["summary"]["heap_size"].is_u64());
        pids.push(v["pid"].as_u64().unwrap());
    }
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 3, "{pids:?}");
}

#[test]
fn children_print_a_summary_line_and_the_main_process_its_report() {
    // This test process starts `sh`: that is the main process; the first two
    // echos are its children, the last one replaces it (same pid).
    let me = std::process::id().to_string();
    let run = |children: &str| {
        script(
            "echo $$; /bin/echo a >/dev/null; /bin/echo b >/dev/null; exec /bin/echo c >/dev/null",
            &[
                ("MALLOCSTATS", "1"),
                ("OXMALLOC_PARENT_PID", &me),
                ("OXMALLOC_STATS_CHILDREN", children),
            ],
        )
    };
    let (out, err) = run("summary");
    let main = out.trim();
    let summaries: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("oxmalloc: process "))
        .collect();
    assert_eq!(summaries.len(), 2, "{err}");
    for (l, word) in summaries.iter().zip(["a", "b"]) {
        assert!(l.contains(&format!("(/bin/echo {word}): in use ")), "{l}");
        assert!(l.contains("peaks: in spans ") && l.contains(" RSS "), "{l}");
        assert!(!l.contains(&format!("process {main} ")), "{l}");
    }
    assert_eq!(
        err.matches("oxmalloc report (MALLOCSTATS=1)").count(),
        1,
        "{err}"
    );
    assert!(
        err.contains(&format!("for process {main} (/bin/echo c)")),
        "{err}"
    );
    let (_, err) = run("none");
    assert_eq!(err.matches("oxmalloc report").count(), 1, "{err}");
    assert!(!err.contains("oxmalloc: process"), "{err}");
    let (_, err) = run("full");
    assert_eq!(err.matches("oxmalloc report").count(), 3, "{err}");
}

#[test]
fn json_summary_lines_for_children() {
    let me = std::process::id().to_string();
    let (_, err) = script(
        "/bin/echo a >/dev/null; exec /bin/echo c >/dev/null",
        &[
            ("MALLOCSTATS", "json"),
            ("OXMALLOC_PARENT_PID", &me),
            ("OXMALLOC_STATS_CHILDREN", "summary"),
        ],
    );
    let v: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(v.len(), 2, "{err}");
    assert_eq!(
        (&v[0]["main"], &v[1]["main"]),
        (&false.into(), &true.into())
    );
    assert!(v[0]["summary"]["peak_in_use_bytes"].is_u64() && v[0]["report"].is_null());
    assert!(v[1]["report"]["summary"].is_object());
}
