"""Fusing many signals into one review order.

``audit_score`` is the mean, over the chosen ``<name>_score`` columns, of each example's percentile
rank within that column (ties share their average rank), so every signal counts equally whatever its
scale. ``audit_rank`` is 1 for the example most worth a look.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def fuse_scores(scores: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Add ``audit_score`` in [0, 1] and ``audit_rank`` (1 = review first) to a copy of `scores`."""
    fused = scores.copy()
    if not columns:
        fused["audit_score"] = 0.0
    else:
        ranks = scores[columns].rank(pct=True, method="average").fillna(0.0)
        fused["audit_score"] = ranks.mean(axis=1).to_numpy()
    order = np.lexsort((fused["id"].astype(str).to_numpy(), -fused["audit_score"].to_numpy()))
    rank = np.empty(len(fused), dtype=np.int64)
    rank[order] = np.arange(1, len(fused) + 1)
    fused["audit_rank"] = rank
    return fused
