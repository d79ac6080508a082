"""The lean stratified split picks exactly the rows scikit-learn's train_test_split picks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import train_test_split

from exemplar.data.split import stratified_split, stratified_test_mask
from exemplar.errors import ExemplarError


def _reference(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    n_test = max(int(round(fraction * len(labels))), len(np.unique(labels)))
    _, test = train_test_split(np.arange(len(labels)), test_size=n_test, stratify=labels, random_state=seed)
    mask = np.zeros(len(labels), dtype=bool)
    mask[test] = True
    return mask


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(0, 60), st.floats(0.1, 0.4), st.integers(0, 1000))
def test_same_rows_as_scikit_learn(classes, extra, fraction, seed):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.repeat(np.arange(classes), 2), rng.integers(0, classes, extra)])
    rng.shuffle(labels)
    np.testing.assert_array_equal(stratified_test_mask(labels, fraction, seed), _reference(labels, fraction, seed))


def test_every_class_on_both_sides():
    splits = np.array(stratified_split(np.array([0, 0, 1, 1, 1, 2, 2]), 0.2, 0))
    for label in range(3):
        assert {"train", "test"} <= set(splits[np.array([0, 0, 1, 1, 1, 2, 2]) == label])


@pytest.mark.parametrize("labels, fraction, message", [(np.array([0, 0, 1]), 0.2, "fewer than 2 rows"), (np.array([0, 0, 1, 1]), 0.9, "lower data.test_fraction")])
def test_clear_errors(labels, fraction, message):
    with pytest.raises(ExemplarError, match=message):
        stratified_test_mask(labels, fraction, 0)


@pytest.mark.parametrize(
    "labels",
    [
        np.array([3, 3, 7, 7, 7, 12, 12, 3, 12], dtype=np.int32),  # gaps: class indexes differ from labels
        np.array([-2, -2, 5, 5, 5, -2], dtype=np.int64),  # negative: the np.unique path
        np.array([10**9, 10**9, 1, 1, 1], dtype=np.int64),  # too sparse for a bincount
        np.array([0, 1, 1, 0, 2, 2, 2], dtype=np.uint8),
        np.array([0, 1, 1, 0, 2, 2, 2], dtype=np.uint64),  # cannot be cast to int64 safely
        np.array(["b", "a", "b", "a", "c", "c"], dtype=object),
    ],
)
def test_same_rows_as_scikit_learn_for_any_label_values(labels):
    for seed in range(5):
        np.testing.assert_array_equal(stratified_test_mask(labels, 0.3, seed), _reference(labels, 0.3, seed))


def test_same_rows_as_scikit_learn_with_many_classes():
    """More than 64 classes: the rows of each class come from one stable sort instead."""
    labels = np.random.default_rng(3).integers(0, 90, 2000)
    labels[:180] = np.repeat(np.arange(90), 2)
    np.testing.assert_array_equal(stratified_test_mask(labels, 0.25, 7), _reference(labels, 0.25, 7))
