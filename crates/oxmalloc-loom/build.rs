//! The engine's files this crate compiles switch to loom's atomics under
//! `cfg(loom)`; this crate is the only one built with it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
    println!("cargo::rustc-cfg=loom");
}
