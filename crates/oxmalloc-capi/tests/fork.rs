//! A multi-threaded program forks 100 times while its other threads allocate
//! and hold stdio locks; every child allocates and exits (`tests/c/fork.c`).

mod support;

#[test]
fn children_of_a_multithreaded_parent_can_allocate() {
    let dir = support::scratch("fork");
    let prog = support::compile_into(&dir, "fork.c", "fork", &[]);
    support::run_ok(&mut support::preloaded(&prog));
}
