//! `oxmalloc install --prefix DIR`: the library with its version symlinks,
//! the header, a pkg-config file with DIR's paths and the command; a C
//! program builds through pkg-config against the installed library and runs
//! on it, and the installed command finds its library.

use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("oxmalloc-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn check(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn install_then_build_through_pkg_config() {
    let prefix = scratch().join("prefix");
    let version = env!("CARGO_PKG_VERSION");
    for _ in 0..2 {
        // Twice: installing over an installation works.
        let out = check(
            Command::new(env!("CARGO_BIN_EXE_oxmalloc"))
                .args(["install", "--prefix"])
                .arg(&prefix),
        );
        assert!(out.contains("installed "), "{out}");
    }
    let lib = prefix.join("lib");
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
    // The hardened build, which release builds make beside the library.
    let hardened = format!("liboxmalloc-hardened.so.{version}");
    assert!(lib.join(&hardened).is_file());
    assert_eq!(
        std::fs::read_link(lib.join("liboxmalloc-hardened.so")).unwrap(),
        Path::new("liboxmalloc-hardened.so.0")
    );
    assert!(prefix.join("include/oxmalloc.h").is_file());
    assert!(prefix.join("bin/oxmalloc").is_file());

    // pkg-config answers with the installed paths.
    let pkg = |what: &str| {
        check(
            Command::new("pkg-config")
                .args([what, "oxmalloc"])
                .env("PKG_CONFIG_PATH", lib.join("pkgconfig")),
        )
    };
    let prefix_s = prefix.to_str().unwrap();
    assert_eq!(pkg("--modversion").trim(), version);
    assert_eq!(pkg("--cflags").trim(), format!("-I{prefix_s}/include"));
    assert_eq!(pkg("--libs").trim(), format!("-L{prefix_s}/lib -loxmalloc"));

    let exe = prefix.join("installed");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/installed.c");
    let mut cc = Command::new("gcc");
    cc.args(["-O1", "-Wall", "-Werror", "-fno-builtin"])
        .args(pkg("--cflags").split_whitespace())
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .args(pkg("--libs").split_whitespace());
    check(&mut cc);
    let out = check(Command::new(&exe).env("LD_LIBRARY_PATH", &lib));
    assert_eq!(out, "ok\n");
    // The program loaded the installed library.
    let ldd = check(Command::new("ldd").arg(&exe).env("LD_LIBRARY_PATH", &lib));
    assert!(
        ldd.contains(&format!("{prefix_s}/lib/liboxmalloc.so")),
        "{ldd}"
    );

    // The installed command finds ../lib.
    let out = check(
        Command::new(prefix.join("bin/oxmalloc"))
            .args(["run", "sh", "-c", "echo $LD_PRELOAD"])
            .env_remove("OXMALLOC_LIB"),
    );
    assert_eq!(out.trim(), lib.join(&real).to_str().unwrap());
}
