"""The one place where per-example scorers are registered.

A scorer reads the :class:`ScoringContext` filled by :func:`exemplar.scoring.audit.score_examples`
and returns an (N,) float array, higher = more worth a look (NaN where undefined, e.g. training
dynamics for test rows). ``compute_scores`` emits one ``<name>_score`` column per chosen name.
``NEEDS`` tells the orchestrator which costly pieces a scorer requires, so unused ones are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from exemplar.errors import ExemplarError
from exemplar.scoring.signals import confidently_wrong_score, el2n_score, loss_score, margin_score


@dataclass
class ScoringContext:
    labels: np.ndarray  # (N,) int64 given labels
    final_logits: np.ndarray  # (N, K) logits of the final checkpoint
    early_logits: list[np.ndarray]  # per seed: (N, K) logits of the early checkpoint
    pieces: dict[str, np.ndarray] = field(default_factory=dict)  # computed (N,) scores by name


Scorer = Callable[[ScoringContext], np.ndarray]


def _piece(name: str) -> Scorer:
    return lambda s: s.pieces[name]


SCORERS: dict[str, Scorer] = {
    "loss": lambda s: loss_score(s.final_logits, s.labels),
    "margin": lambda s: margin_score(s.final_logits, s.labels),
    "el2n": lambda s: np.mean([el2n_score(z, s.labels) for z in s.early_logits], axis=0),
    "confidently_wrong": lambda s: confidently_wrong_score(s.final_logits, s.labels),
    **{name: _piece(name) for name in (
        "grand", "self_influence", "vog", "forgetting", "low_confidence", "variability", "outlier", "input_outlier",
    )},
}

# What each costly scorer needs computed (the cheap logit-based ones need nothing extra).
NEEDS: dict[str, str] = {
    "grand": "grand", "self_influence": "tracin", "vog": "vog", "forgetting": "dynamics",
    "low_confidence": "dynamics", "variability": "dynamics", "outlier": "embedding_knn", "input_outlier": "input_knn",
}


def check_names(names: list[str]) -> None:
    unknown = sorted(set(names) - set(SCORERS))
    if unknown:
        raise ExemplarError(f"unknown score(s) {unknown}; available: {sorted(SCORERS)}. Fix: edit score.signals.")


def compute_scores(ids: np.ndarray, context: ScoringContext, names: list[str]) -> pd.DataFrame:
    """Run the named scorers; returns a frame with ``id`` and one ``<name>_score`` column per name."""
    check_names(names)
    columns = {"id": ids}
    for name in names:
        columns[f"{name}_score"] = np.asarray(SCORERS[name](context), dtype=np.float64)
    return pd.DataFrame(columns)
