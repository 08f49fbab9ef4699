//! What the injection tests share: fresh mappings to hand to oxmalloc.

#![allow(dead_code)] // each test file uses a part of it

/// The allocator's page.
pub const PAGE: usize = 8192;

/// A fresh read-write mapping of `len` bytes with `flags` (and `fd` for a
/// file mapping, else -1).
pub fn map_with(len: usize, flags: i32, fd: i32) -> *mut u8 {
    // SAFETY: a new mapping at an address the kernel picks touches nothing.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            fd,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "mmap of {len} bytes");
    p.cast()
}

/// A fresh private anonymous reservation (no swap reserved).
pub fn map(len: usize) -> *mut u8 {
    map_with(
        len,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
    )
}

/// A fresh mapping of `len` bytes with `flags` (anonymous) starting on an
/// 8 KiB boundary, so a region over it is exactly `len` bytes.
pub fn map_aligned_with(len: usize, flags: i32) -> *mut u8 {
    let p = map_with(len + PAGE, flags, -1) as usize;
    ((p + PAGE - 1) & !(PAGE - 1)) as *mut u8
}

/// A fresh reservation of `len` bytes starting on an 8 KiB boundary.
pub fn map_aligned(len: usize) -> *mut u8 {
    let p = map(len + PAGE) as usize;
    ((p + PAGE - 1) & !(PAGE - 1)) as *mut u8
}

/// Runs scenario `name` of test `test` in a child process: the test binary
/// again, filtered to that test, with `OX_SCENARIO=name`. The test function
/// calls [`scenario`] first; in the child it runs the scenario and exits.
pub fn in_child(test: &str, name: &str) -> std::process::Output {
    std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env("OX_SCENARIO", name)
        .output()
        .expect("run the test binary")
}

/// In a child started by [`in_child`]: runs the scenario it names (from
/// `scenarios`) and exits with status 0 after it; in the parent: returns.
pub fn scenario(scenarios: &[(&str, fn())]) {
    let Ok(name) = std::env::var("OX_SCENARIO") else {
        return;
    };
    let (_, f) = scenarios
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no scenario {name}"));
    f();
    std::process::exit(0);
}

/// The child's standard error, and whether it died by SIGABRT.
pub fn aborted(out: &std::process::Output) -> (bool, String) {
    use std::os::unix::process::ExitStatusExt;
    (
        out.status.signal() == Some(libc::SIGABRT),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
