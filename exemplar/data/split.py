"""Stratified train/test assignment when the user gives no split."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sklearn.utils.extmath import _approximate_mode

from exemplar.data.growing import bincount
from exemplar.errors import ExemplarError


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> list[str]:
    """Assign "train"/"test" per row, keeping class proportions (labels: (N,) int).

    Every class needs at least 2 rows so both sides can hold one.
    """
    is_test = stratified_test_mask(labels, test_fraction, seed)
    return np.where(is_test, "test", "train").astype(object).tolist()


def stratified_test_mask(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """(N,) bool: True for test rows; max(round(test_fraction * N), K) rows go to test.

    The same rows as ``sklearn.model_selection.train_test_split(range(N), test_size=n_test,
    stratify=labels, random_state=seed)`` (StratifiedShuffleSplit's draws, replayed with the same
    RandomState calls), without its per-row Python lists or int64 copies of the labels: the classes
    come from a bincount when the labels are small non-negative ints, and with up to 64 classes each
    class's rows are found by a comparison instead of a stable sort of all rows, so the transient
    memory is about 24 bytes per row of the largest class (tests/unit/data/test_split.py checks the
    equality).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ExemplarError(f"data.test_fraction must be in (0, 1), got {test_fraction}. Fix: e.g. data.test_fraction=0.2")
    classes, class_of_row, counts = _classes(labels)
    if (counts < 2).any():
        raise ExemplarError(
            f"cannot make a stratified split: class(es) {classes[counts < 2].tolist()} have fewer than 2 rows. "
            "Fix: add examples of those classes, or give a 'split' column."
        )
    n_test = max(int(round(test_fraction * len(labels))), len(classes))
    if len(labels) - n_test < len(classes):
        raise ExemplarError(
            f"data.test_fraction={test_fraction} leaves fewer training rows ({len(labels) - n_test}) than classes ({len(classes)}). "
            "Fix: lower data.test_fraction."
        )
    return _draw_test_rows(_rows_of_each_class(class_of_row, len(classes)), len(labels), counts, n_test, seed)


def _rows_of_each_class(class_of_row: np.ndarray, n_classes: int) -> Iterator[np.ndarray]:
    """For class 0, 1, ...: its rows in increasing order (the slices of a stable argsort)."""
    if n_classes <= 64:
        for k in range(n_classes):
            yield np.flatnonzero(class_of_row == k)
        return
    order, start = np.argsort(class_of_row, kind="stable"), 0
    for count in np.bincount(class_of_row, minlength=n_classes).tolist():
        yield order[start : start + count]
        start += count


def _classes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(classes, class index per row, rows per class), as ``np.unique(labels, return_inverse=True,
    return_counts=True)`` gives them; without sorting the labels when they are ints in [0, 4N + 1024)."""
    labels = np.asarray(labels).reshape(-1)
    integers = labels.dtype.kind in "iu" and np.can_cast(labels.dtype, np.int64) and len(labels) > 0
    small_ints = integers and labels.min() >= 0 and labels.max() < 4 * len(labels) + 1024
    if not small_ints:
        classes, class_of_row, counts = np.unique(labels, return_inverse=True, return_counts=True)
        return classes, class_of_row.reshape(-1), counts
    counts = bincount(labels, int(labels.max()) + 1)
    classes = np.flatnonzero(counts)
    if len(classes) == len(counts):
        return classes, labels, counts  # already 0..K-1: the labels are the class indexes
    index = np.cumsum(counts > 0, dtype=np.int32) - 1
    return classes, index[labels], counts[classes]


def _draw_test_rows(rows_of_classes: Iterator[np.ndarray], n_rows: int, counts: np.ndarray, n_test: int, seed: int) -> np.ndarray:
    rng = np.random.RandomState(seed)
    n_train_per_class = _approximate_mode(counts, n_rows - n_test, rng)
    n_test_per_class = _approximate_mode(counts - n_train_per_class, n_test, rng)
    is_test = np.zeros(n_rows, dtype=bool)
    for rows, count, n_train, n_test_i in zip(rows_of_classes, counts, n_train_per_class, n_test_per_class):
        members = rows.take(rng.permutation(count), mode="clip")
        is_test[members[n_train : n_train + n_test_i]] = True
    return is_test
