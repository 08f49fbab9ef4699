//! Where `liboxmalloc.so` (or `liboxmalloc-hardened.so`, built beside it in
//! release builds) is: the library `oxmalloc run` preloads and `oxmalloc
//! install` copies.
//!
//! In order: `--lib PATH`, `$OXMALLOC_LIB` (not for the hardened build), then
//! next to this executable:
//! `deps/` and its own directory (a build tree: the command's package depends
//! on `oxmalloc-capi`, so Cargo builds `liboxmalloc.so` into
//! `target/<profile>/deps` with the command, and copies it to
//! `target/<profile>` when the library is built as a package of its own),
//! then `../lib` (an installed command, see `oxmalloc install`). A command
//! installed by `cargo install` has none of these: the error says how to get
//! the library.

use std::path::{Path, PathBuf};

/// The name of the shared library.
pub const LIB_NAME: &str = "liboxmalloc.so";
/// The name of the hardened build of the library.
pub const HARDENED_NAME: &str = "liboxmalloc-hardened.so";

/// The library to use (`name`: [`LIB_NAME`] or [`HARDENED_NAME`]), as an
/// absolute path without symbolic links.
pub fn find(explicit: Option<&Path>, name: &str) -> Result<PathBuf, String> {
    let chosen = match explicit.map(Path::to_path_buf).or_else(|| {
        // $OXMALLOC_LIB names the normal library only.
        (name == LIB_NAME)
            .then(|| std::env::var_os("OXMALLOC_LIB").map(PathBuf::from))
            .flatten()
    }) {
        Some(p) if p.is_file() => p,
        Some(p) => return Err(format!("{} does not exist", p.display())),
        None => {
            let candidates = beside_executable(name)?;
            match candidates.iter().find(|p| p.is_file()) {
                Some(p) => p.clone(),
                None => return Err(not_found(name, &candidates)),
            }
        }
    };
    chosen
        .canonicalize()
        .map_err(|e| format!("{}: {e}", chosen.display()))
}

fn beside_executable(name: &str) -> Result<Vec<PathBuf>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate myself: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    // deps/ first: it is rebuilt with the executable, the copy may be older.
    Ok(vec![
        dir.join("deps").join(name),
        dir.join(name),
        dir.join("../lib").join(name),
    ])
}

fn not_found(name: &str, looked_at: &[PathBuf]) -> String {
    let places: Vec<String> = looked_at.iter().map(|p| p.display().to_string()).collect();
    if name == HARDENED_NAME {
        return format!(
            "{name} not found (looked at {}).\n\
             Release builds make it beside liboxmalloc.so (unless OXMALLOC_SKIP_HARDENED \
             was set): cargo build --release, then install both with \
             target/release/oxmalloc install --prefix DIR; or pass --lib PATH.",
            places.join(", ")
        );
    }
    format!(
        "{LIB_NAME} not found (looked at {}).\n\
         A command installed with `cargo install` comes without the library. From the \
         source tree, build both and install them together:\n    \
         cargo build --release && target/release/oxmalloc install --prefix ~/.local\n\
         (then ~/.local/bin/oxmalloc finds ~/.local/lib/{LIB_NAME}), or pass --lib PATH, \
         or set OXMALLOC_LIB=PATH.",
        places.join(", ")
    )
}
