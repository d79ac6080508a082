"""The one place where per-example scorers are registered.

A scorer reads a :class:`ScoringInputs` and returns an (N,) float array, higher = more worth a look.
``compute_scores`` turns the chosen scorers into the shared format: one ``<name>_score`` column each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from exemplar.errors import ExemplarError
from exemplar.scoring.signals import confidently_wrong_score, el2n_score, loss_score, margin_score


@dataclass
class ScoringInputs:
    labels: np.ndarray  # (N,) int64 given labels
    final_logits: np.ndarray  # (N, K) logits of the final checkpoint
    early_logits: np.ndarray  # (N, K) logits of the early checkpoint (EL2N's "early in training")


Scorer = Callable[[ScoringInputs], np.ndarray]

SCORERS: dict[str, Scorer] = {
    "loss": lambda s: loss_score(s.final_logits, s.labels),
    "margin": lambda s: margin_score(s.final_logits, s.labels),
    "el2n": lambda s: el2n_score(s.early_logits, s.labels),
    "confidently_wrong": lambda s: confidently_wrong_score(s.final_logits, s.labels),
}


def compute_scores(ids: np.ndarray, inputs: ScoringInputs, names: list[str]) -> pd.DataFrame:
    """Run the named scorers; returns a frame with ``id`` and one ``<name>_score`` column per name."""
    unknown = sorted(set(names) - set(SCORERS))
    if unknown:
        raise ExemplarError(f"unknown score(s) {unknown}; available: {sorted(SCORERS)}. Fix: edit score.signals.")
    columns = {"id": ids}
    for name in names:
        columns[f"{name}_score"] = SCORERS[name](inputs).astype(np.float64)
    return pd.DataFrame(columns)
