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
