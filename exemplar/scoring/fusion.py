"""Fusing many signals into one review order: ``audit_score`` and ``audit_rank`` (1 = review first).

Default method ``family_z_max`` (chosen by measurement on digits: benchmarks/results/quality.json):

1. Every ``<name>_score`` column becomes a robust z-score, (s - median) / (1.4826 MAD) (the std when
   the MAD is 0), so signals on different scales are comparable and an example's distance from the
   bulk counts, not only its rank. NaN (e.g. training dynamics of test rows) stays NaN.
2. Columns are grouped into families of signals that look for the same kind of problem
   (:data:`FAMILIES`: ``label`` -- the given label disagrees with the model; ``atypical`` -- the
   input is unlike the rest; any other column, e.g. a compression score, is a family of its own).
   A family's evidence is the mean z of its members present for the row.
3. Each family's evidence is robust-z-scored again, so families are compared on one scale.
4. ``audit_score`` = max over families: an example is worth a look when it stands out in *any*
   family, so one queue serves both mislabelled and atypical data (a mean over all columns lets the
   many label signals drown the few atypicality signals, and vice versa).

``family_rank_max`` (percentile ranks instead of z-scores) and ``rank_mean`` (the mean percentile
rank over all columns, the spine's first method) are kept for comparison.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FAMILIES: dict[str, str] = {
    **{f"{name}_score": "label" for name in (
        "loss", "margin", "el2n", "grand", "confidently_wrong", "self_influence", "forgetting", "low_confidence", "variability",
    )},
    **{f"{name}_score": "atypical" for name in ("outlier", "input_outlier", "vog")},
}
FUSION_METHODS = ("family_z_max", "family_rank_max", "rank_mean")
MAD_TO_STD = 1.4826


def percentile_ranks(scores: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """(N, C) percentile ranks in (0, 1] per column; NaN stays NaN."""
    return scores[columns].rank(pct=True, method="average")


def family_evidence(values: pd.DataFrame) -> pd.DataFrame:
    """(N, F) mean over each family's columns, skipping NaN (columns outside :data:`FAMILIES` are
    families of their own)."""
    families = [FAMILIES.get(column, column) for column in values.columns]
    return values.T.groupby(families, sort=True).mean().T


def robust_z(values: pd.DataFrame) -> pd.DataFrame:
    """Column-wise (v - median) / (1.4826 MAD); a column with MAD 0 uses its std (or 1 if that is 0)."""
    median = values.median()
    spread = (values - median).abs().median() * MAD_TO_STD
    fallback = values.std(ddof=0).where(lambda s: s > 0, 1.0)
    spread = spread.where(spread > 0, fallback)
    return (values - median) / spread


def fused_values(scores: pd.DataFrame, columns: list[str], method: str) -> np.ndarray:
    """(N,) fused evidence of `method` over `columns` (higher = review sooner; NaN -> lowest)."""
    if method not in FUSION_METHODS:
        raise ValueError(f"fusion method must be one of {FUSION_METHODS}, got '{method}'.")
    if method == "rank_mean":
        fused = percentile_ranks(scores, columns).mean(axis=1)
    elif method == "family_rank_max":
        fused = family_evidence(percentile_ranks(scores, columns)).rank(pct=True).max(axis=1)
    else:
        fused = robust_z(family_evidence(robust_z(scores[columns].astype(np.float64)))).max(axis=1)
    return fused.fillna(fused.min() if fused.notna().any() else 0.0).to_numpy(dtype=np.float64)


def fuse_scores(scores: pd.DataFrame, columns: list[str], method: str = FUSION_METHODS[0]) -> pd.DataFrame:
    """Add ``audit_score`` and ``audit_rank`` (1 = review first; ties broken by id) to a copy of `scores`."""
    fused = scores.copy()
    fused["audit_score"] = fused_values(scores, columns, method) if columns else 0.0
    order = np.lexsort((fused["id"].astype(str).to_numpy(), -fused["audit_score"].to_numpy()))
    rank = np.empty(len(fused), dtype=np.int64)
    rank[order] = np.arange(1, len(fused) + 1)
    fused["audit_rank"] = rank
    return fused
