"""Pruning benchmarks (writes benchmarks/results/prune_curve.json; each part merges its own section).

- ``curve``: the default pruning curve on clean digits (``python -m flows.prune_curve``, every default),
  timed end to end: wall time, CPU time, load average. Reports, at 50% kept, random's mean and spread
  over seeds, the best score-based line, and which direction (hard or easy) wins on average.
- ``noisy``: digits with 10% of the training labels flipped (seeded, test labels clean). The default
  pipeline audits it (``scores.parquet`` with ``audit_score``); then the curve flow retrains on
  everything, on all but the top 10% by that ``audit_score`` (``drop_top``, one global ranking: the
  suspicious rows are not spread evenly over classes) and on all but a random 10%, over 5 seeds.

    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 OMP_WAIT_POLICY=PASSIVE \\
        nice -n 5 .venv/bin/python benchmarks/bench_prune.py [curve|noisy|all] [--out /tmp/bench_prune]
    # the noisy part again with longer-trained curve points, reusing its audit run:
    ... benchmarks/bench_prune.py noisy --out /tmp/bench_prune --reuse-audit --noisy-epochs 30
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exemplar.data.canonical import pixel_array  # noqa: E402
from exemplar.data.digits import load_digits_dataset  # noqa: E402
from exemplar.scoring.quality import flip_labels  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "prune_curve.json"
ENV = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "68719476736", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT)}
NOISY_SEEDS = [0, 1, 2, 3, 4]


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def run(args: list[str], cwd: Path) -> dict:
    """Run a command; wall and CPU seconds (children), load average before and after."""
    before, cpu = os.getloadavg(), os.times()
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env={**os.environ, **ENV}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = os.times()
    if done.returncode:
        raise SystemExit(f"{shlex.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return {
        "command": shlex.join(args), "wall_seconds": round(wall, 1),
        "cpu_seconds": round((after.children_user - cpu.children_user) + (after.children_system - cpu.children_system), 1),
        "loadavg_before": before, "loadavg_after": os.getloadavg(), "stdout_tail": done.stdout[-1500:],
    }


def directions_at(table: pd.DataFrame, fraction: float) -> dict:
    """Mean test accuracy of keep-easy minus keep-hard, per score and overall (seeds paired)."""
    at = table[np.isclose(table["fraction_kept"], fraction) & table["direction"].isin(["hard", "easy"])]
    wide = at.pivot_table(index=["score", "seed"], columns="direction", values="test_accuracy")
    gap = (wide["easy"] - wide["hard"]).groupby(level=0).agg(["mean", "std", "count"])
    return {"easy_minus_hard_per_score": gap.round(4).to_dict(orient="index"), "easy_minus_hard_mean": round(float(gap["mean"].mean()), 4)}


def curve_part(out: Path, overrides: list[str]) -> dict:
    folder = out / "curve"
    measured = run([sys.executable, "-m", "flows.prune_curve", f"out_dir={folder}", *overrides], out)
    result = json.loads((folder / "prune_curve.json").read_text())
    table = pd.read_parquet(folder / "prune_curve.parquet")
    return {
        **measured, "points_trained": result["points_trained"], "flow_seconds": round(result["flow_seconds"], 1),
        "scoring_seconds": round(result["scoring_seconds"], 1), "budget": result["budget"], "full_data_epochs": result["full_data_epochs"],
        "at_0.5": result["compare"].get("0.5"), "directions_at_0.5": directions_at(table, 0.5),
        "directions_at_0.3": directions_at(table, 0.3), "outputs": str(folder),
    }


def noisy_digits(path: Path, fraction: float = 0.1, seed: int = 0) -> list[str]:
    """Write digits with `fraction` of the training labels flipped as an .npz; returns the flipped ids."""
    dataset = load_digits_dataset()
    table = dataset.table
    labels = table["label"].to_numpy(dtype=np.int64)
    train_rows = np.flatnonzero((table["split"] == "train").to_numpy())
    noisy, flipped = flip_labels(labels, train_rows, fraction, 10, seed)
    np.savez(path, x=pixel_array(dataset)[:, 0], y=noisy, ids=table["id"].to_numpy(dtype=str), split=table["split"].to_numpy(dtype=str))
    return table["id"][flipped].tolist()


def noisy_part(out: Path, epochs: int | None, reuse_audit: bool) -> dict:
    """`epochs`: the curve points' full-data epochs (None: the default); `reuse_audit`: keep an audit
    run already in `out` (made by an earlier call with the same seeded data) instead of re-running it."""
    folder = out / "noisy"
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "noisy_digits.npz"
    flipped = set(noisy_digits(data))
    source = ["data=npz", f"data.path={data}"]
    scores = folder / "audit" / "scores.parquet"
    audit = {"reused": str(scores)} if reuse_audit and scores.exists() else run([sys.executable, "-m", "flows.pipeline", *source, f"out_dir={folder / 'audit'}"], out)
    name = "curve" if epochs is None else f"curve_epochs{epochs}"
    curve = run([
        sys.executable, "-m", "flows.prune_curve", *source, f"out_dir={folder / name}", f"prune.scores_from={scores}",
        "prune.curve.fractions=[1.0,0.9]", "prune.curve.scores=[random,audit]", f"prune.curve.seeds=[{','.join(map(str, NOISY_SEEDS))}]",
        "prune.class_balanced=false", *([f"prune.curve.epochs={epochs}"] if epochs else []),
    ], out)
    table = pd.read_parquet(folder / name / "prune_curve.parquet")
    keep = pd.read_parquet(folder / name / "keep.parquet")
    return {
        "audit_run": {k: v for k, v in audit.items() if k != "stdout_tail"}, "curve_run": curve, "full_data_epochs": epochs or "default",
        "flipped_training_rows": len(flipped), "accuracy": _noisy_accuracy(table),
        "precision_of_dropped": _precision(pd.read_parquet(scores), keep, flipped), "outputs": str(folder),
    }


def _noisy_accuracy(table: pd.DataFrame) -> dict:
    arms = {
        "everything": table[(table["fraction_kept"] == 1.0) & (table["score"] == "random")],
        "drop_random_10pct": table[(table["fraction_kept"] == 0.9) & (table["score"] == "random")],
        "drop_top_10pct_audit": table[(table["fraction_kept"] == 0.9) & (table["score"] == "audit")],
    }
    return {name: {"mean": round(float(a["test_accuracy"].mean()), 4), "std": round(float(a["test_accuracy"].std(ddof=1)), 4),
                   "per_seed": a.sort_values("seed")["test_accuracy"].round(4).tolist(), "n_train": int(a["n_train"].iloc[0])} for name, a in arms.items()}


def _precision(scores: pd.DataFrame, keep: pd.DataFrame, flipped: set[str]) -> dict:
    """Of the top 10% candidate training rows by audit_score (the rows drop_top removes): how many were flipped."""
    candidates = keep[keep["keep"]].merge(scores[["id", "split", "audit_score"]], on="id")
    candidates = candidates[candidates["split"] == "train"]
    top = candidates.nlargest(int(round(0.1 * len(candidates))), "audit_score")
    hits = int(top["id"].isin(flipped).sum())
    return {"dropped": len(top), "flipped_among_dropped": hits, "precision": round(hits / len(top), 4), "recall": round(hits / len(flipped), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", nargs="?", default="all", choices=["curve", "noisy", "all"])
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_prune"))
    parser.add_argument("--noisy-epochs", type=int, default=None, help="noisy part: full-data epochs of the curve points")
    parser.add_argument("--reuse-audit", action="store_true", help="noisy part: reuse the audit run already in --out")
    parser.add_argument("overrides", nargs="*", help="extra overrides for the clean curve")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    report.update({"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}})
    for part in (["curve", "noisy"] if args.part == "all" else [args.part]):
        started = {"commit": commit(), "command": shlex.join([sys.executable, *sys.argv]), "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        key = "clean_curve" if part == "curve" else "noisy_labels" + (f"_epochs{args.noisy_epochs}" if args.noisy_epochs else "")
        section = curve_part(args.out, args.overrides) if part == "curve" else noisy_part(args.out, args.noisy_epochs, args.reuse_audit)
        report[key] = {**started, **section}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(json.dumps(report[key], indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
