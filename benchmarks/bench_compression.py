"""Time the whole compress stage on digits and record the Compression Identified Exemplar figures.

    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 \\
        .venv/bin/python benchmarks/bench_compression.py [--population 5] [--threads 1] [--run-dir DIR]

Trains the population once (ingest, filter and train flows, skipped when the run directory already
holds it), then runs ``python -m flows.compress`` in a fresh process (Prefect start-up included) with
the default compress settings (4 sparsities, gradual pruning while fine-tuning, int8 dynamic and
static) and writes wall time, CPU time, machine load and the stage's figures to
benchmarks/results/compression.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "compression.json"
LEVEL_KEYS = (
    "test_accuracy", "test_accuracy_drop", "cie_count", "cie_fraction", "cie_fraction_test", "cie_count_test",
    "dense_accuracy_cie", "dense_accuracy_non_cie", "compressed_accuracy_cie", "compressed_accuracy_non_cie",
    "dense_accuracy_cie_all", "dense_accuracy_non_cie_all", "compressed_accuracy_cie_all", "compressed_accuracy_non_cie_all",
    "achieved_sparsity", "size_bytes", "gzip_size_bytes", "latency_ms", "most_affected_classes",
)


def run(args: list[str], env: dict) -> tuple[float, float, float]:
    """Run a command; return (wall seconds, user CPU seconds, system CPU seconds) of the child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def overrides(run_dir: Path, population: int) -> list[str]:
    return [f"out_dir={run_dir}", f"train.population={population}"]


def prepare(run_dir: Path, population: int, env: dict) -> float:
    """Train the population unless every seed's final checkpoint is there; returns seconds spent."""
    last = run_dir / "checkpoints" / f"seed_{population - 1}" / "epoch_0020.pt"
    if last.exists():
        return 0.0
    started = time.perf_counter()
    for stage in ("ingest", "filter", "train"):
        run([sys.executable, "-m", f"flows.{stage}", *overrides(run_dir, population)], env)
    return time.perf_counter() - started


def compress_threads() -> int:
    """torch intra-op threads the stage uses (conf/compress/default.yaml ``threads``)."""
    import yaml

    return int(yaml.safe_load((ROOT / "conf" / "compress" / "default.yaml").read_text())["threads"])


def figures(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "stages" / "compress.json").read_text())
    levels = {tag: {k: level.get(k) for k in LEVEL_KEYS if k in level} for tag, level in summary["levels"].items()}
    for tag, level in summary["levels"].items():
        if level["kind"] == "quantization":
            levels[tag].update(quantized_layers=level["quantized_layers"], float_layers=sorted(level["float_layers"]))
    return {"population": summary["population"], "dense": summary["dense"], "levels": levels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="OMP/MKL threads of every process (0: leave unset, torch uses all cores)")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "bench-compression")
    args = parser.parse_args()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{args.run_dir.parent / 'mlflow.db'}"}
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    args.run_dir.mkdir(parents=True, exist_ok=True)
    train_seconds = prepare(args.run_dir, args.population, env)
    for stale in (args.run_dir / "compressed").glob("seed_*/models.json"):
        stale.unlink()  # time the full stage, not a resumed one
    load_before = os.getloadavg()
    wall, user, system = run([sys.executable, "-m", "flows.compress", *overrides(args.run_dir, args.population)], env)
    result = {
        "command": " ".join(["MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736",
                             ".venv/bin/python benchmarks/bench_compression.py", *sys.argv[1:]]),
        "stage_command": f"python -m flows.compress out_dir=<run> train.population={args.population}",
        "compress_stage_wall_seconds": round(wall, 2), "compress_stage_user_cpu_seconds": round(user, 2),
        "compress_stage_system_cpu_seconds": round(system, 2), "train_seconds": round(train_seconds, 2), "population_trained_now": train_seconds > 0,
        "omp_num_threads": args.threads or "unset", "compress_threads": compress_threads(),
        "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "load_average_before": [round(x, 2) for x in load_before], "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "settings": "defaults of conf/ (data=digits, train 20 epochs, compress: sparsities 0.3/0.5/0.7/0.9 gradual 2 epochs, int8 dynamic+static)",
        **figures(args.run_dir),
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "levels"}, indent=2))


if __name__ == "__main__":
    main()
