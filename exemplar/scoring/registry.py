"""The one place where per-example scorers are registered.

A scorer reads the :class:`ScoringContext` filled by :func:`exemplar.scoring.audit.score_examples`
and returns an (N,) float array, higher = more worth a look (NaN where undefined, e.g. training
dynamics for test rows). ``compute_scores`` emits one ``<name>_score`` column per chosen name.
``NEEDS`` tells the orchestrator which costly pieces a scorer requires, so unused ones are skipped.

``SIGNALS`` declares, next to the registration, what each score means to the fusion
(:mod:`exemplar.scoring.fusion`): its **family** (``label``: the given label disagrees with a model;
``atypical``: the input is unlike the rest; ``compression``: compressed models disagree with dense
ones) and its **direction** as measured by ``benchmarks/bench_quality.py`` across the suite:
+1 = higher is more suspicious for that family, -1 = lower is, 0 = kept in ``scores.parquet`` but left out of the
default fusion (the measured direction is wrong or depends on the data; see docs/scoring.md). Its **source**
is the model whose outputs it reads: ``network`` (the audited network, its checkpoints and embedding),
``crossfit`` (the out-of-fold learner), ``population`` (the compressed population), ``data`` (no model: input
space, duplicates). Views of one source share that model's mistakes; the fusion's ``balance="sources"``
counts each source once within a family.
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
        "oos_confidence", "oos_margin", "label_issue",
    )},
}


@dataclass(frozen=True)
class Signal:
    family: str  # label | atypical | compression
    direction: int  # +1: higher = more suspicious; -1: lower is; 0: not fused by default (direction measured unstable)
    source: str = "network"  # the model it reads (SOURCES): network | crossfit | population | data | ensemble


SOURCES = ("network", "crossfit", "population", "data", "ensemble")


# Directions from benchmarks/results/quality.json (suite of scenarios x seeds; docs/scoring.md).
SIGNALS: dict[str, Signal] = {
    "loss": Signal("label", 1), "margin": Signal("label", 1), "el2n": Signal("label", 1), "grand": Signal("label", 1),
    "confidently_wrong": Signal("label", 1), "self_influence": Signal("label", 1), "forgetting": Signal("label", 1),
    "low_confidence": Signal("label", 1),
    "variability": Signal("label", 0),  # AUROC 0.002 on flips: low variability marks both mislabelled and easy rows
    "oos_confidence": Signal("label", 1, "crossfit"), "oos_margin": Signal("label", 1, "crossfit"),
    "label_issue": Signal("label", 1, "crossfit"),
    # the duplicates' label evidence from keep.parquet, fused as the column is_label_conflict: by default the share of a
    # row's exact copies labelled otherwise (label_disagreement; fusion conflict="share"), else the 0/1 flag
    "label_conflict": Signal("label", 1, "data"),
    "vog": Signal("atypical", 0),  # signed z inverted (AUROC 0.10-0.15); |z| (score.vog_absolute) weak: not fused
    "outlier": Signal("atypical", 1), "input_outlier": Signal("atypical", 1, "data"),
    "cie": Signal("compression", 1, "population"),  # written by the compress stage (exemplar/compression/cie.py)
    # 1 - p(label) of the cross-fitted networks that held the row out; written by the compress stage (its population)
    "population_confidence": Signal("label", 1, "population"),
    # 1 - p(label) under the mean of the two held-out probability sets above (crossfit and population); derived
    # at assembly (exemplar.scoring.fusion.with_ensemble_confidence); by default the label family's only member
    "ensemble_confidence": Signal("label", 1, "ensemble"),
}

# What each costly scorer needs computed (the cheap logit-based ones need nothing extra).
NEEDS: dict[str, str] = {
    "grand": "grand", "self_influence": "tracin", "vog": "vog", "forgetting": "dynamics",
    "low_confidence": "dynamics", "variability": "dynamics", "outlier": "embedding_knn", "input_outlier": "input_knn",
    "oos_confidence": "crossfit", "oos_margin": "crossfit", "label_issue": "crossfit",
}


def declared(column: str) -> Signal:
    """The declaration of a ``<name>_score`` column; an undeclared column is a family (and source) of its own,
    direction +1."""
    name = column.removesuffix("_score")
    return SIGNALS.get(name, Signal(name, 1, name))


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
