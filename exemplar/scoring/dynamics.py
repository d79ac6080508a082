"""Scores from the per-epoch training dynamics (``id``, ``epoch``, ``correct``, ``label_probability``).

- Forgetting events (Toneva et al., ICLR 2019): the number of epochs at which an example goes from
  correctly to incorrectly classified. Examples never classified correctly are "unlearned" and get
  the largest count possible, (number of epochs), as in the paper's treatment of never-learned examples.
- Data maps (Swayamdipta et al., EMNLP 2020): confidence = mean over epochs of the probability of the
  given label, variability = its standard deviation (population). ``low_confidence_score`` =
  1 - confidence (hard-to-learn, where mislabelled examples gather); ``variability_score`` (ambiguous).

Each function takes one seed's long table and returns a frame indexed by ``id``; :func:`average_seeds`
averages several seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from exemplar.errors import ExemplarError

COLUMNS = ("id", "epoch", "correct", "label_probability")


def _check(dynamics: pd.DataFrame) -> None:
    missing = [c for c in COLUMNS if c not in dynamics.columns]
    if missing:
        raise ExemplarError(f"training dynamics lack columns {missing}. Fix: re-run the train stage.")


def forgetting_events(dynamics: pd.DataFrame) -> pd.Series:
    """(ids,) float64 count of correct -> incorrect transitions between consecutive recorded epochs."""
    _check(dynamics)
    wide = dynamics.pivot(index="id", columns="epoch", values="correct").sort_index(axis=1)
    correct = wide.to_numpy(dtype=bool)
    events = (correct[:, :-1] & ~correct[:, 1:]).sum(axis=1).astype(np.float64)
    never_learned = ~correct.any(axis=1)
    events[never_learned] = correct.shape[1]
    return pd.Series(events, index=wide.index, name="forgetting_score")


def data_map(dynamics: pd.DataFrame) -> pd.DataFrame:
    """Per id: ``low_confidence_score`` = 1 - mean_e p_e(y), ``variability_score`` = std_e p_e(y)."""
    _check(dynamics)
    grouped = dynamics.groupby("id")["label_probability"]
    confidence = grouped.mean().astype(np.float64)
    variability = grouped.std(ddof=0).astype(np.float64)
    return pd.DataFrame({"low_confidence_score": 1.0 - confidence, "variability_score": variability})


def dynamics_scores(dynamics: pd.DataFrame) -> pd.DataFrame:
    """Forgetting and data-map scores of one seed, indexed by id."""
    return data_map(dynamics).join(forgetting_events(dynamics))


def average_seeds(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Element-wise mean of per-seed score frames (aligned on id; ids missing from a seed are skipped)."""
    return pd.concat(frames).groupby(level=0).mean()
