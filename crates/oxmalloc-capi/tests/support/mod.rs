//! What the C library's tests share: finding the library built with them,
//! compiling C and C++ test programs, running programs with the library
//! preloaded, and installing the tools a test needs.

#![allow(dead_code)] // each test file uses a part of it

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `target/<profile>`: the test executable lives in its `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("test executable directory");
    deps.parent().expect("target/<profile>").to_path_buf()
}

/// `liboxmalloc.so`. Cargo builds it with the workspace's tests (the
/// `oxmalloc` command depends on it), but not for `cargo test -p
/// oxmalloc-capi` alone: a library older than its sources fails the test
/// rather than testing stale code.
pub fn library() -> PathBuf {
    built("deps/liboxmalloc.so")
}

/// `liboxmalloc-hardened.so`, which release builds of the library build on
/// the side (same rule as [`library`]).
pub fn hardened_library() -> PathBuf {
    built("deps/liboxmalloc-hardened.so")
}

/// `liboxmalloc.a` (same rule as [`library`]).
pub fn static_library() -> PathBuf {
    built("deps/liboxmalloc.a")
}

fn built(rel: &str) -> PathBuf {
    let p = profile_dir().join(rel);
    let lib = std::fs::metadata(&p)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} was not built: run the workspace's tests", p.display()));
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for src in ["oxmalloc-capi/src", "oxmalloc/src"] {
        for e in std::fs::read_dir(crates.join(src)).expect("source directory") {
            let f = e.expect("directory entry").path();
            let m = std::fs::metadata(&f)
                .and_then(|m| m.modified())
                .expect("mtime");
            assert!(
                m <= lib,
                "{} is older than {}: build it first \
                 (cargo build --release -p oxmalloc-capi, or run the workspace's tests)",
                p.display(),
                f.display()
            );
        }
    }
    p
}

/// This crate's `tests/c` directory, where the C sources are.
pub fn c_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(name)
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "oxmalloc-capi-{}-{name}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

/// Runs `cmd`, failing the test with its output unless it succeeds.
pub fn check(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Compiles `tests/c/<source>` (gcc, or g++ for `.cc`) into `dir/<output>`
/// with `extra` arguments after the source (libraries, flags).
pub fn compile_into(dir: &Path, source: &str, output: &str, extra: &[&str]) -> PathBuf {
    let lang = if source.ends_with(".cc") {
        Lang::Cxx
    } else {
        Lang::C
    };
    compile_as(lang, dir, source, output, &[], extra)
}

/// The language a test source is compiled as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// gcc.
    C,
    /// g++ (`-x c++`, whatever the file's extension).
    Cxx,
}

/// Compiles `tests/c/<source>` as `lang` into `dir/<output>`, with `flags`
/// before the source and `extra` after it.
pub fn compile_as(
    lang: Lang,
    dir: &Path,
    source: &str,
    output: &str,
    flags: &[&str],
    extra: &[&str],
) -> PathBuf {
    let mut cmd = match lang {
        Lang::C => Command::new("gcc"),
        Lang::Cxx => {
            let mut c = Command::new("g++");
            c.args(["-x", "c++"]);
            c
        }
    };
    let exe = dir.join(output);
    check(
        cmd.args(["-O1", "-g", "-Wall", "-Werror", "-pthread"])
            // Calls to the allocator must happen as written, huge sizes included.
            .args(["-fno-builtin", "-Wno-alloc-size-larger-than"])
            .args(flags)
            .arg("-I")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("include"))
            .arg(c_source(source))
            // `-x c++` applies to the files after it only.
            .args(["-x", "none"])
            .arg("-o")
            .arg(&exe)
            .args(extra),
    );
    exe
}

/// The arguments that link a program against `liboxmalloc.so`, found at run
/// time through an rpath.
pub fn link_args() -> Vec<String> {
    let lib_dir = profile_dir().join("deps");
    let lib_dir = lib_dir.to_str().expect("UTF-8 path");
    vec![
        format!("-L{lib_dir}"),
        format!("-Wl,-rpath,{lib_dir}"),
        // DT_RPATH, searched before LD_LIBRARY_PATH: `cargo test` puts
        // target/<profile> there, which may hold an older copy of the
        // library from another build.
        "-Wl,--disable-new-dtags".into(),
        "-loxmalloc".into(),
        "-ldl".into(),
    ]
}

/// Compiles `tests/c/<source>` linked against `liboxmalloc.so` (found at run
/// time through an rpath).
pub fn compile_linked(source: &str) -> PathBuf {
    let dir = scratch(source);
    let link = link_args();
    let link: Vec<&str> = link.iter().map(String::as_str).collect();
    compile_into(&dir, source, "prog", &link)
}

/// A command that runs `program` with the library preloaded.
pub fn preloaded(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    c.env("LD_PRELOAD", library());
    c
}

/// Runs a self-checking test program and returns its standard output, which
/// must end with the line `ok`.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = check(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.trim_end().ends_with("ok"),
        "{cmd:?} did not finish\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// True when `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes sure `tool` is installed: when it is missing and we are root on a
/// machine with apt-get, installs `package`. Fails the test otherwise.
pub fn ensure_tool(tool: &str, package: &str) {
    ensure(&format!("the {tool} command"), || have(tool), package);
}

/// Makes sure the file `path` (a header, say) exists, installing `package`
/// as [`ensure_tool`] does.
pub fn ensure_file(path: &str, package: &str) {
    ensure(path, || Path::new(path).exists(), package);
}

fn ensure(what: &str, present: impl Fn() -> bool, package: &str) {
    // One apt-get at a time (tests run in parallel threads).
    static APT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = APT.lock().unwrap_or_else(|e| e.into_inner());
    if present() {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root && have("apt-get") {
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends", package])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        if !install() {
            let _ = Command::new("apt-get").args(["update", "-qq"]).status();
            install();
        }
    }
    assert!(
        present(),
        "{what} is needed by this test: install the {package} package"
    );
}

/// Runs `cmd` in a process group of its own, its output going to files in a
/// scratch directory, for at most `limit`: when it has not finished by then,
/// the whole group (the program and every process it forked) is killed and
/// the error tells how long it ran and what it printed.
pub fn run_with_timeout(cmd: &mut Command, limit: std::time::Duration) -> Result<Output, String> {
    use std::os::unix::process::CommandExt;
    let dir = scratch("timeout");
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let file = |p: &Path| std::fs::File::create(p).expect("output file");
    let start = std::time::Instant::now();
    let mut child = cmd
        .process_group(0)
        .stdout(file(&out_path))
        .stderr(file(&err_path))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return Ok(Output {
                status,
                stdout: std::fs::read(&out_path).unwrap_or_default(),
                stderr: std::fs::read(&err_path).unwrap_or_default(),
            });
        }
        if start.elapsed() >= limit {
            // SAFETY: signals the process group we created for the child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            return Err(format!(
                "{cmd:?} did not finish in {limit:?} (killed)\n--- stdout\n{}\n--- stderr\n{}",
                read(&out_path),
                read(&err_path)
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
