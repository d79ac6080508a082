"""Run every benchmarks/bench_*.py in its own process (with the allocator settings the project uses)
and list the result files. Each benchmark writes benchmarks/results/<name>.json with its command.

    python benchmarks/run_all.py [name ...]      # e.g. python benchmarks/run_all.py training scoring
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "68719476736", "OMP_WAIT_POLICY": "PASSIVE"}


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
    env = {**os.environ, **ALLOCATOR, "PYTHONUNBUFFERED": "1"}
    failed = []
    for script in scripts:
        started = time.perf_counter()
        print(f"== {script.name}", flush=True)
        done = subprocess.run([sys.executable, str(script)], env=env, cwd=HERE.parent)
        print(f"   exit {done.returncode} after {time.perf_counter() - started:.0f} s", flush=True)
        if done.returncode:
            failed.append(script.name)
    for result in sorted((HERE / "results").glob("*.json")):
        print(f"result: {result.relative_to(HERE.parent)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
