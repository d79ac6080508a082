"""Ingestion time and memory of a wide CSV (few rows, many columns): the reader's cost per column.

    python benchmarks/bench_wide_csv.py --columns 10000 30000 100000

Each width runs in a fresh process (peak memory is per process: ``peak_rss_mb``, and
``ingest_rss_mb`` above the RSS after imports); results go to benchmarks/results/wide_csv.json with
the git commit, the command and the load average. Linear in columns means ``cpu_us_per_column`` and
``ingest_rss_mb`` per column stay about the same from width to width.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from provenance import git_commit  # benchmarks/provenance.py (scripts run from benchmarks/)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "wide_csv.json"


def write_csv(path: Path, columns: int, rows: int = 20) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w") as handle:
        handle.write("label," + ",".join(f"c{i}" for i in range(columns)) + "\n")
        for row in range(rows):
            handle.write(f"{row % 2}," + ",".join(f"{v:.3f}" for v in rng.normal(size=columns)) + "\n")


def measure_one(path: str) -> dict:
    """Ingest `path` in this process: wall and CPU seconds (user + system, all threads), CPU
    microseconds per column, peak memory of the process and the part of it above the imports."""
    from exemplar.data.config import DataConfig
    from exemplar.data.loaders import ingest_in_memory

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall, cpu = time.perf_counter(), time.process_time()
    dataset, _, _ = ingest_in_memory(DataConfig(kind="csv", path=path))
    cpu, after = time.process_time() - cpu, resource.getrusage(resource.RUSAGE_SELF)
    peak = after.ru_maxrss // 1024
    return {"wall_seconds": round(time.perf_counter() - wall, 2), "cpu_seconds": round(cpu, 2),
            "system_cpu_seconds": round(after.ru_stime - before.ru_stime, 2),
            "cpu_us_per_column": round(cpu / len(dataset.info.feature_names) * 1e6, 1),
            "peak_rss_mb": peak, "baseline_rss_mb": baseline, "ingest_rss_mb": peak - baseline, "rows": len(dataset.table)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--columns", type=int, nargs="*", default=[10_000, 30_000, 100_000])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one)))
        return
    result = {"git_commit": git_commit(), "command": " ".join(sys.argv), "load_average_start": os.getloadavg(), "widths": {}}
    with tempfile.TemporaryDirectory() as folder:
        for columns in args.columns:
            path = Path(folder) / f"wide{columns}.csv"
            write_csv(path, columns)
            done = subprocess.run([sys.executable, __file__, "--one", str(path)], capture_output=True, text=True, check=True)
            result["widths"][columns] = json.loads(done.stdout.strip().splitlines()[-1])
            print(columns, result["widths"][columns], flush=True)
    result["load_average_end"] = os.getloadavg()
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
