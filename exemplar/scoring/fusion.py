"""Fusing many signals into one review order: ``audit_score``, ``audit_rank`` and ``audit_rank_test``.

Training rows and test rows are fused and ranked **separately** (they carry different evidence: test
rows have no training dynamics and their losses are out-of-sample anyway): ``audit_rank`` orders the
training rows (1 = review first; NaN on test rows), ``audit_rank_test`` the test rows (NaN on
training rows). A table without a ``split`` column is one group ranked by ``audit_rank``.

Default method ``family_z_max`` (chosen by leave-one-scenario-out over the benchmark suite:
benchmarks/results/quality.json, docs/scoring.md):

1. Only signals declared with a direction (+1, or -1 = lower is more suspicious) next to their registration
   (:data:`exemplar.scoring.registry.SIGNALS`) enter; ``is_label_conflict`` (keep.parquet) enters the
   label family as a 0/1 column. Each column is **centred within its given class** (minus the class
   median, so a class that is hard for every model does not fill the queue) and scaled by the pooled
   robust spread, 1.4826 MAD over all rows (the std when the MAD is 0, 1 when both are 0; a per-class
   MAD would inflate the mild deviations of an easy class). NaN stays NaN.
2. A family's evidence (``label``, ``atypical``, ``compression``, ...) is the mean z of its members.
3. Each family's evidence is robust-z-scored again over the group, so families share one scale. A
   **sparse** family (MAD 0: more than half its rows tie, e.g. ``cie_score``) is capped at the
   median over the dense families of their 99th-percentile z: it can lift a row into the top of the
   queue but cannot crowd out everything else.
4. ``audit_score`` = max over families: a row is worth a look when it stands out in any family.

Other methods, kept for the benchmark's selection: ``family_z_mean`` (mean over families instead of the
max), ``family_rank_max`` (percentile ranks instead of z), ``rank_mean`` (mean percentile rank over all
fused columns).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from exemplar.scoring.registry import SIGNALS, declared

FUSION_METHODS = ("family_z_max", "family_z_mean", "family_rank_max", "rank_mean")
MAD_TO_STD = 1.4826
SPARSE_CAP_QUANTILE = 0.99
ANY_OF_FAMILIES: tuple[str, ...] = ()  # families whose evidence is the max of their members (set by the selection)
CONFLICT_COLUMN = "is_label_conflict"  # keep.parquet; declared as SIGNALS["label_conflict"]


def fused_columns(columns: list[str], exclude: tuple[str, ...] = ()) -> list[str]:
    """The `columns` that enter the fusion: declared direction != 0 and not in `exclude`."""
    return [c for c in columns if declared(c).direction != 0 and c not in exclude]


def families(columns: list[str]) -> list[str]:
    """The declared family of each ``<name>_score`` column (``is_label_conflict`` -> label)."""
    return [SIGNALS["label_conflict"].family if c == CONFLICT_COLUMN else declared(c).family for c in columns]


def robust_z(values: pd.DataFrame) -> pd.DataFrame:
    """Column-wise (v - median) / (1.4826 MAD); a column with MAD 0 uses its std (or 1 if that is 0)."""
    median = values.median()
    spread = (values - median).abs().median() * MAD_TO_STD
    fallback = values.std(ddof=0).where(lambda s: s > 0, 1.0).fillna(1.0)
    spread = spread.where(spread > 0, fallback)
    return (values - median) / spread


def class_robust_z(values: pd.DataFrame, labels: np.ndarray | None) -> pd.DataFrame:
    """Robust z of each column centred within each class of `labels`: (s - median of its class), divided by
    the pooled spread (1.4826 MAD of the centred values over all rows; std / 1 fallbacks as in
    :func:`robust_z`). Centring per class removes a class that is hard for every model; pooling the spread
    keeps an easy class (tiny MAD) from inflating its mild deviations. Over all rows when `labels` is None."""
    if labels is None:
        return robust_z(values)
    centred = values - values.groupby(np.asarray(labels), sort=False).transform("median")
    return robust_z(centred)


def family_evidence(z: pd.DataFrame, any_of: tuple[str, ...] = ()) -> pd.DataFrame:
    """(N, F) per family: the mean of its columns (skipping NaN), or their max for the families in
    `any_of` (members that look in different spaces, where standing out in one is enough)."""
    grouped = z.T.groupby(families(list(z.columns)), sort=True)
    mean, high = grouped.mean().T, grouped.max().T
    for family in set(any_of) & set(mean.columns):
        mean[family] = high[family]
    return mean


def capped_family_z(evidence: pd.DataFrame) -> pd.DataFrame:
    """Robust z per family; a sparse family (MAD 0) is capped at the median of the dense families'
    99th-percentile z (no cap when every family is sparse)."""
    z = robust_z(evidence)
    mad = (evidence - evidence.median()).abs().median()
    sparse = mad.index[~(mad > 0)]
    dense = mad.index[mad > 0]
    if len(sparse) and len(dense):
        cap = float(z[dense].quantile(SPARSE_CAP_QUANTILE).median())
        z[sparse] = z[sparse].clip(upper=cap)
    return z


def _group_values(table: pd.DataFrame, labels: np.ndarray | None, method: str, any_of: tuple[str, ...]) -> pd.Series:
    """(n,) fused evidence of one group (training or test rows); NaN -> the group's lowest."""
    if method == "rank_mean":
        fused = table.rank(pct=True).mean(axis=1)
    elif method == "family_rank_max":
        fused = family_evidence(table.rank(pct=True)).rank(pct=True).max(axis=1)
    else:
        family_z = capped_family_z(family_evidence(class_robust_z(table, labels), any_of))
        fused = family_z.max(axis=1) if method == "family_z_max" else family_z.mean(axis=1)
    return fused.fillna(fused.min() if fused.notna().any() else 0.0)


