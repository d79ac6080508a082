"""Near-duplicate groups: hand-derived angles, a brute-force reference, and group numbering."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from exemplar.pruning.near_duplicates import centred_pixels, near_duplicate_groups, near_duplicate_table


def _reference_groups(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """O(n^2) loop + union-find: the definition, for checking the vectorised version."""
    n = len(vectors)
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    for i in range(n):
        for j in range(i + 1, n):
            if unit[i] @ unit[j] >= threshold - 1e-9:
                parent[root(j)] = root(i)
    roots = [root(i) for i in range(n)]
    sizes = pd.Series(roots).value_counts()
    labels, out = {}, np.full(n, -1)
    for i, r in enumerate(roots):
        if sizes[r] > 1:
            out[i] = labels.setdefault(r, len(labels))
    return out


def test_hand_derived_angles():
    angle = np.deg2rad([0.0, 5.0, 90.0, 95.0, 180.0])  # cos 5 deg = 0.9962
    vectors = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    assert near_duplicate_groups(vectors, 0.99).tolist() == [0, 0, 1, 1, -1]
    assert near_duplicate_groups(vectors, 0.999).tolist() == [-1, -1, -1, -1, -1]


def test_chains_join_one_group():
    angle = np.deg2rad([0.0, 4.0, 8.0])  # cos 4 deg = 0.9976 > 0.997 > cos 8 deg
    vectors = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    assert near_duplicate_groups(vectors, 0.997).tolist() == [0, 0, 0]


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 30), st.integers(2, 5), st.floats(0.5, 0.99), st.integers(0, 10_000))
def test_matches_the_reference_loop(n, d, threshold, seed):
    vectors = np.random.default_rng(seed).normal(size=(n, d))
    np.testing.assert_array_equal(near_duplicate_groups(vectors, threshold), _reference_groups(vectors, threshold))


def test_representative_prefers_training_rows():
    table = near_duplicate_table(pd.Series(["a", "b", "c", "d"]), pd.Series(["test", "train", "train", "test"]), np.array([0, 0, -1, 0]))
    assert table["near_duplicate_of"].tolist() == ["b", "", "", "b"]


def test_embeddings():
    pixels = np.array([[[[0, 10]]], [[[20, 30]]]], dtype=np.uint8)  # (2, 1, 1, 2)
    np.testing.assert_array_equal(centred_pixels(pixels), [[-10, -10], [10, 10]])
