//! The allocators compared: oxmalloc (the `liboxmalloc.so` built with this
//! command), glibc's malloc (nothing preloaded) and the peers from Debian's
//! packages — gperftools' TCMalloc (`libtcmalloc-minimal4`), jemalloc
//! (`libjemalloc2`) and mimalloc (`libmimalloc2.0`) — each preloaded with
//! `LD_PRELOAD`.
//!
//! A peer that is not installed is reported with the package that provides
//! it; `--install-peers` installs the missing ones with `apt-get` (as root).

use std::path::{Path, PathBuf};
use std::process::Command;

/// One allocator that can be measured.
pub struct Allocator {
    pub name: &'static str,
    /// The library to preload; `None` for glibc.
    pub preload: Option<PathBuf>,
    /// The package version (or the library's for oxmalloc).
    pub version: String,
    /// A peer (everything but oxmalloc): ratios are to the best of these.
    pub peer: bool,
}

/// A peer that is not there, and why.
pub struct Missing {
    pub name: &'static str,
    pub reason: String,
}

pub struct Allocators {
    pub present: Vec<Allocator>,
    pub missing: Vec<Missing>,
}

/// Every allocator the suite knows, in report order.
pub const NAMES: [&str; 5] = ["oxmalloc", "glibc", "tcmalloc", "jemalloc", "mimalloc"];

/// A peer shipped by Debian: the library file names it may have and the
/// packages that may ship them (names differ between Debian releases).
struct Peer {
    name: &'static str,
    files: &'static [&'static str],
    packages: &'static [&'static str],
}

const PEERS: [Peer; 3] = [
    Peer {
        name: "tcmalloc",
        files: &["libtcmalloc_minimal.so.4"],
        packages: &["libtcmalloc-minimal4", "libtcmalloc-minimal4t64"],
    },
    Peer {
        name: "jemalloc",
        files: &["libjemalloc.so.2"],
        packages: &["libjemalloc2"],
    },
    Peer {
        name: "mimalloc",
        files: &["libmimalloc.so.2", "libmimalloc.so.3", "libmimalloc.so"],
        packages: &["libmimalloc2.0", "libmimalloc3"],
    },
];

/// `--allocators`' values: the names above (a usage error otherwise).
pub fn allocator_name(name: &str) -> Result<String, String> {
    if NAMES.contains(&name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "unknown allocator {name:?} (known: {})",
            NAMES.join(", ")
        ))
    }
}

/// Finds the allocators named in `wanted` (all when empty). `oxmalloc` is the
/// library at `lib`. With `install`, missing peers are installed first;
/// `note` receives what is being done.
pub fn find(
    lib: PathBuf,
    wanted: &[String],
    install: bool,
    mut note: impl FnMut(&str),
) -> Result<Allocators, String> {
    for w in wanted {
        allocator_name(w)?;
    }
    let wants = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let peers: Vec<&Peer> = PEERS.iter().filter(|p| wants(p.name)).collect();
    if install {
        let missing: Vec<&Peer> = peers
            .iter()
            .copied()
            .filter(|p| locate(p).is_none())
            .collect();
        if !missing.is_empty() {
            install_peers(&missing, &mut note)?;
        }
    }

    let mut present = Vec::new();
    let mut absent = Vec::new();
    if wants("oxmalloc") {
        if !lib.is_file() {
            return Err(format!("{} does not exist", lib.display()));
        }
        present.push(Allocator {
            name: "oxmalloc",
            version: format!("{} ({})", env!("CARGO_PKG_VERSION"), lib.display()),
            preload: Some(lib),
            peer: false,
        });
    }
    if wants("glibc") {
        present.push(Allocator {
            name: "glibc",
            preload: None,
            version: glibc_version(),
            peer: true,
        });
    }
    for p in peers {
        match locate(p) {
            Some(path) => present.push(Allocator {
                name: p.name,
                version: package_version(&path).unwrap_or_else(|| "unknown".into()),
                preload: Some(path),
                peer: true,
            }),
            None => absent.push(Missing {
                name: p.name,
                reason: format!(
                    "{} not found in {}; install the Debian package {} \
                     (or run `oxmalloc bench --install-peers` as root)",
                    p.files[0],
                    library_dirs()
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    p.packages[0]
                ),
            }),
        }
    }
    Ok(Allocators {
        present,
        missing: absent,
    })
}

/// Where shared libraries of the system live.
fn library_dirs() -> Vec<PathBuf> {
    let multiarch = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
    [
        multiarch.as_str(),
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}

fn locate(p: &Peer) -> Option<PathBuf> {
    library_dirs()
        .iter()
        .flat_map(|d| p.files.iter().map(move |f| d.join(f)))
        .find(|f| f.is_file())
}

/// Installs the first known package of every peer with apt-get.
fn install_peers(missing: &[&Peer], note: &mut impl FnMut(&str)) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("--install-peers needs root (it runs apt-get install)".into());
    }
    let known = |pkg: &str| {
        Command::new("apt-cache")
            .args(["show", pkg])
            .output()
            .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
    };
    let pick = |p: &Peer| p.packages.iter().copied().find(|pkg| known(pkg));
    if missing.iter().any(|p| pick(p).is_none()) {
        note("apt-get update");
        run_apt(&["update", "-qq"])?;
    }
    let mut pkgs = Vec::new();
    for p in missing {
        pkgs.push(pick(p).ok_or_else(|| {
            format!(
                "apt-get knows none of the packages {} (for {})",
                p.packages.join(", "),
                p.name
            )
        })?);
    }
    note(&format!("apt-get install {}", pkgs.join(" ")));
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(pkgs);
    run_apt(&args)
}

fn run_apt(args: &[&str]) -> Result<(), String> {
    let out = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "apt-get {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The version of the Debian package that ships `path`, per dpkg.
fn package_version(path: &Path) -> Option<String> {
    let out = Command::new("dpkg-query")
        .arg("-S")
        .arg(path)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let pkg = text.lines().next()?.split(": ").next()?.to_string();
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", &pkg])
        .output()
        .ok()?;
    let version = String::from_utf8(out.stdout).ok()?;
    Some(format!("{pkg} {version}"))
}

#[cfg(target_env = "gnu")]
fn glibc_version() -> String {
    // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
    let v = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    format!("glibc {}", v.to_string_lossy())
}

#[cfg(not(target_env = "gnu"))]
fn glibc_version() -> String {
    "the C library's malloc".into()
}
