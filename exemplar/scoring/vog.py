"""Variance of Gradients (Agarwal, D'souza and Hooker, "Estimating Example Difficulty using Variance
of Gradients", arXiv 2008.11600).

For checkpoints t = 1..T, S_t(x) is the gradient of the pre-softmax logit of the example's class with
respect to the input, averaged over channels (an (H, W) map; for tables, one value per standardized
feature). Then

    VoG(x) = mean over pixels p of sqrt( 1/T sum_t (S_t(x)_p - mean_t S_t(x)_p)^2 )

(the population standard deviation, as in the official code), z-scored within each class:
(VoG - mean_class) / std_class, optionally taken in absolute value.

The official code's two scripts disagree: ``imagenet/train_get_gradients.py`` takes the gradient of the
logit (``logits[0][label]``), as the paper's equation does; ``toy_script.py`` takes the gradient of the
softmax probability (``probs[range(N), y]``), and computes the window mean over *all* checkpoints while
dividing by the window length. We follow the paper and the ImageNet script: the logit, and a correct
per-window mean.
"""

from __future__ import annotations

import numpy as np

from exemplar.errors import ExemplarError
from exemplar.scoring.config import VOG_WINDOWS



def window_indices(num_checkpoints: int, window: str) -> list[int]:
    """Checkpoint indices of a VoG window: thirds of the checkpoints (early/middle/late) or all of them.

    Thirds follow the toy script's split of 15 epochs into [:5], [5:10], [10:]; a window never holds
    fewer than 2 checkpoints when at least 2 exist (a std over 1 value would be 0 for every example).
    """
    if window not in VOG_WINDOWS:
        raise ExemplarError(f"score.vog_window must be one of {VOG_WINDOWS}, got '{window}'.")
    if window == "all" or num_checkpoints < 3:
        return list(range(num_checkpoints))
    edges = np.linspace(0, num_checkpoints, 4).round().astype(int)
    part = VOG_WINDOWS.index(window)
    begin, end = int(edges[part]), int(edges[part + 1])
    if end - begin < 2:
        begin, end = (begin, begin + 2) if begin + 2 <= num_checkpoints else (num_checkpoints - 2, num_checkpoints)
    return list(range(begin, end))


class VogAccumulator:
    """Streaming (Welford) mean and variance of (N, P) gradient maps across checkpoints.

    Memory is two (N, P) float64 arrays whatever the number of checkpoints.
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def add(self, maps: np.ndarray) -> None:
        """Add one checkpoint's (N, P) maps S_t."""
        maps = maps.astype(np.float64)
        if self.mean is None:
            self.mean, self.m2 = np.zeros_like(maps), np.zeros_like(maps)
        self.count += 1
        delta = maps - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (maps - self.mean)

    def raw_vog(self) -> np.ndarray:
        """(N,) mean over pixels of the population std across the checkpoints added so far."""
        if self.m2 is None or self.count == 0:
            raise ExemplarError("VoG needs at least one checkpoint. Fix: run the train stage first.")
        return np.sqrt(np.maximum(self.m2 / self.count, 0.0)).mean(axis=1)


def vog_from_maps(maps: np.ndarray) -> np.ndarray:
    """Reference (non-streaming) VoG of (T, N, P) maps: (N,) mean_p std_t (population std)."""
    return maps.astype(np.float64).std(axis=0).mean(axis=1)


def class_zscores(values: np.ndarray, classes: np.ndarray, absolute: bool = False) -> np.ndarray:
    """(N,) (v - mean_c) / std_c within each class c (population std); 0 where a class's std is 0."""
    out = np.zeros(len(values), dtype=np.float64)
    for c in np.unique(classes):
        rows = classes == c
        std = values[rows].std()
        out[rows] = (values[rows] - values[rows].mean()) / std if std > 0 else 0.0
    return np.abs(out) if absolute else out
