"""Tenth round of issue 9: a per-cell range check as a third atypical member, against the shipped fusion.
(writes benchmarks/results/extreme_member.json)

Candidate X (declared before its figures; docs/scoring.md, "What the tenth round tried") adds
``input_extreme_score`` (:func:`extreme_value_score`: the largest |robust z| among a row's numeric cells,
log scale for positive columns) to the atypical family of the shipped recipe S. On saved suite tables with
their run directories (``bench_quality.py run``), this computes the column from each run's
``dataset.parquet`` (training rows as the reference), scores S and X on the training rows, and applies the
suite's one-SE rule with the fixed anchor (cleanlab on the score stage's out-of-fold learner). X lost its
confirmation, so the signal is not in the pipeline; this script is how the figures were made.

    .venv/bin/python benchmarks/bench_extreme_member.py --tables /work/suite/all9J --jobs 2   # the 42 suite scenarios
    .venv/bin/python benchmarks/bench_extreme_member.py --tables /work/suite/K --out /tmp/k.json   # the confirmation set
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


RESULTS = ROOT / "benchmarks" / "results" / "extreme_member.json"
COLUMN = "input_extreme_score"


MAD_TO_STD = 1.4826  # a normal column's MAD times this is its standard deviation


def extreme_value_score(values: np.ndarray, is_reference: np.ndarray) -> np.ndarray:
    """(N,) the largest |robust z| among a row's numeric cells: a per-cell range check.

    `values` (N, F): a table's numeric feature columns as given (NaN or inf = missing, ignored);
    `is_reference` (N,) bool: the rows whose median and spread define "usual" (the training rows).
    Per column: a column positive on every reference row is taken on the log scale first (a unit or
    decimal-point slip is multiplicative, and such columns are often skewed); z = (v - median) / (1.4826
    MAD), the MAD replaced by the std where more than half the reference rows tie, and the column skipped
    where that is 0 too. A non-positive cell of a log-scale column sits one decade below the column's smallest
    reference value. A row without any numeric cell scores 0. ``input_outlier_score`` measures a row against
    its nearest neighbours over all columns at once; this checks each cell against its own column.
    """
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    values = np.where(np.isfinite(values), values, np.nan)
    reference = values[np.asarray(is_reference, dtype=bool)]
    if values.shape[1] == 0 or len(reference) == 0:
        return np.zeros(len(values))
    filled = ~np.isnan(reference).all(axis=0)
    log_scale = filled & (np.where(np.isnan(reference), np.inf, reference).min(axis=0) > 0)
    scaled = values.copy()
    if log_scale.any():
        floor = np.nanmin(reference[:, log_scale], axis=0) / 10.0
        part = scaled[:, log_scale]
        scaled[:, log_scale] = np.log(np.where(np.isnan(part), np.nan, np.maximum(part, floor)))
    z = _robust_deviation(scaled, scaled[np.asarray(is_reference, dtype=bool)])
    return np.where(np.isnan(z), 0.0, np.abs(z)).max(axis=1)


def _robust_deviation(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(N, F) (v - median) / spread per column, median and spread (1.4826 MAD, else std) of `reference`;
    NaN in a column whose spread is 0 or that has no reference value."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns: their statistics are NaN, and so is z
        median = np.nanmedian(reference, axis=0)
        spread = MAD_TO_STD * np.nanmedian(np.abs(reference - median), axis=0)
        spread = np.where(spread > 0, spread, np.nanstd(reference, axis=0))
    spread = np.where(spread > 0, spread, np.nan)
    return (values - median) / spread


def extreme_column(run_dir: Path, ids: pd.Series) -> np.ndarray | None:
    """The candidate column for the rows `ids` of a table run (None for images)."""
    from tasks.datasets import read_dataset, read_keep, split_rows

    dataset = read_dataset(run_dir / "dataset.parquet")
    if dataset.info.modality != "table":
        return None
    numeric = [n for n, t in zip(dataset.info.feature_names, dataset.info.column_types) if t == "numeric"]
    reference = split_rows(dataset, "train") & read_keep(run_dir / "keep.parquet", dataset.table["id"])
    score = extreme_value_score(dataset.table[numeric].to_numpy(dtype=np.float64), reference)
    return score[pd.Index(dataset.table["id"]).get_indexer(ids)]


def evaluate(path: Path) -> tuple[str, dict]:
    """One saved table: S and X (and the new member alone) on its training rows."""
    from bench_quality import _train_metrics, saved_run_dir, signal_columns
    from exemplar.scoring import registry
    from exemplar.scoring.fusion import fused_values

    registry.SIGNALS["input_extreme"] = registry.Signal("atypical", 1, "data")  # candidate X's declaration, this process only
    table = pd.read_parquet(path)
    column = extreme_column(saved_run_dir(path), table["id"])
    if column is not None:
        table[COLUMN] = column
    columns = signal_columns(table)
    shipped = [c for c in columns if c != COLUMN]
    name, seed = path.stem.rsplit("__s", 1)
    return name, {"seed": int(seed), "positives": int(table["is_positive"].sum()),
                  "candidates": {"S": _train_metrics(table, fused_values(table, shipped)), "X": _train_metrics(table, fused_values(table, columns))},
                  "anchors": {"cleanlab_oos_learner": _train_metrics(table, table["cleanlab_oos_learner"].to_numpy(np.float64))},
                  "member": None if column is None else _train_metrics(table, column)}


def main(argv: list[str] | None = None) -> dict:
    from bench_quality import _mean, leave_one_scenario_out, per_scenario, provenance, saved_tables_arguments

    args = saved_tables_arguments(__doc__.splitlines()[0], RESULTS, argv)
    report = provenance("bench_extreme_member.py", argv)
    per = per_scenario(args.tables, evaluate, args.jobs)
    rule = leave_one_scenario_out(per, ["S", "X"], "one_se")
    scenarios = {name: {"S": _mean(runs, ("candidates", "S"), "average_precision"), "X": _mean(runs, ("candidates", "X"), "average_precision"),
                        "anchor": _mean(runs, ("anchors", "cleanlab_oos_learner"), "average_precision"),
                        "member": None if runs[0]["member"] is None else float(np.mean([r["member"]["average_precision"] for r in runs]))}
                 for name, runs in sorted(per.items())}
    report |= {"chosen": rule["chosen_on_all"], "tolerance": rule["tolerance_on_all"],
               "worst_margin": rule["worst_margin_on_all"], "mean_ap": rule["mean_ap_on_all"], "scenarios": scenarios}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    result = main()
    print(f"chosen: {result['chosen']}  worst margin {result['worst_margin']}  mean AP {result['mean_ap']}")
    for name, body in result["scenarios"].items():
        member = "-" if body["member"] is None else f"{body['member']:.3f}"
        print(f"{name:<26} S {body['S']:.3f}  X {body['X']:.3f}  anchor {body['anchor']:.3f}  member alone {member}")
