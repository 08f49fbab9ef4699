//! Every C++ operator new / delete (`tests/c/operators.cc`): the symbols
//! resolve to the library, blocks are oxmalloc's and aligned, a throwing
//! new_handler unwinds through the library, and with no handler a failing
//! `operator new` throws `std::bad_alloc` (also under an address-space
//! limit, from `new[]` and `std::vector`).

mod support;

#[test]
fn every_operator_form_is_ours() {
    let prog = support::compile_linked("operators.cc");
    support::run_ok(&mut std::process::Command::new(&prog));
    support::run_ok(&mut support::preloaded(&prog));
}

#[test]
fn failing_new_throws_bad_alloc_under_an_address_space_limit() {
    let prog = support::compile_linked("operators.cc");
    support::run_ok(std::process::Command::new(&prog).arg("rlimit"));
    support::run_ok(support::preloaded(&prog).arg("rlimit"));
}
