//! `scripts/install.sh --prefix DIR`: installs the library (with its soname
//! links), the header, `oxmalloc.pc` with the installed paths and the
//! command; a C program linked through `pkg-config` against the installed
//! library runs on it, and the installed command preloads it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `target/<profile>`, from the command built for this test.
fn profile_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_oxmalloc"))
        .parent()
        .expect("target/<profile>")
        .to_path_buf()
}

fn check(cmd: &mut Command) -> Output {
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

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Installs pkg-config when it is missing and apt-get can (CI installs it).
fn ensure_pkg_config() {
    let have = || Command::new("pkg-config").arg("--version").output().is_ok();
    if !have() {
        let _ = Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "pkg-config",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    assert!(have(), "pkg-config is needed by this test");
}

/// Runs the install script into a fresh prefix with the files built with
/// this test.
fn install() -> PathBuf {
    let prefix =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("prefix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&prefix);
    let deps = profile_dir().join("deps");
    check(
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh"))
            .arg("--prefix")
            .arg(&prefix)
            .arg("--lib")
            .arg(deps.join("liboxmalloc.so"))
            .arg("--static-lib")
            .arg(deps.join("liboxmalloc.a"))
            .arg("--bin")
            .arg(env!("CARGO_BIN_EXE_oxmalloc"))
            .arg("--source")
            .arg(env!("CARGO_MANIFEST_DIR")),
    );
    prefix
}

#[test]
fn installed_library_links_through_pkg_config_and_runs() {
    ensure_pkg_config();
    let prefix = install();
    let lib = prefix.join("lib");
    let version = env!("CARGO_PKG_VERSION");

    // The files and the soname links.
    let real = format!("liboxmalloc.so.{version}");
    assert!(lib.join(&real).is_file());
    assert_eq!(
        std::fs::read_link(lib.join("liboxmalloc.so.0")).unwrap(),
        Path::new(&real)
    );
    assert_eq!(
        std::fs::read_link(lib.join("liboxmalloc.so")).unwrap(),
        Path::new("liboxmalloc.so.0")
    );
    assert!(lib.join("liboxmalloc.a").is_file());
    assert!(prefix.join("include/oxmalloc.h").is_file());
    assert!(prefix.join("bin/oxmalloc").is_file());
    let dynamic = text(&check(
        Command::new("readelf").arg("-d").arg(lib.join(&real)),
    ));
    assert!(
        dynamic.contains("Library soname: [liboxmalloc.so.0]"),
        "{dynamic}"
    );

    // The .pc file names the installed paths.
    let pkg = |args: &[&str]| {
        let out = check(
            Command::new("pkg-config")
                .args(args)
                .arg("oxmalloc")
                .env("PKG_CONFIG_PATH", lib.join("pkgconfig")),
        );
        text(&out).trim().to_string()
    };
    let cflags = pkg(&["--cflags"]);
    let libs = pkg(&["--libs"]);
    assert_eq!(cflags, format!("-I{}", prefix.join("include").display()));
    assert_eq!(libs, format!("-L{} -loxmalloc", lib.display()));
    assert_eq!(pkg(&["--modversion"]), version);

    // A C program built with those flags, against the installed library.
    let dir = prefix.join("test");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("main.c");
    std::fs::write(
        &src,
        r#"#include <stdio.h>
#include <stdlib.h>
#include <oxmalloc.h>
int main(void) {
    void *p = malloc(1000);
    size_t heap = 0;
    if (MallocExtension_GetOwnership(p) != MallocExtension_kOwned) return 1;
    if (!MallocExtension_GetNumericProperty("generic.heap_size", &heap) || heap == 0) return 2;
    free(p);
    printf("heap %zu\nok\n", heap);
    return 0;
}
"#,
    )
    .unwrap();
    let exe = dir.join("main");
    check(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "gcc -Wall -Werror {src} -o {exe} $(pkg-config --cflags --libs oxmalloc)",
                src = src.display(),
                exe = exe.display()
            ))
            .env("PKG_CONFIG_PATH", lib.join("pkgconfig")),
    );
    let needed = text(&check(Command::new("readelf").arg("-d").arg(&exe)));
    assert!(
        needed.contains("Shared library: [liboxmalloc.so.0]"),
        "{needed}"
    );
    let run = |cmd: &mut Command| {
        let out = check(cmd.env("LD_LIBRARY_PATH", &lib));
        assert!(text(&out).ends_with("ok\n"), "{}", text(&out));
    };
    run(&mut Command::new(&exe));
    let maps = text(&check(
        Command::new("ldd").arg(&exe).env("LD_LIBRARY_PATH", &lib),
    ));
    assert!(
        maps.contains(&format!("{}/liboxmalloc.so.0", lib.display())),
        "{maps}"
    );

    // The installed command preloads the installed library.
    let out = check(Command::new(prefix.join("bin/oxmalloc")).args([
        "run",
        "--",
        "sh",
        "-c",
        "echo \"$LD_PRELOAD\"",
    ]));
    let preload = text(&out);
    let installed = lib.join(&real).canonicalize().unwrap();
    assert_eq!(preload.trim(), installed.display().to_string());
}

#[test]
fn install_refuses_missing_files() {
    let prefix = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("prefix-missing-{}", std::process::id()));
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh"))
        .arg("--prefix")
        .arg(&prefix)
        .args(["--lib", "/nonexistent/liboxmalloc.so"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/liboxmalloc.so does not exist")
    );
    assert!(
        !prefix.exists(),
        "nothing is written when a file is missing"
    );
}
