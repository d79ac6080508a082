"""Outlier score: mean distance to the k nearest training examples (scikit-learn ``NearestNeighbors``).

Computed in the trained model's penultimate embedding (``outlier_score``) and in the model's input space
(``input_outlier_score``: pixels, or for tables the standardised encoding of exemplar/data/encoding.py). Training rows exclude themselves from their own neighbours. Atypical
examples that carry a correct label are invisible to the label-based scores; this one sees them.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from exemplar.errors import ExemplarError


def knn_distance(points: np.ndarray, is_reference: np.ndarray, k: int) -> np.ndarray:
    """(N,) mean Euclidean distance from each of the (N, D) `points` to its k nearest reference points.

    `is_reference` (N,) bool marks the reference set (the training rows); a reference point's own
    zero distance is left out.
    """
    reference = np.flatnonzero(is_reference)
    if len(reference) < k + 1:
        raise ExemplarError(f"score.outlier_k={k} needs more than {k} training rows, got {len(reference)}. Fix: lower score.outlier_k.")
    flat = points.reshape(len(points), -1).astype(np.float32)
    index = NearestNeighbors(n_neighbors=k + 1).fit(flat[reference])
    scores = np.zeros(len(points), dtype=np.float64)
    distances, _ = index.kneighbors(flat[reference], n_neighbors=k + 1)
    scores[reference] = np.sort(distances, axis=1)[:, 1:].mean(axis=1)
    others = np.flatnonzero(~is_reference)
    if len(others):
        scores[others] = index.kneighbors(flat[others], n_neighbors=k)[0].mean(axis=1)
    return scores
