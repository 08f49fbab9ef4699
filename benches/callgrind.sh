#!/usr/bin/env bash
# Instructions per malloc/free pair, per allocator and size, under callgrind
# (`heap`: an oxmalloc Heap bound to an exclusive region):
# (Ir(N2) - Ir(N1)) / (N2 - N1), which cancels start-up and first-call set-up.
#
#   bash benches/callgrind.sh [SIZES...]      (default: 16 64 256 1024 4096 32768)
#
# Builds `examples/pair.rs` with the release profile into $CARGO_TARGET_DIR
# (default: target).
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-100000}
N2=${N2:-200000}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(16 64 256 1024 4096 32768)
allocators=(oxmalloc heap glibc mimalloc jemalloc)

cargo build -q --release --example pair
bin="${CARGO_TARGET_DIR:-target}/release/examples/pair"

ir() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" "$3" 2>&1 |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}

printf '%-8s' size
printf ' %10s' "${allocators[@]}"
printf '   (instructions per pair; N1=%s N2=%s)\n' "$N1" "$N2"
for s in "${sizes[@]}"; do
  printf '%-8s' "$s"
  for a in "${allocators[@]}"; do
    i1=$(ir "$a" "$s" "$N1")
    i2=$(ir "$a" "$s" "$N2")
    printf ' %10s' "$(awk -v a="$i1" -v b="$i2" -v n1="$N1" -v n2="$N2" \
      'BEGIN { printf "%.1f", (b - a) / (n2 - n1) }')"
  done
  printf '\n'
done