def _inputs(scores: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """(N, C) float64 fusion inputs: the fused columns times their declared direction and, when present,
    ``is_label_conflict`` as 0/1."""
    table = scores[columns].astype(np.float64) * [float(declared(c).direction) for c in columns]
    if CONFLICT_COLUMN in scores.columns and columns and SIGNALS["label_conflict"].direction:
        conflict = scores[CONFLICT_COLUMN].fillna(False).astype(np.float64)
        table[CONFLICT_COLUMN] = conflict * SIGNALS["label_conflict"].direction
    return table


def fused_values(scores: pd.DataFrame, columns: list[str], method: str = FUSION_METHODS[0],
                 by_class: bool = True, exclude: tuple[str, ...] = (), any_of: tuple[str, ...] = ANY_OF_FAMILIES) -> np.ndarray:
    """(N,) fused evidence of `method` over the fused subset of `columns`, computed separately for each
    split (higher = review sooner). `by_class`, `exclude` and `any_of` exist for the benchmark's selection."""
    if method not in FUSION_METHODS:
        raise ValueError(f"fusion method must be one of {FUSION_METHODS}, got '{method}'.")
    chosen = fused_columns(columns, exclude)
    out = np.zeros(len(scores), dtype=np.float64)
    if not chosen:
        return out
    table = _inputs(scores, chosen).reset_index(drop=True)
    labels = scores["label"].to_numpy() if by_class and "label" in scores.columns else None
    for rows in split_groups(scores).values():
        part = table.iloc[rows].reset_index(drop=True)
        out[rows] = _group_values(part, None if labels is None else labels[rows], method, any_of).to_numpy(dtype=np.float64)
    return out


def split_groups(scores: pd.DataFrame) -> dict[str, np.ndarray]:
    """Row indices ranked together: ``train`` (every non-test row) and ``test``; all rows without ``split``."""
    if "split" not in scores.columns:
        return {"train": np.arange(len(scores))}
    is_test = (scores["split"] == "test").to_numpy()
    groups = {"train": np.flatnonzero(~is_test), "test": np.flatnonzero(is_test)}
    return {name: rows for name, rows in groups.items() if len(rows)}


def _ranks(values: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """1-based ranks of `rows` by descending value, ties broken by id."""
    order = np.lexsort((ids[rows].astype(str), -values[rows]))
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(1, len(rows) + 1)
    return rank


def fuse_scores(scores: pd.DataFrame, columns: list[str], method: str = FUSION_METHODS[0]) -> pd.DataFrame:
    """Add ``audit_score``, ``audit_rank`` (training rows) and ``audit_rank_test`` (test rows) to a copy
    of `scores` (ranks 1 = review first, ties broken by id, NaN outside their group)."""
    fused = scores.copy()
    values = fused_values(scores, columns, method)
    fused["audit_score"] = values
    ids = fused["id"].to_numpy()
    for group, column in (("train", "audit_rank"), ("test", "audit_rank_test")):
        rank = np.full(len(fused), np.nan)  # float so NaN marks the other group (readers call float())
        rows = split_groups(scores).get(group)
        if rows is not None:
            rank[rows] = _ranks(values, ids, rows)
        fused[column] = rank
    return fused
