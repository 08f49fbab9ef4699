"""py_footprint.py: a Python program's peak, then dropped.

Builds COUNT small strings and a dict indexing them, drops both, then reads
its own resident set size. With PYTHONMALLOC=malloc every object goes
through the allocator under test; with the default (pymalloc) only objects
over 512 bytes do (pymalloc maps its arenas itself).

    python3 py_footprint.py COUNT

Prints final_rss_kib= and errors=.
"""

import gc
import os
import sys


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    strings = [f"key-{i:09d}-{'x' * (i % 40)}" for i in range(count)]
    index = {s: i for i, s in enumerate(strings)}
    errors = sum(1 for i in range(0, count, 997) if index[strings[i]] != i)
    del index, strings
    gc.collect()
    print(f"final_rss_kib={rss_kib()}")
    print(f"errors={errors}")


main()
