"""Population-level results per compression level: how many examples are CIE, how dense and
compressed models do on CIE vs non-CIE examples, and which classes lose most (Hooker et al. 2019)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from exemplar.compression.measure import class_impact, population_accuracy


def cie_summary(is_cie: np.ndarray, dense: np.ndarray, compressed: np.ndarray, labels: np.ndarray, is_train: np.ndarray, is_test: np.ndarray) -> dict:
    """(N,) bool CIE flags, (S, N) dense and compressed predicted labels, (N,) labels and split masks ->
    CIE fractions (all, train, test rows) and the populations' mean accuracy on CIE and non-CIE rows,
    on the test rows (``*_cie``, ``*_non_cie``) and on every row (``*_cie_all``, ``*_non_cie_all``)."""
    summary = {
        "cie_count": int(is_cie.sum()),
        "cie_count_test": int((is_cie & is_test).sum()),
        "cie_fraction": _mean(is_cie),
        "cie_fraction_train": _mean(is_cie[is_train]),
        "cie_fraction_test": _mean(is_cie[is_test]),
    }
    everything = np.ones_like(is_cie, dtype=bool)
    for suffix, rows in (("", is_test), ("_all", everything)):
        for name, predictions in (("dense", dense), ("compressed", compressed)):
            summary[f"{name}_accuracy_cie{suffix}"] = population_accuracy(predictions, labels, rows & is_cie)
            summary[f"{name}_accuracy_non_cie{suffix}"] = population_accuracy(predictions, labels, rows & ~is_cie)
    return summary


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


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
