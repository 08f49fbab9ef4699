//! Links the cdylib with `-z nodelete`: a library whose global allocator is
//! oxmalloc must stay mapped after `dlclose`, because the threads that
//! allocated through it run oxmalloc's thread-exit hook (a pthread key
//! destructor) when they end, and other code may still free its blocks.
//! With this flag `dlclose` returns 0 and the library stays loaded; the next
//! `dlopen` returns the same instance.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
