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
//!   `PKG_CONFIG_PATH=target/release pkg-config --cflags --libs oxmalloc`.

use std::path::{Path, PathBuf};
use std::{env, fs};

/// The soname: major version 0 (see `oxmalloc install`).
const SONAME: &str = "liboxmalloc.so.0";

fn main() {
    println!("cargo:rerun-if-changed=include/oxmalloc.h");
    println!("cargo:rerun-if-changed=oxmalloc.pc.in");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{SONAME}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out.
    let Some(profile_dir) = out.ancestors().nth(3) else {
        panic!("unexpected OUT_DIR layout: {}", out.display());
    };
    install(&manifest, profile_dir).unwrap_or_else(|e| {
        panic!(
            "cannot write the soname link, the header and oxmalloc.pc into {}: {e}",
            profile_dir.display()
        )
    });
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
