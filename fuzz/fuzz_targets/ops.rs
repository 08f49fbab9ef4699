//! libFuzzer target: operation sequences against oxmalloc and its model
//! (see the crate `oxmalloc-fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oxmalloc_fuzz::run(data));
