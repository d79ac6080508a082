"""Per-class facts: accuracy dense and compressed, suspected-noise rate, CIE rate."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

CIE_FLAG = re.compile(r"^is_cie_(.+)$")


def class_accuracy(models: pd.DataFrame, class_names: list[str]) -> pd.DataFrame:
    """(K, L) mean test accuracy per class (rows, by name) and compression level (columns, ``dense``
    first), averaged over seeds, from ``compression.parquet``'s ``class_accuracy_<k>`` columns."""
    columns = [f"class_accuracy_{k}" for k in range(len(class_names)) if f"class_accuracy_{k}" in models]
    if models.empty or not columns:
        return pd.DataFrame(index=pd.Index(class_names, name="class"))
    mean = models.groupby("level", sort=False)[columns].mean().T
    mean.index = [class_names[int(c.rsplit("_", 1)[1])] for c in columns]
    order = ["dense", *[c for c in mean.columns if c != "dense"]] if "dense" in mean.columns else list(mean.columns)
    return mean[order]


def cie_levels(scores: pd.DataFrame) -> list[str]:
    """Compression level tags with an ``is_cie_<tag>`` column, in column order."""
    return [m.group(1) for m in map(CIE_FLAG.match, scores.columns) if m]


def suspected_noise(scores: pd.DataFrame) -> tuple[pd.Series, str]:
    """(N,) bool over kept training rows and how it was decided: an ``is_label_issue`` column when
    scoring wrote one (e.g. cleanlab's), else 'the final model does not predict the given label'."""
    if "is_label_issue" in scores:
        return scores["is_label_issue"].fillna(False).astype(bool), "flagged by is_label_issue"
    return pd.Series(scores["pred"].to_numpy() != scores["label"].to_numpy(), index=scores.index), "final model disagrees with the given label"


def per_class_table(scores: pd.DataFrame, accuracy: pd.DataFrame, class_names: list[str]) -> tuple[list[dict], dict]:
    """One row per class: training/test rows, test accuracy per level, suspected-noise rate among
    kept training rows, CIE rate at the strongest compression level; plus what the rates mean."""
    kept = scores["keep"].fillna(True).astype(bool) if "keep" in scores else pd.Series(True, index=scores.index)
    train = (scores["split"] == "train") & kept
    noisy, noise_rule = suspected_noise(scores)
    levels = cie_levels(scores)
    strongest = levels[-1] if levels else None
    pruned = [t for t in levels if t.startswith("p") and t[1:].isdigit()]
    strongest = max(pruned, key=lambda t: int(t[1:])) if pruned else strongest
    rows = []
    for code, name in enumerate(class_names):
        mine = scores["label"] == code
        row = {"class": name, "train_rows": int((mine & train).sum()), "test_rows": int((mine & (scores["split"] == "test")).sum())}
        row.update({f"accuracy_{level}": _maybe(accuracy.at[name, level]) if name in accuracy.index else None for level in accuracy.columns})
        row["suspected_noise_rate"] = _rate(noisy[mine & train])
        row["cie_rate"] = _rate(scores.loc[mine, f"is_cie_{strongest}"].fillna(False).astype(bool)) if strongest else None
        rows.append(row)
    return rows, {"suspected_noise": noise_rule, "cie_level": strongest, "levels": list(accuracy.columns)}


def _rate(flags: pd.Series) -> float | None:
    return float(flags.mean()) if len(flags) else None


def _maybe(value: object) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None
