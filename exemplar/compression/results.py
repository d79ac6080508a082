"""Population-level results per compression level: how many examples are CIE, how dense and
compressed models do on CIE vs non-CIE examples, and which classes lose most (Hooker et al. 2019)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from exemplar.compression.cie import row_accuracy
from exemplar.compression.measure import bootstrap_difference, bootstrap_interval, class_impact, population_accuracy


def cie_summary(is_cie: np.ndarray, dense: np.ndarray, compressed: np.ndarray, labels: np.ndarray, is_train: np.ndarray,
                is_test: np.ndarray, held_out: np.ndarray | None = None, seed: int = 0) -> dict:
    """(N,) bool CIE flags, (S, N) dense and compressed predicted labels, (N,) labels and split masks,
    optional (S, N) `held_out` (model s did not train on row n) -> CIE counts and fractions (all,
    train, test rows) and the populations' accuracy on CIE and non-CIE rows: on the test rows
    (``*_cie``, ``*_non_cie``) and on every row, out of sample (``*_cie_all``, ``*_non_cie_all``: the mean
    over rows of the share of held-out models right on the row), with percentile bootstrap 95 %
    intervals over rows (``*_ci``) and the dense gap non-CIE minus CIE (``dense_accuracy_gap_all``)."""
    summary = {
        "cie_count": int(is_cie.sum()),
        "cie_count_train": int((is_cie & is_train).sum()),
        "cie_count_test": int((is_cie & is_test).sum()),
        "cie_fraction": _mean(is_cie),
        "cie_fraction_train": _mean(is_cie[is_train]),
        "cie_fraction_test": _mean(is_cie[is_test]),
    }
    for name, predictions in (("dense", dense), ("compressed", compressed)):
        summary[f"{name}_accuracy_cie"] = population_accuracy(predictions, labels, is_test & is_cie)
        summary[f"{name}_accuracy_non_cie"] = population_accuracy(predictions, labels, is_test & ~is_cie)
        per_row = row_accuracy(predictions, labels, held_out)
        for suffix, rows in (("cie_all", is_cie), ("non_cie_all", ~is_cie)):
            summary[f"{name}_accuracy_{suffix}"] = _mean(per_row[rows])
            summary[f"{name}_accuracy_{suffix}_ci"] = list(bootstrap_interval(per_row[rows], seed=seed))
        if name == "dense":
            summary["dense_accuracy_gap_all"] = summary["dense_accuracy_non_cie_all"] - summary["dense_accuracy_cie_all"]
            summary["dense_accuracy_gap_all_ci"] = list(bootstrap_difference(per_row[~is_cie], per_row[is_cie], seed=seed))
    return summary


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def accuracy_summary(models: pd.DataFrame, tag: str) -> dict:
    """Mean and spread over the population of the test accuracy, size and latency of level `tag`,
    and the drop in mean test accuracy from the dense population (rows of `models` with level "dense")."""
    level, dense = models[models["level"] == tag], models[models["level"] == "dense"]
    mean = float(level["test_accuracy"].mean())
    return {
        "test_accuracy": mean,
        "test_accuracy_std": float(level["test_accuracy"].std(ddof=1)) if len(level) > 1 else float("nan"),
        "test_accuracy_drop": float(dense["test_accuracy"].mean()) - mean,
        "size_bytes": float(level["size_bytes"].mean()),
        "gzip_size_bytes": float(level["gzip_size_bytes"].mean()),
        "latency_ms": float(level["latency_ms"].median()),
    }


def class_accuracies(models: pd.DataFrame, tag: str) -> np.ndarray:
    """(S, K) per-class test accuracy of each model of level `tag` (columns ``class_accuracy_<k>``)."""
    columns = sorted((c for c in models.columns if c.startswith("class_accuracy_")), key=lambda c: int(c.rsplit("_", 1)[1]))
    return models.loc[models["level"] == tag, columns].to_numpy(dtype=float)


def class_impact_records(models: pd.DataFrame, tag: str, top: int = 3) -> tuple[list[dict], list[int]]:
    """Per-class impact of level `tag` vs the dense population (see :func:`class_impact`) as records,
    and the `top` classes with the most negative relative change."""
    impact = class_impact(class_accuracies(models, "dense"), class_accuracies(models, tag))
    worst = impact.sort_values("relative_change", kind="stable")["class"].head(top).astype(int).tolist()
    return impact.to_dict(orient="records"), worst
