//! Alignment of every allocation function at many sizes
//! (`tests/c/alignment.c`), with the library preloaded.

mod support;

#[test]
fn every_function_aligns_at_every_size() {
    let dir = support::scratch("alignment");
    let prog = support::compile_into(&dir, "alignment.c", "alignment", &[]);
    support::run_ok(&mut support::preloaded(&prog));
}
