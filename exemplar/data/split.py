"""Stratified train/test assignment when the user gives no split."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from exemplar.errors import ExemplarError


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> list[str]:
    """Assign "train"/"test" per row, keeping class proportions (labels: (N,) int).

    Every class needs at least 2 rows so both sides can hold one.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ExemplarError(f"data.test_fraction must be in (0, 1), got {test_fraction}. Fix: e.g. data.test_fraction=0.2")
    classes, counts = np.unique(labels, return_counts=True)
    too_small = classes[counts < 2]
    if len(too_small):
        raise ExemplarError(
            f"cannot make a stratified split: class(es) {too_small.tolist()} have fewer than 2 rows. "
            "Fix: add examples of those classes, or give a 'split' column."
        )
    indices = np.arange(len(labels))
    n_test = max(int(round(test_fraction * len(labels))), len(classes))
    _, test_idx = train_test_split(indices, test_size=n_test, stratify=labels, random_state=seed)
    splits = np.full(len(labels), "train", dtype=object)
    splits[test_idx] = "test"
    return splits.tolist()
