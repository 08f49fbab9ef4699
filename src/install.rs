//! `oxmalloc install --prefix DIR`: puts the C library, its header, its
//! pkg-config file and this command under DIR, the way `make install` does:
//!
//! | file | what |
//! |---|---|
//! | `DIR/lib/liboxmalloc.so.0.1.0` | the shared library (`.so.0` and `.so` are symbolic links to it) |
//! | `DIR/lib/liboxmalloc.a` | the static library, when it was built next to the shared one |
//! | `DIR/include/oxmalloc.h` | the header (compiled into this command) |
//! | `DIR/lib/pkgconfig/oxmalloc.pc` | pkg-config, with DIR's paths |
//! | `DIR/bin/oxmalloc` | this command, which then finds `../lib/liboxmalloc.so` |
//!
//! Each file is written beside its place and renamed over it, so a library
//! or command in use by a running program is replaced, not overwritten.

use crate::library;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The version of the library, and its soname's major number.
const VERSION: &str = env!("CARGO_PKG_VERSION");
const HEADER: &str = include_str!("../crates/oxmalloc-capi/include/oxmalloc.h");
const PC_TEMPLATE: &str = include_str!("../crates/oxmalloc-capi/oxmalloc.pc.in");

/// Install the library (lib/), its header (include/), its pkg-config file
/// (lib/pkgconfig/) and this command (bin/) under a prefix.
#[derive(clap::Args)]
#[command(
    after_help = "Then: PKG_CONFIG_PATH=DIR/lib/pkgconfig pkg-config --cflags --libs oxmalloc\n\
                        and DIR/bin/oxmalloc run PROGRAM finds DIR/lib/liboxmalloc.so."
)]
pub struct InstallArgs {
    /// The directory to install under (created if missing), e.g. ~/.local
    /// or /usr/local.
    #[arg(long, value_name = "DIR")]
    prefix: PathBuf,
    /// The shared library to install (default: $OXMALLOC_LIB, or the one
    /// built with this command).
    #[arg(long, value_name = "PATH")]
    lib: Option<PathBuf>,
}

/// Installs; prints each file installed.
pub fn run(a: InstallArgs) -> Result<(), String> {
    let lib =
        library::find(a.lib.as_deref(), library::LIB_NAME).map_err(|e| format!("install: {e}"))?;
    let prefix = std::path::absolute(&a.prefix)
        .map_err(|e| format!("install: {}: {e}", a.prefix.display()))?;
    install(&prefix, &lib).map_err(|e| format!("install into {}: {e}", prefix.display()))
}

fn install(prefix: &Path, lib: &Path) -> io::Result<()> {
    let libdir = prefix.join("lib");
    put_library(&libdir, library::LIB_NAME, lib)?;
    // The hardened build, when it was built beside the library.
    let hardened = lib.with_file_name(library::HARDENED_NAME);
    if hardened.is_file() {
        put_library(&libdir, library::HARDENED_NAME, &hardened)?;
    }
    let archive = lib.with_file_name("liboxmalloc.a");
    if archive.is_file() {
        put(&libdir.join("liboxmalloc.a"), &fs::read(&archive)?, 0o644)?;
    }
    put(&prefix.join("include/oxmalloc.h"), HEADER.as_bytes(), 0o644)?;
    put(
        &libdir.join("pkgconfig/oxmalloc.pc"),
        pc_file(prefix).as_bytes(),
        0o644,
    )?;
    let exe = std::env::current_exe()?;
    put(&prefix.join("bin/oxmalloc"), &fs::read(exe)?, 0o755)
}

/// Installs shared library `lib` into `libdir` as NAME.VERSION, with the
/// links NAME.MAJOR (its soname) and NAME.
fn put_library(libdir: &Path, name: &str, lib: &Path) -> io::Result<()> {
    let major = VERSION.split('.').next().unwrap_or("0");
    let real = format!("{name}.{VERSION}");
    let soname = format!("{name}.{major}");
    put(&libdir.join(&real), &fs::read(lib)?, 0o755)?;
    link(&libdir.join(&soname), Path::new(&real))?;
    link(&libdir.join(name), Path::new(&soname))
}

/// `oxmalloc.pc` for the prefix.
fn pc_file(prefix: &Path) -> String {
    PC_TEMPLATE
        .replace("@PREFIX@", &prefix.display().to_string())
        .replace("@LIBDIR@", "${prefix}/lib")
        .replace("@VERSION@", VERSION)
}

/// Writes `path` (and its directory) with these bytes and permissions.
fn put(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = temp_beside(path);
    fs::write(&tmp, bytes)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    fs::rename(&tmp, path)?;
    println!("installed {}", path.display());
    Ok(())
}

/// Makes `path` a symbolic link to `target`, replacing what is there.
fn link(path: &Path, target: &Path) -> io::Result<()> {
    let tmp = temp_beside(path);
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    fs::rename(&tmp, path)?;
    println!("installed {} -> {}", path.display(), target.display());
    Ok(())
}

fn temp_beside(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".oxmalloc-install-{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pc_file_has_the_prefix_paths() {
        let pc = super::pc_file(std::path::Path::new("/opt/ox"));
        assert!(pc.contains("prefix=/opt/ox\n"), "{pc}");
        assert!(pc.contains("libdir=${prefix}/lib\n"), "{pc}");
        assert!(
            pc.contains(&format!("Version: {}\n", super::VERSION)),
            "{pc}"
        );
        assert!(!pc.contains('@'), "{pc}");
    }
}
