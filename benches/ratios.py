#!/usr/bin/env python3
"""Ratios of oxmalloc to each peer, from one `cargo bench --bench alloc` run.

    python3 benches/ratios.py [CRITERION_DIR] [--markdown]

CRITERION_DIR defaults to target/criterion (use $CARGO_TARGET_DIR/criterion
when the target directory is elsewhere). For each benchmark group (one case:
`pair-64`, `batch-1024`, `mixed-4t`, ...) it reads every function's
`new/estimates.json` and prints oxmalloc's time divided by each peer's:
below 1.0 means oxmalloc is faster. Where the group has `oxmalloc-heap` (a
heap bound to an exclusive region), the last column is that heap's
throughput relative to the global heap's (oxmalloc time / heap time: 1.0 is
the same speed; the goal is at least 0.95). The estimate used is criterion's slope
(linear sampling) when present, else the mean; both come from the same run,
so the ratios survive a noisy machine better than absolute times do.
"""

import json
import sys
from pathlib import Path

PEERS = ["glibc", "mimalloc", "jemalloc"]
BASE = "oxmalloc"
HEAP = "oxmalloc-heap"


def estimate(path):
    e = json.loads(path.read_text())
    for key in ("slope", "mean"):
        if e.get(key):
            return e[key]["point_estimate"]
    raise ValueError(f"no estimate in {path}")


def case_key(name):
    """pair-16 < pair-64 < ... < batch-16 < ... < mixed-2t < mixed-4t."""
    kind, _, arg = name.partition("-")
    order = {"pair": 0, "batch": 1, "mixed": 2}.get(kind, 3)
    digits = "".join(ch for ch in arg if ch.isdigit())
    return (order, kind, int(digits) if digits else 0, name)


def collect(root):
    """{group: {function: ns}} from criterion's `new/benchmark.json` files."""
    cases = {}
    for bench in root.glob("**/new/benchmark.json"):
        b = json.loads(bench.read_text())
        group, function = b.get("group_id"), b.get("function_id")
        if not group or not function:
            continue
        cases.setdefault(group, {})[function] = estimate(bench.parent / "estimates.json")
    return cases


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def main(argv):
    markdown = "--markdown" in argv
    args = [a for a in argv if not a.startswith("--")]
    root = Path(args[0]) if args else Path("target/criterion")
    if not root.is_dir():
        sys.exit(f"ratios.py: no criterion output in {root}")
    cases = collect(root)
    rows = []
    for group in sorted(cases, key=case_key):
        times = cases[group]
        if BASE not in times:
            continue
        row = [group, fmt_time(times[BASE])]
        for peer in PEERS:
            if peer in times:
                r = times[BASE] / times[peer]
                faster = "ox" if r < 1 else peer
                row.append(f"{r:.2f} ({faster})" if r >= 0.1 else f"{r:.3f} ({faster})")
            else:
                row.append("-")
        row.append(f"{times[BASE] / times[HEAP]:.2f}" if HEAP in times else "-")
        rows.append(row)
    if not rows:
        sys.exit(f"ratios.py: no group with an {BASE} result in {root}")
    head = ["case", f"{BASE} time"] + [f"ox/{p}" for p in PEERS] + ["heap/global throughput"]
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        for r in [head] + rows:
            print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))
    print("\nratio = oxmalloc time / peer time (below 1: oxmalloc faster; "
          "the faster one in parentheses)")


if __name__ == "__main__":
    main(sys.argv[1:])
