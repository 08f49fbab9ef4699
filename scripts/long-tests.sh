#!/usr/bin/env bash
# The long forms of the reliability tests (docs/TESTING.md), one after the
# other; stops at the first failure.
#
#   scripts/long-tests.sh            # about 25 minutes on 2 cores
#   FUZZ_SECS=60 SOAK_SECS=60 scripts/long-tests.sh   # a quick pass
#
#  1. the fuzz corpus replay (as in `cargo test`);
#  2. extended fuzzing for FUZZ_SECS (default 600): libFuzzer through
#     `cargo +nightly fuzz run ops` when cargo-fuzz and a nightly toolchain
#     are installed (starting from fuzz/corpus/ops, new inputs kept in
#     fuzz/target/new-corpus), else the stable random explorer; a failing
#     input is written to fuzz/artifacts/ops/;
#  3. the long valgrind memcheck form (alignment sweep, fork test,
#     4 x 1,000,000 stress operations under memcheck);
#  4. the soak run for SOAK_SECS (default 600);
#  5. the misuse table of docs/MISUSE.md, when the peer allocators are
#     installed (libtcmalloc-minimal4 libjemalloc2 libmimalloc2.0).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECS=${FUZZ_SECS:-600}
SOAK_SECS=${SOAK_SECS:-600}
step() { printf '\n=== %s\n' "$*"; }

step "build"
cargo build --release --workspace --all-targets

step "fuzz corpus replay"
cargo test --release -p oxmalloc-fuzz --test replay

if command -v cargo-fuzz >/dev/null 2>&1 && rustup run nightly rustc --version >/dev/null 2>&1; then
  step "libFuzzer for ${FUZZ_SECS} s (new inputs go to fuzz/target/new-corpus)"
  mkdir -p fuzz/target/new-corpus
  (cd fuzz && cargo +nightly fuzz run ops target/new-corpus corpus/ops -- \
    -max_total_time="$FUZZ_SECS" -rss_limit_mb=4096 -max_len=8192 -timeout=30 \
    -print_final_stats=1)
else
  step "random explorer for ${FUZZ_SECS} s (no cargo-fuzz or nightly toolchain)"
  cargo run --release -p oxmalloc-fuzz --bin oxmalloc-fuzz-explore -- --secs "$FUZZ_SECS"
fi

step "valgrind memcheck, long form"
cargo test --release -p oxmalloc-capi --test valgrind -- --include-ignored

step "soak for ${SOAK_SECS} s"
OXMALLOC_SOAK_SECS="$SOAK_SECS" cargo test --release -p oxmalloc --test soak -- --nocapture

if [ -e /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ]; then
  step "misuse table (docs/MISUSE.md)"
  python3 scripts/misuse-table.py --runs 3
fi

step "all long tests passed"
