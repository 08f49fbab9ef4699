//! Where `liboxmalloc.so` is: the library `oxmalloc run` preloads and
//! `oxmalloc install` copies.
//!
//! In order: `--lib PATH`, `$OXMALLOC_LIB`, then next to this executable:
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

/// The library to use, as an absolute path without symbolic links.
pub fn find(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let chosen = match explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("OXMALLOC_LIB").map(PathBuf::from))
    {
        Some(p) if p.is_file() => p,
        Some(p) => return Err(format!("{} does not exist", p.display())),
        None => {
            let candidates = beside_executable()?;
            match candidates.iter().find(|p| p.is_file()) {
                Some(p) => p.clone(),
                None => return Err(not_found(&candidates)),
            }
        }
    };
    chosen
        .canonicalize()
        .map_err(|e| format!("{}: {e}", chosen.display()))
}

fn beside_executable() -> Result<Vec<PathBuf>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate myself: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    // deps/ first: it is rebuilt with the executable, the copy may be older.
    Ok(vec![
        dir.join("deps").join(LIB_NAME),
        dir.join(LIB_NAME),
        dir.join("../lib").join(LIB_NAME),
    ])
}

fn not_found(looked_at: &[PathBuf]) -> String {
    let places: Vec<String> = looked_at.iter().map(|p| p.display().to_string()).collect();
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
