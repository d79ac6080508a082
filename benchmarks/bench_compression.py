"""Time the whole compress stage on digits and record the out-of-sample Compression Identified
Exemplar figures, with the issue's goals checked at the highest default sparsity.

    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 \\
        .venv/bin/python benchmarks/bench_compression.py [--threads 1] [--run-dir DIR] [--result FILE] [overrides ...]

Trains the populations once (ingest, filter and train flows, skipped when the run directory already
holds the cross-fitted models), then runs ``python -m flows.compress`` in a fresh process (Prefect
start-up included) with the default compress settings (or the given Hydra overrides) and writes wall
time, CPU time, machine load and the stage's figures to benchmarks/results/compression.json.
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
    "test_accuracy", "test_accuracy_drop", "oos_accuracy", "cie_count", "cie_count_train", "cie_count_test", "cie_fraction",
    "cie_fraction_train", "cie_fraction_test", "dense_accuracy_gap_all", "dense_accuracy_gap_all_ci", "dense_accuracy_cie_all_ci",
    "dense_accuracy_non_cie_all_ci",
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


def prepare(run_dir: Path, extra: list[str], env: dict) -> float:
    """Train the populations unless the run directory holds the cross-fitted models; returns seconds spent."""
    if (run_dir / "crossfit_folds.parquet").exists():
        return 0.0
    started = time.perf_counter()
    for stage in ("ingest", "filter", "train"):
        run([sys.executable, "-m", f"flows.{stage}", f"out_dir={run_dir}", *extra], env)
    return time.perf_counter() - started


def goals(summary: dict) -> dict:
    """The issue's goals at the highest pruning level: CIE >= 1 % of all rows, and the dense
    population's out-of-sample accuracy on them >= 20 points below its accuracy on the rest."""
    pruning = {tag: level for tag, level in summary["levels"].items() if level["kind"] == "pruning"}
    tag = max(pruning, key=lambda t: pruning[t]["sparsity"])
    level = pruning[tag]
    return {"level": tag, "cie_fraction": level["cie_fraction"], "cie_fraction_at_least_1_percent": level["cie_fraction"] >= 0.01,
            "dense_accuracy_cie_all": level["dense_accuracy_cie_all"], "dense_accuracy_non_cie_all": level["dense_accuracy_non_cie_all"],
            "dense_gap_points": 100 * level["dense_accuracy_gap_all"], "dense_gap_ci_points": [100 * x for x in level["dense_accuracy_gap_all_ci"]],
            "dense_gap_at_least_20_points": level["dense_accuracy_gap_all"] >= 0.2}


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return head + ("-dirty" if dirty else "")


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
    keys = ("population", "crossfit_folds", "crossfit_repeats", "held_out_models_train_row", "held_out_models_test_row", "dense_reference", "dense")
    return {**{k: summary[k] for k in keys}, "goals": goals(summary), "levels": levels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=0, help="OMP/MKL threads of every process (0: leave unset, torch uses all cores)")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "bench-compression")
    parser.add_argument("--result", type=Path, default=RESULT, help="where to write the JSON (default benchmarks/results/compression.json)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every stage (e.g. compress.sparsities=[0.9,0.95])")
    args = parser.parse_args()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{args.run_dir.parent / 'mlflow.db'}"}
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    args.run_dir.mkdir(parents=True, exist_ok=True)
    train_seconds = prepare(args.run_dir, args.overrides, env)
    (args.run_dir / "compressed" / "population.json").unlink(missing_ok=True)  # time the full stage, not a reused one
    load_before = os.getloadavg()
    wall, user, system = run([sys.executable, "-m", "flows.compress", f"out_dir={args.run_dir}", *args.overrides], env)
    result = {
        "command": " ".join(["MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736",
                             ".venv/bin/python benchmarks/bench_compression.py", *sys.argv[1:]]),
        "stage_command": " ".join(["python -m flows.compress out_dir=<run>", *args.overrides]), "commit": commit(),
        "compress_stage_wall_seconds": round(wall, 2), "compress_stage_user_cpu_seconds": round(user, 2),
        "compress_stage_system_cpu_seconds": round(system, 2), "train_seconds": round(train_seconds, 2), "population_trained_now": train_seconds > 0,
        "omp_num_threads": args.threads or "unset", "compress_threads": compress_threads(),
        "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "load_average_before": [round(x, 2) for x in load_before], "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "settings": "defaults of conf/ (data=digits, train 20 epochs, cross-fitted population 2 folds x 4 repeats, compress: gradual pruning "
                    "over 2 fine-tuning epochs, dense reference fine-tuned the same at sparsity 0, int8 dynamic+static)" + (f"; overrides {args.overrides}" if args.overrides else ""),
        **figures(args.run_dir),
    }
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "levels"}, indent=2))


if __name__ == "__main__":
    main()
