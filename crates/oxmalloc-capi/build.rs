//! Puts `include/oxmalloc.h` and a pkg-config file `oxmalloc.pc` next to the
//! library in the target directory (`target/<profile>/include/oxmalloc.h`,
//! `target/<profile>/oxmalloc.pc`), so C programs can build against the
//! library straight from the build tree:
//! `PKG_CONFIG_PATH=target/release pkg-config --cflags --libs oxmalloc`.
//! `oxmalloc.pc.in` is the template (`oxmalloc install` fills it too).

use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    println!("cargo:rerun-if-changed=include/oxmalloc.h");
    println!("cargo:rerun-if-changed=oxmalloc.pc.in");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out.
    let Some(profile_dir) = out.ancestors().nth(3) else {
        panic!("unexpected OUT_DIR layout: {}", out.display());
    };
    install(&manifest, profile_dir).unwrap_or_else(|e| {
        panic!(
            "cannot write the header and oxmalloc.pc into {}: {e}",
            profile_dir.display()
        )
    });
}

fn install(manifest: &Path, profile_dir: &Path) -> std::io::Result<()> {
    let include = profile_dir.join("include");
    fs::create_dir_all(&include)?;
    fs::copy(
        manifest.join("include/oxmalloc.h"),
        include.join("oxmalloc.h"),
    )?;
    // The library is in deps/ whenever it is built; it is also copied to
    // the profile directory when built as a package of its own
    // (cargo build -p oxmalloc-capi).
    let pc = fs::read_to_string(manifest.join("oxmalloc.pc.in"))?
        .replace("@prefix@", &profile_dir.display().to_string())
        .replace("@libdir@", "${prefix}/deps")
        .replace(
            "@version@",
            &env::var("CARGO_PKG_VERSION").unwrap_or_default(),
        );
    fs::write(profile_dir.join("oxmalloc.pc"), pc)
}
