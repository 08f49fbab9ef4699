//! A library loaded with `dlopen` allocates while the program frees, and the
//! reverse, from several threads, with allocations in the library's
//! constructor and destructor, loaded and unloaded three times
//! (`tests/c/dl_main.c`, `tests/c/dl_lib.c`).

mod support;

#[test]
fn blocks_cross_a_dlopen_boundary_both_ways() {
    let dir = support::scratch("dlopen");
    let lib = support::compile_into(&dir, "dl_lib.c", "dl_lib.so", &["-shared", "-fPIC"]);
    let prog = support::compile_into(&dir, "dl_main.c", "dl_main", &["-ldl"]);
    support::run_ok(support::preloaded(&prog).arg(&lib));
}
