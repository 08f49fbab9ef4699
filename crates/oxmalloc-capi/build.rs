//! Gives `liboxmalloc.so` its soname, `liboxmalloc.so.0`, links it with
//! `-z nodelete` (`dlclose` never unmaps it: threads that used a library
//! loaded with `dlopen` run its thread-exit hook when they end, and blocks it
//! handed out may still be freed), and lays out the build tree as an
//! installed library would be:
//!
//! - `target/<profile>/deps/liboxmalloc.so.0`, a link to the library, which
//!   is the name programs linked with `-loxmalloc` ask the loader for;
//! - `target/<profile>/include/oxmalloc.h` and `target/<profile>/oxmalloc.pc`
//!   (from `oxmalloc.pc.in`, which `oxmalloc install` fills in for an
//!   installed library), so C programs can build against the library straight
//!   from the build tree:
//!   `PKG_CONFIG_PATH=target/release pkg-config --cflags --libs oxmalloc`;
//! - in release builds, `target/release/deps/liboxmalloc-hardened.so`: this
//!   package built again with the `hardened` feature (by a nested `cargo
//!   build` into `target/hardened`, since one build cannot hold the engine
//!   with and without the feature), the library `oxmalloc run --hardened`
//!   preloads. `OXMALLOC_SKIP_HARDENED=1` skips it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// The soname: major version 0 (see `oxmalloc install`).
const SONAME: &str = "liboxmalloc.so.0";
/// The hardened library's name and soname.
const HARDENED: &str = "liboxmalloc-hardened.so";
const HARDENED_SONAME: &str = "liboxmalloc-hardened.so.0";

fn main() {
    println!("cargo:rerun-if-changed=include/oxmalloc.h");
    println!("cargo:rerun-if-changed=oxmalloc.pc.in");
    println!("cargo:rerun-if-changed=build.rs");
    let hardened = env::var_os("CARGO_FEATURE_HARDENED").is_some();
    let soname = if hardened { HARDENED_SONAME } else { SONAME };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out.
    let Some(profile_dir) = out.ancestors().nth(3) else {
        panic!("unexpected OUT_DIR layout: {}", out.display());
    };
    if hardened {
        return;
    }
    install(&manifest, profile_dir).unwrap_or_else(|e| {
        panic!(
            "cannot write the soname link, the header and oxmalloc.pc into {}: {e}",
            profile_dir.display()
        )
    });
    println!("cargo:rerun-if-env-changed=OXMALLOC_SKIP_HARDENED");
    if env::var("PROFILE").as_deref() == Ok("release")
        && env::var_os("OXMALLOC_SKIP_HARDENED").is_none()
    {
        build_hardened(&manifest, profile_dir);
    }
}

/// Builds this package with the `hardened` feature into `target/hardened`
/// and copies the library to `deps/liboxmalloc-hardened.so`.
fn build_hardened(manifest: &Path, profile_dir: &Path) {
    // Rebuilt whenever the library's or the engine's sources change.
    for dir in [
        "src",
        "../oxmalloc/src",
        "../oxmalloc/Cargo.toml",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={dir}");
    }
    let target = profile_dir
        .parent()
        .expect("the profile directory is inside the target directory")
        .join("hardened");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--features",
            "hardened",
            "--manifest-path",
        ])
        .arg(manifest.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {HARDENED}: {e}"));
    assert!(status.success(), "building {HARDENED} failed: {status}");
    let built = target.join("release").join("liboxmalloc.so");
    let dest = profile_dir.join("deps").join(HARDENED);
    // Through a temporary name, so that a program preloading the library
    // meanwhile never sees half a file.
    let tmp = dest.with_extension("so.tmp");
    fs::copy(&built, &tmp)
        .and_then(|_| fs::rename(&tmp, &dest))
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", built.display(), dest.display()));
}

fn install(manifest: &Path, profile_dir: &Path) -> std::io::Result<()> {
    // The library is linked after this script runs: the link dangles until
    // then.
    let link = profile_dir.join("deps").join(SONAME);
    fs::create_dir_all(profile_dir.join("deps"))?;
    if fs::read_link(&link).ok().as_deref() != Some(Path::new("liboxmalloc.so")) {
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink("liboxmalloc.so", &link)?;
    }
    let include = profile_dir.join("include");
    fs::create_dir_all(&include)?;
    fs::copy(
        manifest.join("include/oxmalloc.h"),
        include.join("oxmalloc.h"),
    )?;
    // The library is in deps/ whenever it is built (it is also copied to
    // the profile directory when built as a package of its own).
    let pc = fs::read_to_string(manifest.join("oxmalloc.pc.in"))?
        .replace("@PREFIX@", &profile_dir.display().to_string())
        .replace("@LIBDIR@", "${prefix}/deps")
        .replace(
            "@VERSION@",
            &env::var("CARGO_PKG_VERSION").unwrap_or_default(),
        );
    fs::write(profile_dir.join("oxmalloc.pc"), pc)
}
