//! glibc's behaviour at the edges (`tests/c/glibc_semantics.c`): malloc(0),
//! realloc edges, errno on every failure, overflow in calloc, reallocarray,
//! pvalloc and aligned sizes, posix_memalign's EINVAL, alignment rounding,
//! errno kept by free, malloc_usable_size, the `__libc_*` aliases.

mod support;

#[test]
fn c_functions_behave_like_glibc() {
    let prog = support::compile_linked("glibc_semantics.c");
    support::run_ok(&mut std::process::Command::new(&prog));
    // Preloaded as well as linked.
    support::run_ok(&mut support::preloaded(&prog));
}
