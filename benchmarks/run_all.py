"""`make bench`: every benchmark of the repository, one after the other.

Each prints its own side-by-side table; arguments after `--` go to all of them
(e.g. `make bench BENCH_ARGS="--rounds 5"`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "endpoint_latency.py",
    "capture_overhead.py",
    "async_slices.py",
    "findings_quality.py",
    "analysis_speed.py",
]


def main() -> int:
    failed = 0
    for name in BENCHMARKS:
        print(f"\n== {name} ==", flush=True)
        failed += subprocess.call([sys.executable, str(HERE / name), *sys.argv[1:]]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
