#!/usr/bin/env python3
"""The misuse suite against several allocators: prints the table of
docs/MISUSE.md (scenario x allocator) as Markdown.

    python3 scripts/misuse-table.py [--runs N] [--lib NAME=PATH ...]

Compiles crates/oxmalloc-capi/tests/c/misuse.c and misuse_cxx.cc, runs every
scenario under each allocator with LD_PRELOAD (glibc: nothing preloaded),
each `--runs` times (default 5), and classifies each run:

  caught      stopped (abort or error exit) with a message on stderr before
              the scenario printed `survived`
  warned      printed a message on stderr but went on (`survived`)
  not caught  survived silently
  crashed     killed by another signal (SIGSEGV, SIGBUS, ...), or an abort
              with nothing on stderr
  hung        still running after 20 s
  n/a         the allocator lacks the function (exit 77: free_sized)
  ok          the `clean` control survived (anything else there is FAILED)

A cell with mixed outcomes over the runs says so (`caught 4/5, crashed 1/5`).
Default allocators: glibc, gperftools (libtcmalloc_minimal.so.4), jemalloc
(libjemalloc.so.2), mimalloc (libmimalloc.so.2.0) from Debian's packages
libtcmalloc-minimal4 libjemalloc2 libmimalloc2.0, and oxmalloc
($CARGO_TARGET_DIR or target)/release/deps/liboxmalloc.so, plus
liboxmalloc-hardened.so when it exists. Allocators whose library is missing
are left out with a note on stderr.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CDIR = os.path.join(ROOT, "crates/oxmalloc-capi/tests/c")
C_SCENARIOS = [
    "double-free", "delayed-double-free", "interleaved-double-free",
    "invalid-free", "stack-free", "unaligned-free", "interior-free",
    "interior-free-large", "uaf-write", "overflow", "wrong-size-free-sized",
    "clean",
]
CXX_SCENARIOS = ["wrong-size-sized-delete", "clean"]
LIBDIR = "/usr/lib/x86_64-linux-gnu"


def default_libs():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    deps = os.path.join(target, "release/deps")
    return [
        ("glibc", None),
        ("gperftools", os.path.join(LIBDIR, "libtcmalloc_minimal.so.4")),
        ("jemalloc", os.path.join(LIBDIR, "libjemalloc.so.2")),
        ("mimalloc", os.path.join(LIBDIR, "libmimalloc.so.2.0")),
        ("oxmalloc", os.path.join(deps, "liboxmalloc.so")),
        ("oxmalloc hardened", os.path.join(deps, "liboxmalloc-hardened.so")),
    ]


def compile_all(tmp):
    flags = ["-O1", "-g", "-Wall", "-Werror", "-fno-builtin", "-pthread"]
    c = os.path.join(tmp, "misuse")
    cxx = os.path.join(tmp, "misuse_cxx")
    subprocess.run(["gcc", *flags, os.path.join(CDIR, "misuse.c"), "-o", c, "-ldl"], check=True)
    subprocess.run(["g++", *flags, os.path.join(CDIR, "misuse_cxx.cc"), "-o", cxx], check=True)
    return c, cxx


def classify(prog, scenario, lib):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if lib:
        env["LD_PRELOAD"] = lib
    try:
        r = subprocess.run([prog, scenario], env=env, capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "hung"
    out = r.stdout.decode(errors="replace")
    err = r.stderr.decode(errors="replace").strip()
    if r.returncode == 77:
        return "n/a"
    if "survived " + scenario in out:
        if scenario == "clean":
            return "ok" if r.returncode == 0 else "FAILED"
        return "warned" if err else "not caught"
    if scenario == "clean":
        return "FAILED"
    if r.returncode < 0 and -r.returncode != signal.SIGABRT:
        return "crashed"
    return "caught" if err else "crashed"


def cell(outcomes):
    c = Counter(outcomes)
    if len(c) == 1:
        return outcomes[0]
    n = len(outcomes)
    return ", ".join(f"{k} {v}/{n}" for k, v in c.most_common())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--lib", action="append", default=[], metavar="NAME=PATH",
                    help="an allocator to add (PATH preloaded)")
    a = ap.parse_args()
    libs = []
    for name, path in default_libs() + [tuple(x.split("=", 1)) for x in a.lib]:
        if path and not os.path.exists(path):
            print(f"note: {name}: {path} not found, left out", file=sys.stderr)
            continue
        libs.append((name, path))
    with tempfile.TemporaryDirectory() as tmp:
        c, cxx = compile_all(tmp)
        rows = [(s, c) for s in C_SCENARIOS] + [(s + " (C++)" if s == "clean" else s, cxx)
                                                 for s in CXX_SCENARIOS]
        print("| scenario | " + " | ".join(n for n, _ in libs) + " |")
        print("|---|" + "---|" * len(libs))
        for label, prog in rows:
            scenario = label.split(" ")[0]
            cells = [cell([classify(prog, scenario, path) for _ in range(a.runs)])
                     for _, path in libs]
            print(f"| `{label}` | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
