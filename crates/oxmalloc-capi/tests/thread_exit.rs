//! Allocation from thread destructors that run after the allocator's own
//! (`tests/c/thread_exit.c`).

mod support;

#[test]
fn destructors_after_ours_can_allocate() {
    let dir = support::scratch("thread_exit");
    let prog = support::compile_into(&dir, "thread_exit.c", "thread_exit", &[]);
    support::run_ok(&mut support::preloaded(&prog));
}
